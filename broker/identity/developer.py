"""GetOpenIdTokenForDeveloperIdentity: which identity a developer login resolves to.

Implements the rules of contract section 5 (steps 1 to 5). Signing the token is the
tokens package's job; this module only decides the identity and raises the contract's
errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from broker.errors import (
    InternalErrorException,
    InvalidParameterException,
    NotAuthorizedException,
    ResourceNotFoundException,
)
from broker.identity import messages
from broker.identity.linking import (
    LoginVerifier,
    PublicLogin,
    link_logins,
    verify_public_logins,
)
from broker.identity.models import (
    Identity,
    IdentityPool,
    login_key,
    new_resource_id,
)
from broker.identity.outcomes import LINK_ERRORS, raise_for
from broker.identity.ports import IdentityStore, LinkOutcome
from config.aws_model import MAX_DEVELOPER_USER_IDENTIFIER_LENGTH


@dataclass(frozen=True)
class DeveloperLogin:
    """The identity a developer user id resolved to, and whether it was just created."""

    pool_id: str
    identity: Identity
    provider: str
    user_id: str
    created: bool
    peeked: str | None = None  # the value under ``peek`` when the identity existed
    public: tuple[PublicLogin, ...] = ()  # the call's public logins, verified and linked


class DeveloperProviders:
    """Pool id -> its DeveloperProviderName, remembered by each process once set.

    The name never changes once set (contract §4, decision) and pool ids are never reused,
    so for the common call, whose Logins hold only the developer login, the rules of step 2
    are decided without reading the pool; the store's script still checks that the pool
    exists. Bounded: when full, it simply forgets everything and starts again.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._known: dict[str, str] = {}

    def get(self, pool_id: str) -> str | None:
        return self._known.get(pool_id)

    def remember(self, pool: IdentityPool) -> None:
        developer = pool.config.developer_provider_name
        if developer is not None:
            if len(self._known) >= self._capacity:
                self._known.clear()
            self._known[pool.id] = developer

    def forget(self, pool_id: str) -> None:
        self._known.pop(pool_id, None)


def developer_user_of(pool: IdentityPool, logins: Mapping[str, str]) -> tuple[str, str]:
    """Check Logins against the pool's providers (rule 2); return (D, u).

    A pool without D refuses before any key is looked at; any other key must be one of the
    pool's providers (its login is verified and linked, section 9). u is capped at the
    length the other developer operations accept, and never echoed.
    """
    developer = pool.config.developer_provider_name
    if developer is None:
        raise NotAuthorizedException(messages.NO_DEVELOPER_PROVIDER)
    known = pool.provider_names()
    for provider in logins:
        if provider not in known:
            raise NotAuthorizedException(messages.NOT_A_PROVIDER)
    if developer not in logins:
        raise NotAuthorizedException(messages.NO_DEVELOPER_PROVIDER)
    return developer, _checked_user(developer, logins[developer])


def _checked_user(developer: str, user_id: str) -> str:
    if len(user_id) > MAX_DEVELOPER_USER_IDENTIFIER_LENGTH:
        raise InvalidParameterException(
            messages.DEVELOPER_USER_TOO_LONG.format(
                developer=developer, limit=MAX_DEVELOPER_USER_IDENTIFIER_LENGTH
            )
        )
    return user_id


def resolve_developer_login(
    store: IdentityStore,
    *,
    pool_id: str,
    logins: Mapping[str, str],
    identity_id: str | None,
    region: str,
    now: float,
    providers: DeveloperProviders | None = None,
    peek: str | None = None,
    verifier: LoginVerifier | None = None,
) -> DeveloperLogin:
    """The identity of a developer login (created when new, unless ``identity_id`` names
    the identity to link it to). ``peek``: a key of the pool whose value the store reads in
    the same step when the identity already existed (``DeveloperLogin.peeked``). Public
    logins beside it are verified by ``verifier`` and linked with it (section 9); without a
    verifier they are refused."""
    known = providers.get(pool_id) if providers is not None else None
    if known is not None and len(logins) == 1 and known in logins:
        provider, user_id = known, _checked_user(known, logins[known])
    else:
        pool = store.get_pool(pool_id)
        if pool is None:
            raise ResourceNotFoundException(messages.POOL_NOT_FOUND.format(pool_id=pool_id))
        if providers is not None:
            providers.remember(pool)
        provider, user_id = developer_user_of(pool, logins)
        if len(logins) > 1:
            return _with_public_logins(
                store, pool, logins, (provider, user_id), identity_id, region, now, verifier
            )
    key = login_key(provider, user_id)
    peeked = None
    if identity_id is None:
        outcome, identity, peeked = store.resolve_login(
            pool_id, key, new_resource_id(region), now, peek
        )
    else:
        outcome, identity = store.link_login(pool_id, identity_id, key, now)
    if outcome is LinkOutcome.NO_POOL and providers is not None:
        providers.forget(pool_id)
    raise_for(
        LINK_ERRORS,
        outcome,
        pool_id=pool_id,
        # DISABLED names the identity the store found (the login's owner, or the one given)
        identity_id=identity.id if identity is not None else identity_id,
    )
    if identity is None:  # every success outcome carries the identity
        raise InternalErrorException(f"the store answered {outcome.value} without an identity")
    return DeveloperLogin(
        pool_id=pool_id,
        identity=identity,
        provider=provider,
        user_id=user_id,
        created=outcome is LinkOutcome.CREATED,
        peeked=peeked,
    )


def _with_public_logins(
    store: IdentityStore,
    pool: IdentityPool,
    logins: Mapping[str, str],
    developer: tuple[str, str],
    identity_id: str | None,
    region: str,
    now: float,
    verifier: LoginVerifier | None,
) -> DeveloperLogin:
    """D:u with public logins beside it: each verified, then all linked in one step to the
    identity D:u resolves to (or that one of them already has), merging as section 9 says."""
    provider, user_id = developer
    others = {name: token for name, token in logins.items() if name != provider}
    if verifier is None:
        raise NotAuthorizedException(
            messages.PUBLIC_PROVIDER_UNSUPPORTED.format(provider=next(iter(others)))
        )
    public = verify_public_logins(pool, others, verifier, now)
    linked = link_logins(
        store, pool, public, region=region, now=now, named=identity_id, developer=developer
    )
    return DeveloperLogin(
        pool_id=pool.id,
        identity=linked.identity,
        provider=provider,
        user_id=user_id,
        created=linked.created,
        public=tuple(public),
    )
