"""What the identity rules need from storage, as a protocol the Redis store implements.

Every method that changes more than one record is atomic in the implementation; the
outcome enums let the rules turn a storage answer into the contract's error without
knowing how the store reached it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from broker.identity.models import (
    Credentials,
    Identity,
    IdentityPool,
    Page,
    PoolConfig,
    PoolRoles,
    PrincipalTagMap,
)


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
    # resolve_logins only (several logins of one call, contract section 9)
    MERGED = "MERGED"  # other identities holding the call's logins were merged into it
    TOO_MANY = "TOO_MANY"  # the survivor would pass the linked logins limit; nothing changed
    CONFLICT = "CONFLICT"  # one public provider would hold two users there; nothing changed


@dataclass(frozen=True)
class LoginsRequest:
    """What :meth:`IdentityStore.resolve_logins` is asked: link ``logins`` (stored keys) to
    one identity. That is the identity ``named`` (which must hold one of them already, or
    else hold no login while no other identity holds one of them), else the one holding
    ``developer`` (one of ``logins``), else the oldest holding any, else a new identity
    ``new_identity_id``. Every other identity holding one of them is merged into it. With
    ``named`` and ``developer``, the developer login may belong to no other identity.
    Logins not under ``developer_prefix`` are public: at most one per provider on the
    identity. At most ``max_logins`` in all."""

    logins: tuple[str, ...]
    new_identity_id: str
    now: float
    max_logins: int
    named: str | None = None
    developer: str | None = None
    developer_prefix: str | None = None


@dataclass(frozen=True)
class LoginsResolved:
    outcome: LinkOutcome
    identity: Identity | None  # the survivor (or the identity a refusal names)
    merged: tuple[str, ...] = ()  # the identities merged into it, now disabled


class MergeOutcome(enum.Enum):
    """Answers of :meth:`IdentityStore.merge_logins`."""

    MERGED = "MERGED"  # the source's logins moved; the identity returned is the destination
    UNCHANGED = "UNCHANGED"  # both users already share the identity returned
    NO_POOL = "NO_POOL"
    NO_SOURCE = "NO_SOURCE"  # the source user is linked to no identity
    NO_DESTINATION = "NO_DESTINATION"
    DISABLED = "DISABLED"  # the identity returned is disabled
    TOO_MANY = "TOO_MANY"  # the merge would pass the logins limit; nothing changed
    CONFLICT = "CONFLICT"  # two users of one public provider would meet; nothing changed


class UnlinkOutcome(enum.Enum):
    """Answers of :meth:`IdentityStore.unlink_login`."""

    UNLINKED = "UNLINKED"  # removed; an identity left without logins is now disabled
    NO_POOL = "NO_POOL"
    NO_IDENTITY = "NO_IDENTITY"
    DISABLED = "DISABLED"
    NOT_LINKED = "NOT_LINKED"  # the login is not linked to that identity


#: Turns a pool's tags into the tags to store; may raise to refuse the change.
TagChange = Callable[[Mapping[str, str]], Mapping[str, str]]
#: Turns a pool's configuration into the one to store; may raise to refuse the change.
ConfigChange = Callable[[PoolConfig], PoolConfig]
#: Decides whether a write guarded by the pool may happen; raises to refuse it. The store
#: writes only while the pool is still the one the check saw (compare-and-set).
PoolCheck = Callable[[IdentityPool], None]


class IdentityStore(Protocol):
    # pools
    def reserve_pool_slot(self, pool_id: str, max_pools: int) -> bool: ...
    def put_new_pool(self, pool: IdentityPool) -> None: ...
    def abandon_new_pool(self, pool_id: str) -> None:
        """Undo a creation that failed before it was acknowledged (the pool is empty)."""
        ...

    def get_pool(self, pool_id: str) -> IdentityPool | None: ...
    def change_pool_config(self, pool_id: str, change: ConfigChange) -> IdentityPool | None: ...
    def delete_pool(self, pool_id: str) -> bool: ...
    def list_pools(self, after: int | None, limit: int) -> Page: ...
    def change_pool_tags(self, pool_id: str, change: TagChange) -> IdentityPool | None: ...

    # pool settings (keys in the pool's hash slot, deleted with the pool)
    def set_pool_roles(self, pool_id: str, roles: PoolRoles) -> bool: ...
    def get_pool_roles(self, pool_id: str) -> PoolRoles | None: ...
    def set_principal_tag_map(
        self, pool_id: str, provider: str, tag_map: PrincipalTagMap, check: PoolCheck
    ) -> bool: ...
    def get_principal_tag_map(
        self, pool_id: str, provider: str
    ) -> tuple[IdentityPool | None, PrincipalTagMap | None]: ...

    # identities and logins
    def resolve_login(
        self, pool_id: str, login: str, new_identity_id: str, now: float, peek: str | None = None
    ) -> tuple[LinkOutcome, Identity | None, str | None]:
        """The login's identity, created as ``new_identity_id`` when the login is new; with
        ``peek`` (a key of the same pool), also the value stored there when the identity
        already existed, read at the same moment (else None)."""
        ...

    def link_login(
        self, pool_id: str, identity_id: str, login: str, now: float
    ) -> tuple[LinkOutcome, Identity | None]: ...
    def resolve_logins(self, pool_id: str, request: LoginsRequest) -> LoginsResolved:
        """Several logins of one call in one atomic step (contract section 9): see
        :class:`LoginsRequest` for the rules."""
        ...

    def create_unauthenticated(
        self, pool_id: str, identity_id: str, now: float
    ) -> Identity | None: ...
    def get_identity(self, identity_id: str) -> Identity | None: ...
    def find_identity(self, pool_id: str, identity_id: str) -> Identity | None: ...
    def lookup_login(self, pool_id: str, login: str) -> Identity | None: ...
    def list_identities(
        self, pool_id: str, after: int | None, limit: int, hide_disabled: bool
    ) -> Page | None: ...
    def merge_logins(
        self, pool_id: str, source: str, destination: str, max_logins: int, now: float
    ) -> tuple[MergeOutcome, Identity | None]: ...
    def unlink_login(
        self, pool_id: str, identity_id: str, login: str, now: float
    ) -> tuple[UnlinkOutcome, Identity | None]: ...
    def delete_identities(self, identity_ids: Sequence[str]) -> None: ...


class RoleAssumer(Protocol):
    """STS ``AssumeRoleWithWebIdentity`` for GetCredentialsForIdentity (``broker.sts``).

    Raises the broker's errors: NotAuthorizedException when STS refuses the role or the
    token, TooManyRequestsException when it throttles past the call's deadline,
    ExternalServiceException when it cannot be reached or fails."""

    def assume_role(self, role_arn: str, token: str) -> Credentials: ...
