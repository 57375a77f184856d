"""The store's outcomes and the contract's errors (``broker.identity.outcomes``), and the
checks that replaced ``assert`` in the service: an answer the code cannot handle is an
InternalErrorException (or the configuration error it is), never an AssertionError, which
``python -O`` would silently skip."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from broker.backend.errors import BackendNotConfigured
from broker.backend.pool import PoolResolver
from broker.backend.translators import build_translator
from broker.backend.translators.jwt_bearer import JwtTranslator
from broker.errors import BrokerError, InternalErrorException
from broker.identity import developer, lifecycle
from broker.identity.models import Identity, IdentityPool, PoolConfig
from broker.identity.outcomes import LINK_ERRORS, MERGE_ERRORS, UNLINK_ERRORS, raise_for
from broker.identity.ports import LinkOutcome, MergeOutcome, UnlinkOutcome
from config.backend import BackendSettings
from config.backend_jwt import JwtSettings
from config.errors import ConfigError
from config.settings import Settings

REPO = Path(__file__).resolve().parent.parent
POOL = "us-east-1:11111111-2222-4333-8444-555555555555"
IDENTITY = "us-east-1:66666666-7777-4888-8999-000000000000"
DEV = "login.example.dev"


@pytest.mark.parametrize(
    ("table", "kind"),
    [(LINK_ERRORS, LinkOutcome), (MERGE_ERRORS, MergeOutcome), (UNLINK_ERRORS, UnlinkOutcome)],
    ids=["link", "merge", "unlink"],
)
def test_each_table_answers_every_outcome(table: Any, kind: Any) -> None:
    assert set(table) == set(kind)


#: Every failure outcome and the exact error it has always been (contract sections 5, 7).
FAILURES = [
    (
        LINK_ERRORS,
        LinkOutcome.NO_POOL,
        "ResourceNotFoundException",
        f"IdentityPool '{POOL}' not found.",
    ),
    (
        LINK_ERRORS,
        LinkOutcome.NO_IDENTITY,
        "ResourceNotFoundException",
        f"Identity '{IDENTITY}' not found.",
    ),
    (
        LINK_ERRORS,
        LinkOutcome.DISABLED,
        "NotAuthorizedException",
        f"Access to Identity '{IDENTITY}' is forbidden.",
    ),
    (
        LINK_ERRORS,
        LinkOutcome.OTHER_OWNER,
        "DeveloperUserAlreadyRegisteredException",
        "The developer user identifier is already registered with another identity of "
        f"identity pool '{POOL}'.",
    ),
    (
        LINK_ERRORS,
        LinkOutcome.HAS_OTHER_LOGINS,
        "NotAuthorizedException",
        "Logins don't match. Please include at least one valid login for this identity or "
        "identity pool.",
    ),
    (
        MERGE_ERRORS,
        MergeOutcome.NO_POOL,
        "ResourceNotFoundException",
        f"IdentityPool '{POOL}' not found.",
    ),
    (
        MERGE_ERRORS,
        MergeOutcome.NO_SOURCE,
        "ResourceNotFoundException",
        f"The source user identifier is not linked to any identity of identity pool '{POOL}'.",
    ),
    (
        MERGE_ERRORS,
        MergeOutcome.NO_DESTINATION,
        "ResourceNotFoundException",
        f"The destination user identifier is not linked to any identity of identity pool '{POOL}'.",
    ),
    (
        MERGE_ERRORS,
        MergeOutcome.DISABLED,
        "NotAuthorizedException",
        f"Access to Identity '{IDENTITY}' is forbidden.",
    ),
    (
        MERGE_ERRORS,
        MergeOutcome.TOO_MANY,
        "ResourceConflictException",
        f"Identity '{IDENTITY}' would have more than 20 linked logins after the merge.",
    ),
    (
        UNLINK_ERRORS,
        UnlinkOutcome.NO_POOL,
        "ResourceNotFoundException",
        f"IdentityPool '{POOL}' not found.",
    ),
    (
        UNLINK_ERRORS,
        UnlinkOutcome.NO_IDENTITY,
        "ResourceNotFoundException",
        f"Identity '{IDENTITY}' not found.",
    ),
    (
        UNLINK_ERRORS,
        UnlinkOutcome.DISABLED,
        "NotAuthorizedException",
        f"Access to Identity '{IDENTITY}' is forbidden.",
    ),
    (
        UNLINK_ERRORS,
        UnlinkOutcome.NOT_LINKED,
        "ResourceConflictException",
        f"The developer user identifier is not linked to Identity '{IDENTITY}'.",
    ),
]


@pytest.mark.parametrize(("table", "outcome", "error", "message"), FAILURES)
def test_failures_raise_the_contract_error(
    table: Any, outcome: Any, error: str, message: str
) -> None:
    with pytest.raises(BrokerError) as caught:
        raise_for(table, outcome, pool_id=POOL, identity_id=IDENTITY, limit=20)
    assert (caught.value.error_type, caught.value.status, caught.value.message) == (
        error,
        400,
        message,
    )


def test_successes_raise_nothing() -> None:
    for table in (LINK_ERRORS, MERGE_ERRORS, UNLINK_ERRORS):
        for outcome, spec in table.items():
            if spec is None:
                raise_for(table, outcome)


def test_a_failure_answered_without_what_its_message_names_is_internal() -> None:
    with pytest.raises(InternalErrorException) as caught:
        raise_for(MERGE_ERRORS, MergeOutcome.DISABLED, pool_id=POOL, identity_id=None)
    assert caught.value.message == "the store answered DISABLED without identity_id"
    with pytest.raises(InternalErrorException):
        raise_for(LINK_ERRORS, UnlinkOutcome.UNLINKED)  # not an outcome of that table


class AnswersWithoutIdentity:
    """A store whose every change succeeds yet returns no identity: a store bug."""

    def get_pool(self, pool_id: str) -> IdentityPool:
        config = PoolConfig(name="p", allow_unauthenticated=False, developer_provider_name=DEV)
        return IdentityPool(id=pool_id, config=config, created=0.0)

    def resolve_login(self, *args: Any) -> tuple[LinkOutcome, None, None]:
        return LinkOutcome.CREATED, None, None

    def merge_logins(self, *args: Any) -> tuple[MergeOutcome, Identity | None]:
        return MergeOutcome.MERGED, None


def test_a_success_without_its_identity_is_internal() -> None:
    store: Any = AnswersWithoutIdentity()
    with pytest.raises(InternalErrorException):
        developer.resolve_developer_login(
            store, pool_id=POOL, logins={DEV: "u"}, identity_id=None, region="us-east-1", now=0.0
        )
    with pytest.raises(InternalErrorException):
        lifecycle.merge_developer_identities(
            store, pool_id=POOL, provider=DEV, source_user="a", destination_user="b", now=0.0
        )


# --- the backend door: settings not built by config.backend --------------------------------
def test_a_mode_without_its_settings_is_a_configuration_error() -> None:
    for mode in ("jwt", "cookie"):
        with pytest.raises(ConfigError, match=f"BROKER_BACKEND_AUTH={mode}"):
            build_translator(BackendSettings(auth=mode, pool_id=POOL), clock=lambda: 0.0)
    no_key = JwtSettings(issuer="https://idp", audience="broker", algorithms=("RS256",))
    with pytest.raises(ConfigError, match="BROKER_BACKEND_JWT_JWKS_URL"):
        JwtTranslator.from_settings(no_key, lambda: 0.0)


def test_a_backend_door_without_a_pool_is_not_configured() -> None:
    settings = Settings.from_env({"REDIS_URL": "redis://127.0.0.1:1/0"})
    settings = dataclasses.replace(settings, backend=BackendSettings(auth="api_key"))
    resolver = PoolResolver(settings, store=None, names=None, clock=lambda: 0.0)
    with pytest.raises(BackendNotConfigured) as caught:
        resolver.current()
    assert caught.value.status == 503
    assert "BROKER_BACKEND_POOL_NAME" in caught.value.message


def test_the_service_uses_no_assert_statements() -> None:
    """house-style.md: no ``assert`` for control flow; ``python -O`` removes them."""
    found = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for folder in ("broker", "config")
        for path in sorted((REPO / folder).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Assert)
    ]
    assert found == []
