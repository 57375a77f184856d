"""Moving a store written by an earlier broker to today's key layout.

Before the identity index was sharded (``keys``), every identity of every pool was one
field of the hash ``LEGACY_IDENTITY_INDEX``: one hot slot and one huge key on a cluster.
:func:`migrate` moves its entries into the buckets in batches (HSCAN, never blocking Redis):
each batch is written to the buckets first and only then removed from the old hash, so a
reader that looks in both (``RedisStore.pool_of``: the bucket, then the old hash while it
exists, then the bucket again) always finds an entry. It also gives every pool of the pool
index its name in ``POOL_NAMES`` (what ListIdentityPools shows). It is idempotent and
resumable: a migration cut short is finished by the next one.

Every broker runs it at start (one process at a time: a short lock in Redis), so upgrading
needs nothing else; ``flask --app app broker migrate`` runs it by hand and reports what
it moved.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Final

from broker.store import keys
from broker.store.connection import RedisConnector, always

log = logging.getLogger("broker.store")

BATCH: Final = 1000
#: Entries gathered from the old index before they are written, one HSET per bucket.
GATHER: Final = 50_000
LOCK_KEY: Final = f"{keys.PREFIX}:{{identities}}:migration-lock"
LOCK_TTL_MS: Final = 60_000
#: How long a process trusts its last look at whether the old index still exists.
LEGACY_CHECK_SECONDS: Final = 30.0


@dataclass(frozen=True)
class MigrationReport:
    moved: int  # identity index entries moved into the buckets
    named: int  # pools given their listing name
    skipped: bool = False  # another process holds the migration lock

    def summary(self) -> str:
        if self.skipped:
            return "another broker process is migrating this store now; run again later"
        if not self.moved and not self.named:
            return "nothing to migrate: the store already has today's layout"
        return (
            f"migrated: {self.moved} identity index entries into "
            f"{keys.IDENTITY_INDEX_BUCKETS} buckets, {self.named} pool names"
        )


class LegacyIndex:
    """Whether the pre-sharding identity index may still exist, looked at again at most
    every ``LEGACY_CHECK_SECONDS`` (it only ever goes away)."""

    def __init__(self, connector: RedisConnector) -> None:
        self._connector = connector
        self._present = True
        self._checked_at = -LEGACY_CHECK_SECONDS

    def present(self) -> bool:
        if not self._present:
            return False
        now = time.monotonic()
        if now - self._checked_at >= LEGACY_CHECK_SECONDS:
            self._checked_at = now
            self._present = bool(self._connector.client().exists(keys.LEGACY_IDENTITY_INDEX))
        return self._present

    def gone(self) -> None:
        self._present = False


def needed(connector: RedisConnector) -> bool:
    """Whether the store holds anything in an earlier layout (two cheap reads)."""
    client = connector.client()
    if client.exists(keys.LEGACY_IDENTITY_INDEX):
        return True
    return int(client.zcard(keys.POOL_INDEX)) > int(client.hlen(keys.POOL_NAMES))


def migrate(connector: RedisConnector) -> MigrationReport:
    """Bring the store to today's layout; safe to run at any time, from any process."""
    client = connector.client()
    holder = secrets.token_hex(8)
    if not client.set(LOCK_KEY, holder, nx=True, px=LOCK_TTL_MS):
        return MigrationReport(moved=0, named=0, skipped=True)
    try:
        moved = _move_identity_index(connector)
        named = _name_pools(connector)
    finally:
        if client.get(LOCK_KEY) == holder:
            client.delete(LOCK_KEY)
    if moved or named:
        log.info(
            "store migrated to the sharded identity index: %d entries moved, %d pools named",
            moved,
            named,
        )
    return MigrationReport(moved=moved, named=named)


def _move_identity_index(connector: RedisConnector) -> int:
    """HSCAN the old index, gathering up to ``GATHER`` entries; write them to their buckets
    (one HSET per bucket, confirmed), then remove them from the old hash; until it is empty
    (an identity's pool never changes, so writing an entry twice is harmless)."""
    client = connector.client()
    moved = 0
    cursor = 0
    while True:
        gathered: dict[str, str] = {}
        while len(gathered) < GATHER:
            cursor, batch = client.hscan(keys.LEGACY_IDENTITY_INDEX, cursor, count=BATCH)
            gathered.update({str(a): str(b) for a, b in batch.items()})
            if cursor == 0:
                break
        if gathered:
            _write_to_buckets(connector, gathered)
            ids = list(gathered)
            for start in range(0, len(ids), BATCH):
                client.hdel(keys.LEGACY_IDENTITY_INDEX, *ids[start : start + BATCH])
            moved += len(ids)
            client.pexpire(LOCK_KEY, LOCK_TTL_MS)  # a long migration keeps its lock
        if cursor == 0 and not client.exists(keys.LEGACY_IDENTITY_INDEX):
            return moved
        if cursor == 0 and not gathered:
            return moved  # entries written while we walked: the next migration takes them


def _write_to_buckets(connector: RedisConnector, entries: dict[str, str]) -> None:
    buckets: dict[str, list[str]] = defaultdict(list)
    for identity_id, pool_id in entries.items():
        buckets[keys.identity_index(identity_id)].extend((identity_id, pool_id))
    for bucket, pairs in buckets.items():
        connector.call(bucket, "HSET", bucket, *pairs, confirm=always)


def _name_pools(connector: RedisConnector) -> int:
    """Give each listed pool without a name the one its record holds."""
    client = connector.client()
    named = 0
    known = set(client.hkeys(keys.POOL_NAMES))
    for pool_id, _ in client.zscan_iter(keys.POOL_INDEX, count=BATCH):
        if pool_id in known:
            continue
        raw = client.get(keys.PoolKeys.of(str(pool_id)).pool)
        if raw is None:
            continue  # being created (its creator names it) or an index entry left behind
        name = json.loads(str(raw))["name"]
        connector.call(
            keys.POOL_NAMES, "HSETNX", keys.POOL_NAMES, str(pool_id), name, confirm=always
        )
        named += 1
    return named
