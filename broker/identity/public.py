"""The operations Cognito serves without SigV4 (contract sections 2 and 7): GetId,
GetOpenIdToken, UnlinkIdentity and GetCredentialsForIdentity.

Without developer credentials the caller proves nothing but what it sends: no logins (an
unauthenticated identity, if the pool allows them), or under ``cognito-identity.amazonaws.com``
a token this broker issued for the identity (decision). Public providers' tokens cannot be
verified by the broker, so they are refused; developer logins belong to the signed
GetOpenIdTokenForDeveloperIdentity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from broker.errors import (
    InvalidIdentityPoolConfigurationException,
    InvalidParameterException,
    NotAuthorizedException,
    ResourceNotFoundException,
)
from broker.identity import messages
from broker.identity.models import (
    COGNITO_PROVIDER,
    Identity,
    IdentityPool,
    login_key,
    new_resource_id,
)
from broker.identity.pools import describe_pool
from broker.identity.ports import IdentityStore

#: Returns the claims of a token the broker issued; raises ValueError (the reason) if it is
#: not one, or no longer valid. ``broker.tokens.verify.verify_token`` is the real one.
Verifier = Callable[[str], Mapping[str, Any]]

#: Called with the pool's id once the pool is known and before any work is done for the
#: caller; raises TooManyRequestsException past the per-pool limit of the unsigned
#: operations (``broker.ratelimit.limiter.RateLimiter.check_unsigned_pool``).
PoolLimit = Callable[[str], None]


@dataclass(frozen=True)
class Access:
    """Who a public call turned out to be: the identity, its pool, and the developer login
    (D, u) the presented token was issued for; None for an unauthenticated identity."""

    pool: IdentityPool
    identity: Identity
    login: tuple[str, str] | None
    presented: Mapping[str, Any]  # the claims of the token presented; empty when none


def get_id(
    store: IdentityStore,
    *,
    pool_id: str,
    account_id: str | None,
    logins: Mapping[str, str],
    broker_account_id: str,
    region: str,
    now: float,
    limit_pool: PoolLimit,
) -> Identity:
    """GetId: without logins, a new unauthenticated identity if the pool allows them. An
    AccountId other than the broker's names a pool that is not here (decision)."""
    if account_id is not None and account_id != broker_account_id:
        raise ResourceNotFoundException(messages.POOL_NOT_FOUND.format(pool_id=pool_id))
    pool = describe_pool(store, pool_id)
    limit_pool(pool.id)
    developer = pool.config.developer_provider_name
    known = pool.provider_names()
    for provider in logins:
        if provider == developer:
            raise NotAuthorizedException(
                messages.DEVELOPER_LOGIN_NOT_HERE.format(developer=developer, operation="GetId")
            )
        if provider not in known:
            raise NotAuthorizedException(messages.NOT_A_PROVIDER)
        raise NotAuthorizedException(messages.PUBLIC_PROVIDER_UNSUPPORTED.format(provider=provider))
    if not pool.config.allow_unauthenticated:
        raise NotAuthorizedException(messages.UNAUTHENTICATED_NOT_SUPPORTED)
    identity = store.create_unauthenticated(pool_id, new_resource_id(region), now)
    if identity is None:  # the pool was deleted meanwhile
        raise ResourceNotFoundException(messages.POOL_NOT_FOUND.format(pool_id=pool_id))
    return identity


def authenticate(
    store: IdentityStore,
    *,
    identity_id: str,
    logins: Mapping[str, str],
    verify: Verifier,
    limit_pool: PoolLimit,
) -> Access:
    """Decide whether a public call may act for the identity (GetOpenIdToken, UnlinkIdentity).

    An identity holding logins must be proven by a valid broker token whose sub is the
    identity, whose aud is its pool and whose developer login is still linked to it; an
    identity without logins needs nothing (or its own unauthenticated token) and a pool
    that allows unauthenticated identities. A disabled identity is forbidden: the source of
    a merge, and an identity whose last login was unlinked (the store disables it then, so
    an identity without logins that is still enabled never had one).
    """
    identity = store.get_identity(identity_id)
    pool = None if identity is None else store.get_pool(identity.pool_id)
    if identity is None or pool is None:
        raise ResourceNotFoundException(messages.IDENTITY_NOT_FOUND.format(identity_id=identity_id))
    limit_pool(pool.id)  # before a presented token costs a signature check
    if identity.disabled:
        raise NotAuthorizedException(messages.FORBIDDEN.format(identity_id=identity_id))
    for provider in logins:
        if provider != COGNITO_PROVIDER:
            raise NotAuthorizedException(
                messages.ONLY_BROKER_LOGIN.format(cognito=COGNITO_PROVIDER)
            )
    presented: Mapping[str, Any] = {}
    if COGNITO_PROVIDER in logins:
        try:
            presented = verify(logins[COGNITO_PROVIDER])
        except ValueError as exc:
            raise NotAuthorizedException(messages.INVALID_LOGIN.format(reason=exc)) from None
        if presented.get("sub") != identity.id or presented.get("aud") != pool.id:
            raise NotAuthorizedException(
                messages.LOGIN_NOT_FOR_IDENTITY.format(identity_id=identity_id)
            )
    login = _developer_login(presented, pool.id)
    if login is not None:
        if login_key(*login) not in identity.logins:
            raise NotAuthorizedException(messages.LOGINS_DONT_MATCH)
        return Access(pool=pool, identity=identity, login=login, presented=presented)
    if identity.logins:
        raise NotAuthorizedException(messages.LOGINS_DONT_MATCH)
    if not pool.config.allow_unauthenticated:
        raise NotAuthorizedException(messages.UNAUTHENTICATED_NOT_SUPPORTED)
    return Access(pool=pool, identity=identity, login=None, presented=presented)


def _developer_login(claims: Mapping[str, Any], pool_id: str) -> tuple[str, str] | None:
    """(D, u) from an authenticated token's amr ``["authenticated", D, "D:<pool>:u"]``."""
    amr = claims.get("amr")
    if not (isinstance(amr, list) and len(amr) == 3 and amr[0] == "authenticated"):
        return None
    provider, qualified = amr[1], amr[2]
    prefix = f"{provider}:{pool_id}:"
    if not (isinstance(qualified, str) and qualified.startswith(prefix)):
        return None
    return str(provider), qualified[len(prefix) :]


def unlink_identity(
    store: IdentityStore,
    *,
    identity_id: str,
    logins: Mapping[str, str],
    logins_to_remove: Sequence[str],
    verify: Verifier,
    limit_pool: PoolLimit,
) -> None:
    """UnlinkIdentity removes public-provider logins, which the broker never links: the
    developer provider's are refused (UnlinkDeveloperIdentity removes them) and any other
    provider is absent from the identity already, so the call changes nothing (decision)."""
    access = authenticate(
        store, identity_id=identity_id, logins=logins, verify=verify, limit_pool=limit_pool
    )
    developer = access.pool.config.developer_provider_name
    for provider in logins_to_remove:
        if provider == developer:
            raise InvalidParameterException(
                messages.UNLINK_DEVELOPER_ELSEWHERE.format(developer=developer)
            )


def get_credentials_for_identity() -> NoReturn:
    """AWS credentials come from STS, which the broker is not (contract section 7)."""
    raise InvalidIdentityPoolConfigurationException(messages.NO_STS)
