"""Identity pools on Redis: the pool records, their index and the pool-scoped settings.

Creating and deleting a pool also touch the broker-wide pool index (and, for a deletion,
the identity index), which live in other hash slots; those steps are ordered so that a crash
between them leaves only index entries without a pool, which listings and lookups skip and
the consistency checker (``broker.store.checker``) reports.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

from broker.errors import ConcurrentModificationException
from broker.identity import messages
from broker.identity.models import IdentityPool, Page, PoolConfig, PoolRoles, PrincipalTagMap
from broker.identity.ports import ConfigChange, TagChange
from broker.store import keys, scripts
from broker.store.script_runner import ScriptRunner

#: How many identity index entries one HDEL removes when a pool is deleted.
INDEX_DELETE_BATCH = 1000
#: Keys examined per SCAN call (and unlinked per call) when sweeping a deleted pool.
SWEEP_SCAN_COUNT = 1000
#: How often a pool change (an update, a tag change) retries when the record changed under it.
POOL_CHANGE_ATTEMPTS = 20


class PoolStore(ScriptRunner):
    # --- pools ---------------------------------------------------------------------------
    def reserve_pool_slot(self, pool_id: str, max_pools: int) -> bool:
        seq = self._run(
            scripts.RESERVE_POOL, [keys.POOL_INDEX, keys.POOL_SEQUENCE], [pool_id, max_pools]
        )
        return int(seq) > 0

    def put_new_pool(self, pool: IdentityPool) -> None:
        self.redis.set(keys.PoolKeys.of(pool.id).pool, encode_pool(pool), nx=True)

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
        None when the pool does not exist (or was deleted meanwhile)."""
        key = keys.PoolKeys.of(pool_id).pool
        for _ in range(POOL_CHANGE_ATTEMPTS):
            raw = self.redis.get(key)
            if raw is None:
                return None
            updated = change(decode_pool(pool_id, str(raw)))
            swapped = int(self._run(scripts.SWAP_POOL, [key], [str(raw), encode_pool(updated)]))
            if swapped == 1:
                return updated
            if swapped < 0:
                return None
        raise ConcurrentModificationException(messages.POOL_KEPT_CHANGING.format(pool_id=pool_id))

    def delete_pool(self, pool_id: str) -> bool:
        """Delete the pool's keys in one script, then the index entries naming it, then any
        other key carrying its hash tag (a front door's cache, say): DeleteIdentityPool
        leaves nothing of the pool behind (contract section 4)."""
        identity_ids = self._run(scripts.DELETE_POOL, keys.PoolKeys.of(pool_id).all())
        if identity_ids is None:
            return False
        ids = cast(list[str], identity_ids)
        for start in range(0, len(ids), INDEX_DELETE_BATCH):
            self.redis.hdel(keys.IDENTITY_INDEX, *ids[start : start + INDEX_DELETE_BATCH])
        self.redis.zrem(keys.POOL_INDEX, pool_id)
        self._sweep(keys.PoolKeys.of(pool_id).pattern())
        return True

    def _sweep(self, pattern: str) -> None:
        batch: list[str] = []
        for key in self.redis.scan_iter(match=pattern, count=SWEEP_SCAN_COUNT):
            batch.append(str(key))
            if len(batch) >= SWEEP_SCAN_COUNT:
                self.redis.unlink(*batch)
                batch = []
        if batch:
            self.redis.unlink(*batch)

    def list_pools(self, after: int | None, limit: int) -> Page:
        low = f"({after}" if after is not None else "-inf"
        rows = cast(
            list[tuple[str, float]],
            self.redis.zrangebyscore(
                keys.POOL_INDEX, low, "+inf", start=0, num=limit, withscores=True
            ),
        )
        pipe = self.redis.pipeline(transaction=False)
        for pool_id, _ in rows:
            pipe.get(keys.PoolKeys.of(pool_id).pool)
        records = pipe.execute() if rows else []
        pools = [
            decode_pool(pool_id, raw)
            for (pool_id, _), raw in zip(rows, records, strict=True)
            if raw is not None
        ]
        more = len(rows) == limit and self.redis.zcount(
            keys.POOL_INDEX, f"({int(rows[-1][1])}", "+inf"
        )
        return Page(items=pools, after=int(rows[-1][1]) if more else None)

    # --- pool settings -------------------------------------------------------------------
    def set_pool_roles(self, pool_id: str, roles: PoolRoles) -> bool:
        k = keys.PoolKeys.of(pool_id)
        value = _json({"roles": dict(roles.roles), "role_mappings": dict(roles.role_mappings)})
        return bool(self._run(scripts.SET_IF_POOL, [k.pool, k.roles], [value]))

    def get_pool_roles(self, pool_id: str) -> PoolRoles | None:
        raw = self.redis.get(keys.PoolKeys.of(pool_id).roles)
        if raw is None:
            return None
        r = json.loads(str(raw))
        return PoolRoles(roles=r["roles"], role_mappings=r["role_mappings"])

    def set_principal_tag_map(self, pool_id: str, provider: str, tag_map: PrincipalTagMap) -> bool:
        k = keys.PoolKeys.of(pool_id)
        value = _json(
            {"use_defaults": tag_map.use_defaults, "principal_tags": dict(tag_map.principal_tags)}
        )
        return bool(self._run(scripts.HSET_IF_POOL, [k.pool, k.principal_tags], [provider, value]))

    def get_principal_tag_map(self, pool_id: str, provider: str) -> PrincipalTagMap | None:
        raw = self.redis.hget(keys.PoolKeys.of(pool_id).principal_tags, provider)
        if raw is None:
            return None
        r = json.loads(str(raw))
        return PrincipalTagMap(use_defaults=r["use_defaults"], principal_tags=r["principal_tags"])


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
