"""GetOpenIdTokenForDeveloperIdentity: which identity a developer login resolves to.

Implements the rules of contract section 5 (steps 1 to 5). Signing the token is the
tokens package's job; this module only decides the identity and raises the contract's
errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from broker.errors import (
    DeveloperUserAlreadyRegisteredException,
    InvalidParameterException,
    NotAuthorizedException,
    ResourceNotFoundException,
)
from broker.identity import messages
from broker.identity.models import (
    MAX_DEVELOPER_USER_IDENTIFIER_LENGTH,
    Identity,
    IdentityPool,
    login_key,
    new_resource_id,
)
from broker.identity.ports import IdentityStore, LinkOutcome


@dataclass(frozen=True)
class DeveloperLogin:
    """The identity a developer user id resolved to, and whether it was just created."""

    pool: IdentityPool
    identity: Identity
    provider: str
    user_id: str
    created: bool


def developer_user_of(pool: IdentityPool, logins: Mapping[str, str]) -> tuple[str, str]:
    """Check Logins against the pool's providers (rule 2); return (D, u).

    A pool without D refuses before any key is looked at; public-provider logins beside D
    are refused like Logins without D (decision). u is capped at the length the other
    developer operations accept, and never echoed.
    """
    developer = pool.config.developer_provider_name
    if developer is None:
        raise NotAuthorizedException(messages.NO_DEVELOPER_PROVIDER)
    known = pool.provider_names()
    for provider in logins:
        if provider not in known:
            raise NotAuthorizedException(messages.NOT_A_PROVIDER)
    if set(logins) != {developer}:
        raise NotAuthorizedException(messages.NO_DEVELOPER_PROVIDER)
    user_id = logins[developer]
    if len(user_id) > MAX_DEVELOPER_USER_IDENTIFIER_LENGTH:
        raise InvalidParameterException(
            messages.DEVELOPER_USER_TOO_LONG.format(
                developer=developer, limit=MAX_DEVELOPER_USER_IDENTIFIER_LENGTH
            )
        )
    return developer, user_id


def resolve_developer_login(
    store: IdentityStore,
    *,
    pool_id: str,
    logins: Mapping[str, str],
    identity_id: str | None,
    region: str,
    now: float,
) -> DeveloperLogin:
    pool = store.get_pool(pool_id)
    if pool is None:
        raise ResourceNotFoundException(messages.POOL_NOT_FOUND.format(pool_id=pool_id))
    provider, user_id = developer_user_of(pool, logins)
    key = login_key(provider, user_id)
    if identity_id is None:
        outcome, identity = store.resolve_login(pool_id, key, new_resource_id(region), now)
    else:
        outcome, identity = store.link_login(pool_id, identity_id, key, now)
    _raise_for(outcome, pool_id=pool_id, identity_id=identity_id or "", identity=identity)
    assert identity is not None  # every success outcome carries the identity
    return DeveloperLogin(
        pool=pool,
        identity=identity,
        provider=provider,
        user_id=user_id,
        created=outcome is LinkOutcome.CREATED,
    )


def _raise_for(
    outcome: LinkOutcome, *, pool_id: str, identity_id: str, identity: Identity | None
) -> None:
    if outcome in (LinkOutcome.CREATED, LinkOutcome.EXISTING, LinkOutcome.LINKED):
        return
    if outcome is LinkOutcome.NO_POOL:
        raise ResourceNotFoundException(messages.POOL_NOT_FOUND.format(pool_id=pool_id))
    if outcome is LinkOutcome.NO_IDENTITY:
        raise ResourceNotFoundException(messages.IDENTITY_NOT_FOUND.format(identity_id=identity_id))
    if outcome is LinkOutcome.DISABLED:
        forbidden = identity.id if identity is not None else identity_id
        raise NotAuthorizedException(messages.FORBIDDEN.format(identity_id=forbidden))
    if outcome is LinkOutcome.OTHER_OWNER:
        raise DeveloperUserAlreadyRegisteredException(
            messages.ALREADY_REGISTERED.format(pool_id=pool_id)
        )
    if outcome is LinkOutcome.HAS_OTHER_LOGINS:
        raise NotAuthorizedException(messages.LOGINS_DONT_MATCH)
    raise AssertionError(f"unhandled outcome {outcome}")  # pragma: no cover
