"""Reading identities: LookupDeveloperIdentity, DescribeIdentity, ListIdentities (contract
section 7). Nothing here changes data."""

from __future__ import annotations

from dataclasses import dataclass

from broker.errors import (
    InvalidParameterException,
    NotAuthorizedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from broker.identity import messages
from broker.identity.models import Identity, IdentityPool, Page, login_key
from broker.identity.pools import describe_pool
from broker.identity.ports import IdentityStore


@dataclass(frozen=True)
class UserIdPage:
    """One page of an identity's developer user ids, and the last one returned when more
    follow (the next page starts after it)."""

    user_ids: list[str]
    after: str | None


def developer_provider_of(pool: IdentityPool) -> str:
    """The pool's developer provider D; a pool without one supports none of the developer
    operations (contract section 5 rule 2, applied to section 7 by decision)."""
    developer = pool.config.developer_provider_name
    if developer is None:
        raise NotAuthorizedException(messages.NO_DEVELOPER_PROVIDER)
    return developer


def find_developer_identity(
    store: IdentityStore, *, pool_id: str, identity_id: str | None, user_id: str | None
) -> tuple[str, Identity]:
    """LookupDeveloperIdentity's identity: the one named, or the one the user id is linked
    to; both given must agree (ResourceConflictException). Returns (D, identity). Neither
    given is refused before the pool is read."""
    if identity_id is not None:
        developer = developer_provider_of(describe_pool(store, pool_id))
        return developer, _named_identity(store, pool_id, developer, identity_id, user_id)
    if user_id is not None:
        developer = developer_provider_of(describe_pool(store, pool_id))
        found = store.lookup_login(pool_id, login_key(developer, user_id))
        if found is None:
            raise ResourceNotFoundException(
                messages.DEVELOPER_USER_NOT_FOUND.format(pool_id=pool_id)
            )
        return developer, found
    raise InvalidParameterException(messages.LOOKUP_NEEDS_ONE)


def _named_identity(
    store: IdentityStore, pool_id: str, developer: str, identity_id: str, user_id: str | None
) -> Identity:
    identity = store.find_identity(pool_id, identity_id)
    if identity is None:
        raise ResourceNotFoundException(messages.IDENTITY_NOT_FOUND.format(identity_id=identity_id))
    if user_id is not None and login_key(developer, user_id) not in identity.logins:
        raise ResourceConflictException(messages.LOOKUP_MISMATCH.format(identity_id=identity_id))
    return identity


def page_user_ids(
    identity: Identity, developer: str, *, after: str | None, limit: int
) -> UserIdPage:
    """The identity's developer user ids in sorted order, from just after ``after``: a walk
    stays stable while ids are merged in or unlinked between pages."""
    remaining = sorted(
        u for u in identity.developer_user_ids(developer) if after is None or u > after
    )
    page = remaining[:limit]
    return UserIdPage(user_ids=page, after=page[-1] if len(remaining) > limit else None)


def describe_identity(store: IdentityStore, identity_id: str) -> Identity:
    identity = store.get_identity(identity_id)
    if identity is None:
        raise ResourceNotFoundException(messages.IDENTITY_NOT_FOUND.format(identity_id=identity_id))
    return identity


def list_identities(
    store: IdentityStore, pool_id: str, *, after: int | None, limit: int, hide_disabled: bool
) -> Page:
    """A page in creation order; positions are creation sequence numbers, so a walk neither
    repeats nor skips an identity that exists throughout. With HideDisabled a page may hold
    fewer than ``limit`` identities and still be followed by another."""
    page = store.list_identities(pool_id, after, limit, hide_disabled)
    if page is None:
        raise ResourceNotFoundException(messages.POOL_NOT_FOUND.format(pool_id=pool_id))
    return page
