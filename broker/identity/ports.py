"""What the identity rules need from storage, as a protocol the Redis store implements.

Every method that changes more than one record is atomic in the implementation; the
outcome enums let the rules turn a storage answer into the contract's error without
knowing how the store reached it.
"""

from __future__ import annotations

import enum
from typing import Protocol

from broker.identity.models import Identity, IdentityPool, Page, PoolConfig


class LinkOutcome(enum.Enum):
    """Answers of :meth:`IdentityStore.resolve_login` and :meth:`IdentityStore.link_login`."""

    CREATED = "CREATED"  # a new identity now holds the login
    EXISTING = "EXISTING"  # the login already belonged to the identity returned
    LINKED = "LINKED"  # the login was added to the given identity
    NO_POOL = "NO_POOL"
    NO_IDENTITY = "NO_IDENTITY"
    DISABLED = "DISABLED"
    OTHER_OWNER = "OTHER_OWNER"  # the login belongs to another identity
    HAS_OTHER_LOGINS = "HAS_OTHER_LOGINS"


class IdentityStore(Protocol):
    # pools
    def reserve_pool_slot(self, pool_id: str, max_pools: int) -> bool: ...
    def put_new_pool(self, pool: IdentityPool) -> None: ...
    def get_pool(self, pool_id: str) -> IdentityPool | None: ...
    def replace_pool_config(self, pool_id: str, config: PoolConfig) -> IdentityPool | None: ...
    def delete_pool(self, pool_id: str) -> bool: ...
    def list_pools(self, after: int | None, limit: int) -> Page: ...

    # identities and logins
    def resolve_login(
        self, pool_id: str, login: str, new_identity_id: str, now: float
    ) -> tuple[LinkOutcome, Identity | None]: ...
    def link_login(
        self, pool_id: str, identity_id: str, login: str, now: float
    ) -> tuple[LinkOutcome, Identity | None]: ...
