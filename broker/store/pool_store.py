"""Identity pools on Redis: the pool records, their index and the pool-scoped settings.

Creating and deleting a pool also touch the broker-wide pool index and names (and, for a
deletion, the identity index), which live in other hash slots; those steps are ordered so
that a crash between them leaves only what listings and lookups skip, the consistency
checker (``broker.store.checker``) reports, and a repeated call finishes:

- create: reserve a place in the index (the pool limit, atomically), write the record,
  then the name that makes the pool appear in ListIdentityPools;
- delete: remove the pool from the index and names, then its record and data (one O(1)
  script), then clean the data's tombstones and the identity index in bounded steps.

Each write is confirmed by the replicas when ``REDIS_WAIT_REPLICAS`` asks for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from broker.errors import ConcurrentModificationException
from broker.identity import messages
from broker.identity.models import (
    IdentityPool,
    Page,
    PoolConfig,
    PoolListing,
    PoolRoles,
    PrincipalTagMap,
)
from broker.identity.ports import ConfigChange, PoolCheck, TagChange
from broker.store import keys, scripts
from broker.store.connection import always
from broker.store.script_runner import ScriptRunner
from broker.store.token_cache import entry_key, signed_counter_key

#: When a pool is deleted: identities read per HSCAN and keys examined per SCAN of the token
#: cache. Bounds the cost of every call.
DELETION_BATCH = 1000
#: Identity index entries gathered before they are removed, one HDEL per index bucket.
UNINDEX_BATCH = 50_000
#: How often a pool change (an update, a tag change) retries when the record changed under it.
POOL_CHANGE_ATTEMPTS = 20


def _written(answer: Any) -> bool:
    return int(answer) == 1


class PoolStore(ScriptRunner):
    # --- pools ---------------------------------------------------------------------------
    def reserve_pool_slot(self, pool_id: str, max_pools: int) -> bool:
        seq = self._run(
            scripts.RESERVE_POOL,
            [keys.POOL_INDEX, keys.POOL_SEQUENCE],
            [pool_id, max_pools],
            confirm=lambda answer: int(answer) > 0,
        )
        return int(seq) > 0

    def put_new_pool(self, pool: IdentityPool) -> None:
        key = keys.PoolKeys.of(pool.id).pool
        self._call(key, "SET", key, encode_pool(pool), "NX", confirm=always)
        self._name_pool(pool)

    def abandon_new_pool(self, pool_id: str) -> None:
        """A creation not acknowledged: out of the index and names, its record gone."""
        self._run(scripts.UNINDEX_POOL, [keys.POOL_INDEX, keys.POOL_NAMES], [pool_id])
        self.redis.delete(keys.PoolKeys.of(pool_id).pool)

    def _name_pool(self, pool: IdentityPool) -> None:
        """The name ListIdentityPools shows, beside the pool index (its slot)."""
        self._call(
            keys.POOL_NAMES, "HSET", keys.POOL_NAMES, pool.id, pool.config.name, confirm=always
        )

    def get_pool(self, pool_id: str) -> IdentityPool | None:
        raw = self.redis.get(keys.PoolKeys.of(pool_id).pool)
        return None if raw is None else decode_pool(pool_id, str(raw))

    def change_pool_config(self, pool_id: str, change: ConfigChange) -> IdentityPool | None:
        """UpdateIdentityPool's write, compare-and-set like a tag change: the rule in
        ``change`` (DeveloperProviderName never changes once set) always sees the record
        it replaces."""
        return self._swap_pool(
            pool_id, lambda current: replace(current, config=change(current.config))
        )

    def change_pool_tags(self, pool_id: str, change: TagChange) -> IdentityPool | None:
        return self._swap_pool(
            pool_id,
            lambda current: replace(
                current, config=replace(current.config, tags=dict(change(current.config.tags)))
            ),
        )

    def _swap_pool(
        self, pool_id: str, change: Callable[[IdentityPool], IdentityPool]
    ) -> IdentityPool | None:
        """Read, change and compare-and-set the pool record: a concurrent update or deletion
        of the pool makes the write fail and the change start again from a fresh read.
        None when the pool does not exist (or was deleted meanwhile). A new name is then
        written beside the pool index."""
        key = keys.PoolKeys.of(pool_id).pool
        for _ in range(POOL_CHANGE_ATTEMPTS):
            raw = self.redis.get(key)
            if raw is None:
                return None
            current = decode_pool(pool_id, str(raw))
            updated = change(current)
            swapped = int(
                self._run(
                    scripts.SWAP_POOL, [key], [str(raw), encode_pool(updated)], confirm=_written
                )
            )
            if swapped == 1:
                if updated.config.name != current.config.name:
                    self._name_pool(updated)
                return updated
            if swapped < 0:
                return None
        raise ConcurrentModificationException(messages.POOL_KEPT_CHANGING.format(pool_id=pool_id))

    def delete_pool(self, pool_id: str) -> bool:
        """DeleteIdentityPool leaves nothing of the pool behind (contract section 4), and no
        Redis call it makes grows with the pool: the pool leaves the listing, one O(1)
        script removes the pool and moves its data to tombstones, then ``_finish_deletion``
        cleans them in bounded batches.

        A deletion interrupted between the steps (a worker killed, Redis unreachable) leaves
        an unlisted pool or tombstones, which the checker reports; DeleteIdentityPool again
        finishes it (answering that the pool is gone once its record is)."""
        self._run(
            scripts.UNINDEX_POOL, [keys.POOL_INDEX, keys.POOL_NAMES], [pool_id], confirm=always
        )
        deleted = bool(
            self._run(scripts.DELETE_POOL, keys.PoolKeys.of(pool_id).deletion(), confirm=_written)
        )
        self._finish_deletion(pool_id)
        return deleted

    def _finish_deletion(self, pool_id: str) -> None:
        """Clean up after DELETE_POOL; idempotent, and a few O(1) calls when nothing is left.

        The identity index entries are found by HSCAN of the identities tombstone, at most
        ``DELETION_BATCH`` per step, and removed with one HDEL per index bucket for every
        ``UNINDEX_BATCH`` gathered; the tombstones then go with UNLINK (freed off Redis's
        main thread)."""
        k = keys.PoolKeys.of(pool_id)
        logins, identities, order = k.tombstones
        cursor = 0
        gathered: list[str] = []
        while True:
            cursor, batch = self.redis.hscan(identities, cursor, count=DELETION_BATCH)
            gathered.extend(str(identity_id) for identity_id in batch)
            if gathered and (len(gathered) >= UNINDEX_BATCH or cursor == 0):
                self.unindex(gathered)
                gathered = []
            if cursor == 0:
                break
        self.redis.unlink(logins, identities, order)
        self._forget_token_cache(pool_id)

    def unindex(self, identity_ids: Sequence[str]) -> None:
        """Remove identity index entries (``RedisStore`` holds the identity index)."""
        raise NotImplementedError

    def _forget_token_cache(self, pool_id: str) -> None:
        """Remove the backend door's token cache of the pool (``broker.store.token_cache``):
        entries and locks named ``ib:{<pool>}:token-cache:*``, next to a counter of the
        tokens the door cached for the pool, written with every entry and kept a day after
        the last (longer than any entry lives). Without that counter the door holds nothing
        of the pool and nothing is scanned; with it, a SCAN matching only the cache's prefix
        finds the entries, ``DELETION_BATCH`` keys examined per call. The entries would
        expire on their own; they go now so that no key outlives the pool."""
        counter = signed_counter_key(pool_id)
        if not self.redis.exists(counter):
            return
        batch: list[str] = []
        for key in self.redis.scan_iter(match=entry_key(pool_id, "*"), count=DELETION_BATCH):
            batch.append(str(key))
            if len(batch) >= DELETION_BATCH:
                self.redis.unlink(*batch)
                batch = []
        self.redis.unlink(counter, *batch)

    def list_pools(self, after: int | None, limit: int) -> Page:
        """One page in creation order, read from the index and names in one script. A pool
        the names do not hold yet (being created, or in a store not yet migrated) is read
        from its record, and skipped when it has none."""
        answer = self._run(
            scripts.LIST_POOLS,
            [keys.POOL_INDEX, keys.POOL_NAMES],
            ["-inf" if after is None else after, limit],
        )
        more, rows = int(answer[0]), answer[1:]
        pools: list[PoolListing] = []
        last: int | None = None
        for i in range(0, len(rows), 3):
            pool_id, last, name = str(rows[i]), int(float(rows[i + 1])), rows[i + 2]
            if name is None:
                pool = self.get_pool(pool_id)
                if pool is None:
                    continue
                name = pool.config.name
            pools.append(PoolListing(id=pool_id, name=str(name)))
        return Page(items=pools, after=last if more else None)

    # --- pool settings -------------------------------------------------------------------
    def set_pool_roles(self, pool_id: str, roles: PoolRoles) -> bool:
        k = keys.PoolKeys.of(pool_id)
        value = _json({"roles": dict(roles.roles), "role_mappings": dict(roles.role_mappings)})
        return bool(self._run(scripts.SET_IF_POOL, [k.pool, k.roles], [value], confirm=_written))

    def get_pool_roles(self, pool_id: str) -> PoolRoles | None:
        raw = self.redis.get(keys.PoolKeys.of(pool_id).roles)
        if raw is None:
            return None
        r = json.loads(str(raw))
        return PoolRoles(roles=r["roles"], role_mappings=r["role_mappings"])

    def set_principal_tag_map(
        self, pool_id: str, provider: str, tag_map: PrincipalTagMap, check: PoolCheck
    ) -> bool:
        """Write the map if ``check`` accepts the pool, compare-and-set on the pool record:
        the write happens only while the record is the one checked, so an update removing
        the provider meanwhile makes the check run again on the new record."""
        k = keys.PoolKeys.of(pool_id)
        value = _json(
            {"use_defaults": tag_map.use_defaults, "principal_tags": dict(tag_map.principal_tags)}
        )
        for _ in range(POOL_CHANGE_ATTEMPTS):
            raw = self.redis.get(k.pool)
            if raw is None:
                return False
            check(decode_pool(pool_id, str(raw)))
            written = int(
                self._run(
                    scripts.HSET_IF_POOL_IS,
                    [k.pool, k.principal_tags],
                    [str(raw), provider, value],
                    confirm=_written,
                )
            )
            if written != 0:
                return written == 1
        raise ConcurrentModificationException(messages.POOL_KEPT_CHANGING.format(pool_id=pool_id))

    def get_principal_tag_map(
        self, pool_id: str, provider: str
    ) -> tuple[IdentityPool | None, PrincipalTagMap | None]:
        """The pool and the provider's map, read together (one script in the pool's slot),
        so the provider check and the map it guards come from one moment."""
        k = keys.PoolKeys.of(pool_id)
        raw_pool, raw_map = self._run(
            scripts.READ_POOL_AND_TAG_MAP, [k.pool, k.principal_tags], [provider]
        )
        pool = None if raw_pool is None else decode_pool(pool_id, str(raw_pool))
        if raw_map is None:
            return pool, None
        r = json.loads(str(raw_map))
        return pool, PrincipalTagMap(
            use_defaults=r["use_defaults"], principal_tags=r["principal_tags"]
        )


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def encode_pool(pool: IdentityPool) -> str:
    c = pool.config
    return _json(
        {
            "created": pool.created,
            "name": c.name,
            "allow_unauthenticated": c.allow_unauthenticated,
            "allow_classic_flow": c.allow_classic_flow,
            "supported_login_providers": dict(c.supported_login_providers),
            "developer_provider_name": c.developer_provider_name,
            "open_id_connect_provider_arns": list(c.open_id_connect_provider_arns),
            "cognito_identity_providers": [dict(p) for p in c.cognito_identity_providers],
            "saml_provider_arns": list(c.saml_provider_arns),
            "tags": dict(c.tags),
        }
    )


def decode_pool(pool_id: str, raw: str) -> IdentityPool:
    r = json.loads(raw)
    config = PoolConfig(
        name=r["name"],
        allow_unauthenticated=r["allow_unauthenticated"],
        allow_classic_flow=r["allow_classic_flow"],
        supported_login_providers=r["supported_login_providers"],
        developer_provider_name=r["developer_provider_name"],
        open_id_connect_provider_arns=tuple(r["open_id_connect_provider_arns"]),
        cognito_identity_providers=tuple(r["cognito_identity_providers"]),
        saml_provider_arns=tuple(r["saml_provider_arns"]),
        tags=r["tags"],
    )
    return IdentityPool(id=pool_id, config=config, created=float(r["created"]))
