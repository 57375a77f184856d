"""Changing identities: MergeDeveloperIdentities, UnlinkDeveloperIdentity and
DeleteIdentities (contract section 7). Each change is one atomic store step; this module
turns the step's outcome into the contract's answer or error."""

from __future__ import annotations

from collections.abc import Sequence

from broker.errors import InternalErrorException, NotAuthorizedException
from broker.identity import messages
from broker.identity.lookup import developer_provider_of
from broker.identity.models import MAX_LINKED_LOGINS, Identity, login_key
from broker.identity.outcomes import MERGE_ERRORS, UNLINK_ERRORS, raise_for
from broker.identity.pools import describe_pool
from broker.identity.ports import IdentityStore


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
    raise_for(
        MERGE_ERRORS,
        outcome,
        pool_id=pool_id,
        identity_id=None if identity is None else identity.id,
        limit=MAX_LINKED_LOGINS,
    )
    if identity is None:  # every success outcome carries the destination
        raise InternalErrorException(f"the store answered {outcome.name} without an identity")
    return identity


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
    identity left without logins becomes disabled in the same step: AWS makes a Cognito
    identity stripped of every login inaccessible (contract section 7), so no unsigned
    GetOpenIdToken may act for it and no new user may be linked to it. u linked elsewhere
    or nowhere -> ResourceConflictException (decision)."""
    developer = _require_developer(store, pool_id, provider)
    outcome, _ = store.unlink_login(pool_id, identity_id, login_key(developer, user_id), now)
    raise_for(UNLINK_ERRORS, outcome, pool_id=pool_id, identity_id=identity_id)


def delete_identities(store: IdentityStore, identity_ids: Sequence[str]) -> list[str]:
    """Delete the identities and their login indexes; unknown ids are ignored (decision).
    Returns the ids left unprocessed: none, since every step either deletes or skips."""
    store.delete_identities(identity_ids)
    return []
