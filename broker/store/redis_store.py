"""The identity store on Redis: implements ``broker.identity.ports.IdentityStore``.

Pools and their settings are in ``pool_store``; this module holds identities and logins.
Every change touching more than one key of a pool is one Lua script (``scripts.py``). The
identity index (identity id -> pool id, sharded: see ``keys``) is written right after a
script that creates identities and cleared right after one that deletes them.

With ``REDIS_WAIT_REPLICAS``, each change is confirmed by the replicas (WAIT on the
script's own connection) before it is acknowledged; a change found already made by an
earlier, unconfirmed try is written again by its script so that the WAIT covers it too
(contract section 11: a retry returns the same identity, confirmed).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, TypeVar

from broker.identity.models import Identity, Page
from broker.identity.ports import (
    LinkOutcome,
    LoginsRequest,
    LoginsResolved,
    MergeOutcome,
    UnlinkOutcome,
)
from broker.store import keys, scripts
from broker.store.connection import RedisConnector, always
from broker.store.faults import translates_faults
from broker.store.migration import LegacyIndex
from broker.store.pool_store import PoolStore

#: How many order entries one ListIdentities call may examine (HideDisabled skips some).
LIST_SCAN_BUDGET = 1000

#: Outcomes that wrote (or, found already made, wrote again) what WAIT must confirm.
_CHANGED = frozenset({"CREATED", "LINKED", "MERGED", "UNCHANGED", "UNLINKED"})


#: resolve_logins' successes: the survivor's record was written (again, when unchanged).
_LINKED = frozenset(
    {LinkOutcome.CREATED, LinkOutcome.EXISTING, LinkOutcome.LINKED, LinkOutcome.MERGED}
)


def _changed(answer: Any) -> bool:
    return bool(answer) and answer[0] in _CHANGED


def _resolved(answer: Any) -> bool:
    """RESOLVE_LOGIN created the identity, or found it still unconfirmed (and rewrote it)."""
    return answer[0] == "CREATED" or (answer[0] == "EXISTING" and _index_pending(answer[2]))


@translates_faults
class RedisStore(PoolStore):
    def __init__(self, connector: RedisConnector) -> None:
        super().__init__(connector)
        self._legacy = LegacyIndex(connector)

    # --- identities and logins -------------------------------------------------------------
    def resolve_login(
        self, pool_id: str, login: str, new_identity_id: str, now: float, peek: str | None = None
    ) -> tuple[LinkOutcome, Identity | None, str | None]:
        k = keys.PoolKeys.of(pool_id)
        pool_keys = [k.pool, k.logins, k.identities, k.order, k.sequence]
        script = scripts.RESOLVE_LOGIN
        if peek is not None:
            if not keys.same_pool(pool_id, peek):
                raise ValueError("the peeked key must be one of the pool's keys (same hash slot)")
            pool_keys.append(peek)
            script = scripts.RESOLVE_LOGIN_AND_PEEK
        answer = self._run(
            script, pool_keys, [login, new_identity_id, repr(now)], confirm=_resolved
        )
        outcome, identity = _outcome(LinkOutcome, pool_id, answer)
        if identity is not None and _index_pending(answer[2]):
            self._index_created(pool_id, identity.id)
        peeked = answer[3] if len(answer) > 3 else None
        return outcome, identity, None if peeked is None else str(peeked)

    def _index_created(self, pool_id: str, identity_id: str) -> None:
        """Write the identity index entry of an identity RESOLVE_LOGIN created (confirmed by
        the replicas when asked), and only once that succeeded clear the record's "index
        pending" mark. A process or Redis that fails before the end leaves the mark, and the
        next call resolving the login (the client's retry) finishes the job: the login's
        identity is always found through the index too (DescribeIdentity, GetOpenIdToken,
        DeleteIdentities)."""
        bucket = keys.identity_index(identity_id)
        self._call(bucket, "HSET", bucket, identity_id, pool_id, confirm=always)
        self._run(scripts.CONFIRM_INDEXED, [keys.PoolKeys.of(pool_id).identities], [identity_id])

    def link_login(
        self, pool_id: str, identity_id: str, login: str, now: float
    ) -> tuple[LinkOutcome, Identity | None]:
        k = keys.PoolKeys.of(pool_id)
        answer = self._run(
            scripts.LINK_LOGIN,
            [k.pool, k.logins, k.identities],
            [login, identity_id, repr(now)],
            confirm=lambda a: a[0] in ("LINKED", "EXISTING"),
        )
        return _outcome(LinkOutcome, pool_id, answer)

    def resolve_logins(self, pool_id: str, request: LoginsRequest) -> LoginsResolved:
        k = keys.PoolKeys.of(pool_id)
        answer = self._run(
            scripts.RESOLVE_LOGINS,
            [k.pool, k.logins, k.identities, k.order, k.sequence],
            [
                repr(request.now),
                request.new_identity_id,
                request.max_logins,
                request.named or "",
                request.developer or "",
                request.developer_prefix or "",
                *request.logins,
            ],
            confirm=lambda a: LinkOutcome(a[0]) in _LINKED,
        )
        outcome, identity = _outcome(LinkOutcome, pool_id, answer)
        if identity is not None and outcome in _LINKED and _index_pending(answer[2]):
            self._index_created(pool_id, identity.id)
        return LoginsResolved(outcome, identity, tuple(str(m) for m in answer[3:]))

    def create_unauthenticated(self, pool_id: str, identity_id: str, now: float) -> Identity | None:
        """The identity index entry is written first, then the identity. A crash between
        the two leaves an entry naming an identity that does not exist (every lookup
        answers "not found", as for any unknown id), never an identity that ListIdentities
        shows and DescribeIdentity cannot find. No retry can finish such a creation (the
        client never learnt the id), so there is nothing to repair later, unlike
        ``resolve_login``'s "index pending" mark."""
        k = keys.PoolKeys.of(pool_id)
        bucket = keys.identity_index(identity_id)
        self._call(bucket, "HSET", bucket, identity_id, pool_id, confirm=always)
        answer = self._run(
            scripts.CREATE_UNAUTHENTICATED,
            [k.pool, k.identities, k.order, k.sequence],
            [identity_id, repr(now)],
            confirm=_changed,
        )
        if answer[0] != "CREATED":  # the pool is gone: so is the entry just written
            self._call(bucket, "HDEL", bucket, identity_id)
            return None
        return decode_identity(pool_id, answer[1], answer[2])

    def pool_of(self, identity_id: str) -> str | None:
        """The pool the identity index names for ``identity_id`` (None: unknown)."""
        bucket = keys.identity_index(identity_id)
        pool_id = self.redis.hget(bucket, identity_id)
        if pool_id is None and self._legacy.present():
            pool_id = self.redis.hget(keys.LEGACY_IDENTITY_INDEX, identity_id)
            if pool_id is None:  # moved into the bucket meanwhile
                pool_id = self.redis.hget(bucket, identity_id)
        return None if pool_id is None else str(pool_id)

    def get_identity(self, identity_id: str) -> Identity | None:
        pool_id = self.pool_of(identity_id)
        return None if pool_id is None else self.find_identity(pool_id, identity_id)

    def find_identity(self, pool_id: str, identity_id: str) -> Identity | None:
        raw = self.redis.hget(keys.PoolKeys.of(pool_id).identities, identity_id)
        return None if raw is None else decode_identity(pool_id, identity_id, str(raw))

    def lookup_login(self, pool_id: str, login: str) -> Identity | None:
        k = keys.PoolKeys.of(pool_id)
        answer = self._run(scripts.LOOKUP_LOGIN, [k.logins, k.identities], [login])
        return decode_identity(pool_id, answer[0], answer[1]) if answer else None

    def list_identities(
        self, pool_id: str, after: int | None, limit: int, hide_disabled: bool
    ) -> Page | None:
        k = keys.PoolKeys.of(pool_id)
        answer = self._run(
            scripts.LIST_IDENTITIES,
            [k.pool, k.identities, k.order],
            [
                "-inf" if after is None else after,
                limit,
                int(hide_disabled),
                LIST_SCAN_BUDGET,
            ],
        )
        if answer[0] == "NO_POOL":
            return None
        rows = answer[2:]
        items = [decode_identity(pool_id, rows[i], rows[i + 1]) for i in range(0, len(rows), 2)]
        return Page(items=items, after=int(float(answer[0])) if int(answer[1]) else None)

    def merge_logins(
        self, pool_id: str, source: str, destination: str, max_logins: int, now: float
    ) -> tuple[MergeOutcome, Identity | None]:
        k = keys.PoolKeys.of(pool_id)
        # both are developer logins (MergeDeveloperIdentities): the source names the prefix
        answer = self._run(
            scripts.MERGE_LOGINS,
            [k.pool, k.logins, k.identities],
            [source, destination, repr(now), max_logins, source.partition(":")[0] + ":"],
            confirm=_changed,
        )
        return _outcome(MergeOutcome, pool_id, answer)

    def unlink_login(
        self, pool_id: str, identity_id: str, login: str, now: float
    ) -> tuple[UnlinkOutcome, Identity | None]:
        k = keys.PoolKeys.of(pool_id)
        answer = self._run(
            scripts.UNLINK_LOGIN,
            [k.pool, k.logins, k.identities],
            [identity_id, login, repr(now)],
            confirm=_changed,
        )
        return _outcome(UnlinkOutcome, pool_id, answer)

    def delete_identities(self, identity_ids: Sequence[str]) -> None:
        """Delete each identity found through the index, one script per pool; unknown ids
        are skipped."""
        wanted = list(dict.fromkeys(identity_ids))
        by_pool: dict[str, list[str]] = defaultdict(list)
        for identity_id in wanted:
            pool_id = self.pool_of(identity_id)
            if pool_id is not None:
                by_pool[pool_id].append(identity_id)
        for pool_id, ids in by_pool.items():
            k = keys.PoolKeys.of(pool_id)
            self._run(
                scripts.DELETE_IDENTITIES,
                [k.logins, k.identities, k.order, k.fence],
                ids,
                confirm=always,
            )
            self.unindex(ids)

    def unindex(self, identity_ids: Sequence[str]) -> None:
        """Remove identity index entries, one HDEL per bucket (each bucket its own slot),
        and from the pre-sharding index while it exists."""
        buckets: dict[str, list[str]] = defaultdict(list)
        for identity_id in identity_ids:
            buckets[keys.identity_index(identity_id)].append(identity_id)
        for bucket, ids in buckets.items():
            self._call(bucket, "HDEL", bucket, *ids)
        if identity_ids and self._legacy.present():
            self.redis.hdel(keys.LEGACY_IDENTITY_INDEX, *identity_ids)

    # --- health ----------------------------------------------------------------------------
    def ping(self) -> bool:
        return not self._connector.health()


Outcome = TypeVar("Outcome", LinkOutcome, MergeOutcome, UnlinkOutcome)


def _outcome(
    kind: type[Outcome], pool_id: str, answer: list[str]
) -> tuple[Outcome, Identity | None]:
    outcome = kind(answer[0])
    if len(answer) < 3:
        return outcome, None
    return outcome, decode_identity(pool_id, answer[1], answer[2])


def _index_pending(raw: str) -> bool:
    """The record carries RESOLVE_LOGIN's "index pending" mark (``"p": 1``)."""
    return '"p":' in raw and json.loads(raw).get("p") == 1


def decode_identity(pool_id: str, identity_id: str, raw: str) -> Identity:
    record = json.loads(raw)
    logins = record.get("l") or []  # Lua's cjson writes an empty list as {}
    return Identity(
        id=identity_id,
        pool_id=pool_id,
        created=float(record["c"]),
        modified=float(record["m"]),
        disabled=record.get("d") == 1,
        logins=tuple(logins),
    )
