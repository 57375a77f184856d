"""Public-provider logins and implicit linked accounts (contract section 9).

A public login is the pair (provider, the verified token's ``sub``); the token itself is
verified on every call by a :class:`LoginVerifier` (``broker.providers``) and never stored.
This module decides which logins of a call are public, has each verified before anything
changes, and asks the store to link them in one atomic step (``resolve_logins``), merging
the identities they turn out to belong to. Which identity survives a merge, and what is
refused, is the store script's rule, described on ``broker.identity.ports.LoginsRequest``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from broker.errors import InternalErrorException
from broker.identity.models import (
    MAX_LINKED_LOGINS,
    Identity,
    IdentityPool,
    login_key,
    new_resource_id,
)
from broker.identity.outcomes import LINK_ERRORS, raise_for
from broker.identity.ports import IdentityStore, LinkOutcome, LoginsRequest


class LoginVerifier(Protocol):
    def verify(
        self, pool: IdentityPool, provider: str, token: str, now: float
    ) -> Mapping[str, Any]:
        """The claims of ``token`` (``sub`` a non-empty string), verified as a login of
        ``provider`` for ``pool``; raises the contract's NotAuthorizedException (a bad
        token, a provider the pool does not have or the broker cannot verify) or
        ExternalServiceException (the provider's keys could not be fetched)."""
        ...


@dataclass(frozen=True)
class PublicLogin:
    provider: str
    subject: str
    #: A Cognito user pool: the token's ``amr`` names it ``<provider>:CognitoSignIn:<sub>``.
    user_pool: bool
    #: The token's verified claims, what role mappings read (``broker.identity.roles``);
    #: empty for a login named by a broker token. Never stored, never part of equality.
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def key(self) -> str:
        return login_key(self.provider, self.subject)


@dataclass(frozen=True)
class Linked:
    """The identity a call's logins resolved to, and what the call did to get there."""

    identity: Identity
    outcome: LinkOutcome
    merged: tuple[str, ...] = ()

    @property
    def created(self) -> bool:
        return self.outcome is LinkOutcome.CREATED


def user_pool_names(pool: IdentityPool) -> set[str]:
    return {str(p.get("ProviderName", "")) for p in pool.config.cognito_identity_providers}


def verify_public_logins(
    pool: IdentityPool,
    logins: Mapping[str, str],
    verifier: LoginVerifier,
    now: float,
) -> list[PublicLogin]:
    """Every login of ``logins`` verified, in the order given; the caller has taken out the
    developer login and the broker's own token. Nothing is changed until all verify."""
    user_pools = user_pool_names(pool)
    proven = []
    for provider, token in logins.items():
        claims = verifier.verify(pool, provider, token, now)
        proven.append(PublicLogin(provider, claims["sub"], provider in user_pools, claims))
    return proven


def link_logins(
    store: IdentityStore,
    pool: IdentityPool,
    public: list[PublicLogin],
    *,
    region: str,
    now: float,
    named: str | None = None,
    developer: tuple[str, str] | None = None,
) -> Linked:
    """Link the verified public logins (and the developer login ``(D, u)``, when given) to
    one identity in one store step, merging identities as section 9 says; raises the
    contract's error for a refusal, which has changed nothing."""
    keys = [login.key for login in public]
    developer_key = None
    if developer is not None:
        developer_key = login_key(*developer)
        keys.insert(0, developer_key)
    provider = pool.config.developer_provider_name
    resolved = store.resolve_logins(
        pool.id,
        LoginsRequest(
            logins=tuple(keys),
            new_identity_id=new_resource_id(region),
            now=now,
            max_logins=MAX_LINKED_LOGINS,
            named=named,
            developer=developer_key,
            developer_prefix=login_key(provider, "") if provider else None,
        ),
    )
    identity = resolved.identity
    raise_for(
        LINK_ERRORS,
        resolved.outcome,
        pool_id=pool.id,
        identity_id=identity.id if identity is not None else named,
        limit=MAX_LINKED_LOGINS,
    )
    if identity is None:
        raise InternalErrorException(
            f"the store answered {resolved.outcome.value} without an identity"
        )
    return Linked(identity=identity, outcome=resolved.outcome, merged=resolved.merged)


def split_logins(
    pool: IdentityPool, logins: Mapping[str, str], *, keep: set[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """(the logins under the names in ``keep``, the others): the others are the public ones,
    to be verified; ``keep`` holds the developer provider or the broker's own token."""
    kept = {k: v for k, v in logins.items() if k in keep}
    return kept, {k: v for k, v in logins.items() if k not in keep}
