"""What a pool stores beside its configuration (contract section 7): roles and role
mappings, principal tag attribute maps, and tags addressed by the pool's ARN.

Roles and role mappings are checked when they are set (``broker.identity.roles``) and
used by GetCredentialsForIdentity; tag maps are only stored and returned as the service
model describes them. Tags are the pool's IdentityPoolTags, at most
``broker.identity.pools.MAX_POOL_TAGS`` of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from broker.errors import InvalidParameterException, ResourceNotFoundException
from broker.identity import messages
from broker.identity.models import IdentityPool, PoolRoles, PrincipalTagMap
from broker.identity.pools import check_tag_count, describe_pool
from broker.identity.ports import IdentityStore
from broker.identity.roles import check_role_settings

POOL_ARN = re.compile(
    r"arn:aws:cognito-identity:(?P<region>[a-z0-9-]+):(?P<account>\d{12})"
    r":identitypool/(?P<pool>[\w-]+:[0-9a-f-]+)",
    re.ASCII,
)


# --- roles -------------------------------------------------------------------------------
def set_pool_roles(
    store: IdentityStore, pool_id: str, roles: Mapping[str, str], mappings: Mapping[str, Any]
) -> None:
    """Store Roles and RoleMappings whole, once ``check_role_settings`` accepts them
    (InvalidParameterException, as AWS answers). The check reads the pool's providers
    first: an update removing a provider meanwhile leaves its mapping stored, and that
    mapping then never applies (no call proves a provider the pool no longer has)."""
    check_role_settings(describe_pool(store, pool_id), roles, mappings)
    if not store.set_pool_roles(pool_id, PoolRoles(roles=roles, role_mappings=mappings)):
        raise ResourceNotFoundException(messages.POOL_NOT_FOUND.format(pool_id=pool_id))


def get_pool_roles(store: IdentityStore, pool_id: str) -> PoolRoles:
    describe_pool(store, pool_id)
    return store.get_pool_roles(pool_id) or PoolRoles()


# --- principal tag attribute maps --------------------------------------------------------
def _require_provider(pool: IdentityPool, provider: str) -> None:
    """A map belongs to one of the pool's identity providers (decision)."""
    if provider not in pool.provider_names():
        raise InvalidParameterException(
            messages.NOT_A_POOL_PROVIDER.format(provider=provider, pool_id=pool.id)
        )


def set_principal_tag_map(
    store: IdentityStore, pool_id: str, provider: str, tag_map: PrincipalTagMap
) -> PrincipalTagMap:
    """The provider check and the write are one step: the store writes only while the pool
    record is the one ``_require_provider`` accepted (an update removing the provider in
    between makes the check run again, and refuse)."""
    if not store.set_principal_tag_map(
        pool_id, provider, tag_map, lambda pool: _require_provider(pool, provider)
    ):
        raise ResourceNotFoundException(messages.POOL_NOT_FOUND.format(pool_id=pool_id))
    return tag_map


def get_principal_tag_map(store: IdentityStore, pool_id: str, provider: str) -> PrincipalTagMap:
    """A provider never mapped answers UseDefaults false and no tags (decision). The pool
    and the map are read together, so the check applies to the map returned."""
    pool, tag_map = store.get_principal_tag_map(pool_id, provider)
    if pool is None:
        raise ResourceNotFoundException(messages.POOL_NOT_FOUND.format(pool_id=pool_id))
    _require_provider(pool, provider)
    return tag_map or PrincipalTagMap()


# --- tags --------------------------------------------------------------------------------
def pool_of_arn(arn: str, *, region: str, account_id: str) -> str:
    """The pool id an ARN names. Not an identity pool ARN -> InvalidParameterException; one
    of another region or account names no pool here -> ResourceNotFoundException."""
    match = POOL_ARN.fullmatch(arn)
    if match is None:
        raise InvalidParameterException(messages.INVALID_POOL_ARN.format(arn=arn))
    pool_id = match["pool"]
    if match["region"] != region or match["account"] != account_id:
        raise ResourceNotFoundException(messages.POOL_NOT_FOUND.format(pool_id=pool_id))
    return pool_id


def list_tags(store: IdentityStore, pool_id: str) -> Mapping[str, str]:
    return describe_pool(store, pool_id).config.tags


def tag_pool(store: IdentityStore, pool_id: str, tags: Mapping[str, str]) -> None:
    """Add or overwrite tags; more than MAX_POOL_TAGS in all is refused."""

    def change(current: Mapping[str, str]) -> Mapping[str, str]:
        merged = {**current, **tags}
        check_tag_count(merged)
        return merged

    if store.change_pool_tags(pool_id, change) is None:
        raise ResourceNotFoundException(messages.POOL_NOT_FOUND.format(pool_id=pool_id))


def untag_pool(store: IdentityStore, pool_id: str, keys: Sequence[str]) -> None:
    """Remove tags; keys the pool does not have are ignored."""
    gone = set(keys)

    def change(current: Mapping[str, str]) -> Mapping[str, str]:
        return {key: value for key, value in current.items() if key not in gone}

    if store.change_pool_tags(pool_id, change) is None:
        raise ResourceNotFoundException(messages.POOL_NOT_FOUND.format(pool_id=pool_id))
