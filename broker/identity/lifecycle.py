"""Changing identities: MergeDeveloperIdentities, UnlinkDeveloperIdentity and
DeleteIdentities (contract section 7). Each change is one atomic store step; this module
turns the step's outcome into the contract's answer or error."""

from __future__ import annotations

from collections.abc import Sequence

from broker.errors import (
    NotAuthorizedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from broker.identity import messages
from broker.identity.lookup import developer_provider_of
from broker.identity.models import Identity, login_key
from broker.identity.pools import describe_pool
from broker.identity.ports import IdentityStore, MergeOutcome, UnlinkOutcome

#: Linked logins one identity may hold; a merge that would pass it is refused (decision).
MAX_LINKED_LOGINS = 20


def _require_developer(store: IdentityStore, pool_id: str, provider: str) -> str:
    developer = developer_provider_of(describe_pool(store, pool_id))
    if provider != developer:
        raise NotAuthorizedException(messages.NO_DEVELOPER_PROVIDER)
    return developer


def merge_developer_identities(
    store: IdentityStore,
    *,
    pool_id: str,
    provider: str,
    source_user: str,
    destination_user: str,
    now: float,
) -> Identity:
    """Move every login of the source user's identity to the destination user's identity
    and disable the source identity; returns the destination. Both users must be linked
    (ResourceNotFoundException otherwise, decision); users already sharing an identity are
    left as they are."""
    developer = _require_developer(store, pool_id, provider)
    outcome, identity = store.merge_logins(
        pool_id,
        login_key(developer, source_user),
        login_key(developer, destination_user),
        MAX_LINKED_LOGINS,
        now,
    )
    if outcome in (MergeOutcome.MERGED, MergeOutcome.UNCHANGED):
        assert identity is not None
        return identity
    if outcome is MergeOutcome.NO_POOL:
        raise ResourceNotFoundException(messages.POOL_NOT_FOUND.format(pool_id=pool_id))
    if outcome is MergeOutcome.NO_SOURCE:
        raise ResourceNotFoundException(messages.MERGE_SOURCE_NOT_FOUND.format(pool_id=pool_id))
    if outcome is MergeOutcome.NO_DESTINATION:
        raise ResourceNotFoundException(
            messages.MERGE_DESTINATION_NOT_FOUND.format(pool_id=pool_id)
        )
    assert identity is not None
    if outcome is MergeOutcome.DISABLED:
        raise NotAuthorizedException(messages.FORBIDDEN.format(identity_id=identity.id))
    if outcome is MergeOutcome.TOO_MANY:
        raise ResourceConflictException(
            messages.TOO_MANY_LOGINS.format(identity_id=identity.id, limit=MAX_LINKED_LOGINS)
        )
    raise AssertionError(f"unhandled outcome {outcome}")  # pragma: no cover


def unlink_developer_identity(
    store: IdentityStore,
    *,
    pool_id: str,
    identity_id: str,
    provider: str,
    user_id: str,
    now: float,
) -> None:
    """Remove the login D:u from the identity, so that u is a new user next time. An
    identity left without logins stays (it holds no login an authenticated call could
    present); u linked elsewhere or nowhere -> ResourceConflictException (decision)."""
    developer = _require_developer(store, pool_id, provider)
    outcome, _ = store.unlink_login(pool_id, identity_id, login_key(developer, user_id), now)
    if outcome is UnlinkOutcome.UNLINKED:
        return
    if outcome is UnlinkOutcome.NO_POOL:
        raise ResourceNotFoundException(messages.POOL_NOT_FOUND.format(pool_id=pool_id))
    if outcome is UnlinkOutcome.NO_IDENTITY:
        raise ResourceNotFoundException(messages.IDENTITY_NOT_FOUND.format(identity_id=identity_id))
    if outcome is UnlinkOutcome.DISABLED:
        raise NotAuthorizedException(messages.FORBIDDEN.format(identity_id=identity_id))
    if outcome is UnlinkOutcome.NOT_LINKED:
        raise ResourceConflictException(messages.NOT_LINKED.format(identity_id=identity_id))
    raise AssertionError(f"unhandled outcome {outcome}")  # pragma: no cover


def delete_identities(store: IdentityStore, identity_ids: Sequence[str]) -> list[str]:
    """Delete the identities and their login indexes; unknown ids are ignored (decision).
    Returns the ids left unprocessed: none, since every step either deletes or skips."""
    store.delete_identities(identity_ids)
    return []
