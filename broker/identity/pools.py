"""Identity pool rules: create, update, describe, list, delete (contract section 4)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import replace

from broker.errors import (
    BrokerError,
    InvalidParameterException,
    LimitExceededException,
    ResourceNotFoundException,
)
from broker.identity import messages
from broker.identity.models import IdentityPool, Page, PoolConfig, new_resource_id
from broker.identity.ports import IdentityStore

#: Tags one identity pool may carry (contract section 7), whichever operation sets them.
MAX_POOL_TAGS = 50


def check_tag_count(tags: Mapping[str, str]) -> None:
    if len(tags) > MAX_POOL_TAGS:
        raise InvalidParameterException(
            messages.TOO_MANY_TAGS.format(limit=MAX_POOL_TAGS, count=len(tags))
        )


def create_pool(
    store: IdentityStore, config: PoolConfig, *, region: str, max_pools: int, now: float
) -> IdentityPool:
    check_tag_count(config.tags)
    pool = IdentityPool(id=new_resource_id(region), config=config, created=now)
    try:
        if not store.reserve_pool_slot(pool.id, max_pools):
            raise LimitExceededException(messages.POOL_LIMIT.format(limit=max_pools))
        store.put_new_pool(pool)
    except LimitExceededException:
        raise
    except BrokerError:
        # Not acknowledged (Redis failed, or replicas did not confirm): give the reserved
        # place back, so a creation the client never learnt of holds nothing (best effort;
        # the checker reports what a failing Redis keeps).
        with contextlib.suppress(BrokerError):
            store.abandon_new_pool(pool.id)
        raise
    return pool


def describe_pool(store: IdentityStore, pool_id: str) -> IdentityPool:
    pool = store.get_pool(pool_id)
    if pool is None:
        raise ResourceNotFoundException(messages.POOL_NOT_FOUND.format(pool_id=pool_id))
    return pool


def update_pool(
    store: IdentityStore, pool_id: str, config: PoolConfig, *, replace_tags: bool
) -> IdentityPool:
    """UpdateIdentityPool takes the whole pool: members left out take their defaults,
    except DeveloperProviderName, which stays and, once set, never changes (decision), and
    the tags (contract section 7, decision): without IdentityPoolTags in the request
    (``replace_tags`` False) the pool keeps the tags it has, since tags have their own API
    and Terraform's provider sets them with TagResource and updates the pool without them;
    with IdentityPoolTags, even an empty map, they are replaced.

    The store compare-and-sets the record, calling ``keep`` on the record it replaces, so
    two racing updates cannot both set a different DeveloperProviderName, and a TagResource
    racing an update without tags is not lost."""
    if replace_tags:
        check_tag_count(config.tags)

    def keep(current: PoolConfig) -> PoolConfig:
        developer = current.developer_provider_name
        kept = config if replace_tags else replace(config, tags=current.tags)
        if config.developer_provider_name is None:
            return replace(kept, developer_provider_name=developer)
        if developer is not None and config.developer_provider_name != developer:
            raise InvalidParameterException(
                messages.PROVIDER_IMMUTABLE.format(pool_id=pool_id, current=developer)
            )
        return kept

    updated = store.change_pool_config(pool_id, keep)
    if updated is None:
        raise ResourceNotFoundException(messages.POOL_NOT_FOUND.format(pool_id=pool_id))
    return updated


def delete_pool(store: IdentityStore, pool_id: str) -> None:
    if not store.delete_pool(pool_id):
        raise ResourceNotFoundException(messages.POOL_NOT_FOUND.format(pool_id=pool_id))


def list_pools(store: IdentityStore, *, after: int | None, limit: int) -> Page:
    return store.list_pools(after, limit)
