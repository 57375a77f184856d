"""The consistency checker: walks the Redis data and reports every disagreement.

What the store promises (``keys``, ``scripts``): a login names an identity that exists and
lists it; an identity lists only logins that name it; a disabled identity holds no logins;
every identity has an order entry and an identity index entry and nothing else does; every
pool is in the pool index, with its name; no index entry and no key outlives its pool (a
deleted pool's tombstones, left by an interrupted DeleteIdentityPool, included). Lua
scripts keep the keys of one pool agreeing; the indexes live in other hash slots and are
written just before or after, so a crash between the steps shows up here.

The walk uses SCAN, HSCAN and ZSCAN only (never KEYS), so it never blocks Redis; on a
cluster it scans every primary. It is not one atomic read: on a busy store a change racing
the walk can look like a problem for a moment. Run it again to confirm a finding before
repairing anything.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import redis
from redis.cluster import RedisCluster
from redis.sentinel import SentinelConnectionPool

from broker.identity.models import split_login_key
from broker.store import keys
from broker.store.connection import RedisConnector
from config.redis import RedisSettings

# --- what can be wrong -------------------------------------------------------------------
LOGIN_TO_MISSING_IDENTITY = "login points at a missing identity"
LOGIN_NOT_LISTED = "login points at an identity that does not list it"
LOGIN_ELSEWHERE = "identity lists a login that points elsewhere"
DISABLED_WITH_LOGINS = "disabled identity still holds logins"
PUBLIC_PROVIDER_TWICE = "identity holds two users of one public provider"
UNREADABLE_IDENTITY = "identity record is not readable"
ORDER_WITHOUT_IDENTITY = "order entry without an identity"
IDENTITY_WITHOUT_ORDER = "identity without an order entry"
IDENTITY_NOT_INDEXED = "identity missing from the identity index"
INDEX_WITHOUT_IDENTITY = "identity index entry without its identity"
INDEX_OF_DELETED_POOL = "index entry of a deleted pool"
POOL_NOT_INDEXED = "pool missing from the pool index"
POOL_NAME_STALE = "pool index names the pool differently from its record"
KEY_OF_DELETED_POOL = "key of a deleted pool"
LEGACY_INDEX = (
    "identity index in the layout before sharding (a broker start, or "
    "`flask --app app broker migrate`, moves it)"
)

#: ``ib:{<tag>}:<name>``; a tag shaped like a pool id belongs to that pool.
_KEY = re.compile(r"ib:\{(?P<tag>[^}]*)\}:.*", re.DOTALL)
_POOL_ID = re.compile(r"[\w-]+:[0-9a-f-]+", re.ASCII)
SCAN_COUNT = 500


@dataclass(frozen=True, order=True)
class Problem:
    pool_id: str
    kind: str
    key: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.key}: {self.detail}"


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    pools: int = 0
    identities: int = 0
    logins: int = 0

    @property
    def clean(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One line: ``clean: checked 2 pools, 6 identities, 4 logins`` or
        ``3 problems: checked ...``."""
        checked = ", ".join(
            [
                _count(self.pools, "pool", "pools"),
                _count(self.identities, "identity", "identities"),
                _count(self.logins, "login", "logins"),
            ]
        )
        head = "clean" if self.clean else _count(len(self.problems), "problem", "problems")
        return f"{head}: checked {checked}"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def check_store(
    source: RedisConnector | redis.Redis | RedisCluster, pool_ids: Iterable[str] | None = None
) -> Report:
    """Check every pool found in Redis, or only ``pool_ids`` together with the index
    entries that name them. ``source``: the broker's connector (any topology), or a redis-py
    client decoding responses to str: of one server, of a Sentinel master, or a cluster."""
    connector = source if isinstance(source, RedisConnector) else connector_of(source)
    client = connector.client()
    wanted = None if pool_ids is None else set(pool_ids)
    indexed_pools = {str(m) for m, _ in client.zscan_iter(keys.POOL_INDEX, count=SCAN_COUNT)}
    names = {str(a): str(b) for a, b in client.hscan_iter(keys.POOL_NAMES, count=SCAN_COUNT)}
    named: dict[str, set[str]] = defaultdict(set)  # pool id -> identities the index names
    report = Report()
    _read_index_buckets(connector, wanted, named)
    if client.exists(keys.LEGACY_IDENTITY_INDEX):
        legacy = _read_index(client, keys.LEGACY_IDENTITY_INDEX, wanted, named)
        if legacy:
            report.problems.append(
                Problem("", LEGACY_INDEX, keys.LEGACY_IDENTITY_INDEX, f"{legacy} entries")
            )
    present = _keys_by_pool(connector, wanted)
    pools = wanted if wanted is not None else set(present) | indexed_pools | set(named)
    for pool_id in sorted(pools):
        walk = _PoolWalk(client, pool_id, report, named.get(pool_id, set()))
        if keys.PoolKeys.of(pool_id).pool in present.get(pool_id, set()):
            walk.live(pool_id in indexed_pools, names.get(pool_id))
        else:
            walk.deleted(present.get(pool_id, set()), pool_id in indexed_pools, pool_id in names)
    report.problems.sort()
    return report


def connector_of(client: redis.Redis | RedisCluster) -> RedisConnector:
    """A connector reading what ``client`` reads (for tools holding a plain client)."""
    if isinstance(client, RedisCluster):
        primaries: Any = client.get_primaries  # redis-py leaves it untyped
        nodes = tuple((str(n.host), int(n.port)) for n in primaries())
        return RedisConnector(RedisSettings(mode="cluster", nodes=nodes, timeout=5.0))
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        host, port = pool.get_master_address()  # type: ignore[no-untyped-call]
        return RedisConnector.from_url(f"redis://{host}:{port}/0", _timeout_of(client))
    return RedisConnector.from_url(_url_of(client), _timeout_of(client))


def _url_of(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    host, port, db = kwargs.get("host", "localhost"), kwargs.get("port", 6379), kwargs.get("db", 0)
    return f"redis://{host}:{port}/{db}"


def _timeout_of(client: redis.Redis) -> float:
    return float(client.connection_pool.connection_kwargs.get("socket_timeout") or 5.0)


def _read_index_buckets(
    connector: RedisConnector, wanted: set[str] | None, named: dict[str, set[str]]
) -> None:
    """Every identity index bucket, read with one pipeline of HSCANs per node (a bucket is
    small: most answer whole at once), the rest of a large bucket then walked on its own."""
    for node, buckets in connector.by_node(keys.all_index_buckets()):
        pipe = node.pipeline(transaction=False)
        for bucket in buckets:
            pipe.hscan(bucket, 0, count=SCAN_COUNT)
        for bucket, (cursor, entries) in zip(buckets, pipe.execute(), strict=True):
            for identity_id, pool_id in entries.items():
                if wanted is None or pool_id in wanted:
                    named[str(pool_id)].add(str(identity_id))
            while int(cursor) != 0:
                cursor, more = node.hscan(bucket, cursor, count=SCAN_COUNT)
                for identity_id, pool_id in cast(dict[str, str], more).items():
                    if wanted is None or pool_id in wanted:
                        named[str(pool_id)].add(str(identity_id))


def _read_index(client: Any, key: str, wanted: set[str] | None, named: dict[str, set[str]]) -> int:
    count = 0
    for identity_id, pool_id in client.hscan_iter(key, count=SCAN_COUNT):
        count += 1
        if wanted is None or pool_id in wanted:
            named[str(pool_id)].add(str(identity_id))
    return count


def _keys_by_pool(connector: RedisConnector, wanted: set[str] | None) -> dict[str, set[str]]:
    """The keys of each pool that exist, found by SCAN of every primary."""
    patterns = ["ib:{*"] if wanted is None else [f"ib:{{{_glob(p)}}}:*" for p in sorted(wanted)]
    found: dict[str, set[str]] = defaultdict(set)
    for node in connector.primaries():
        for pattern in patterns:
            for key in node.scan_iter(match=pattern, count=SCAN_COUNT):
                match = _KEY.fullmatch(str(key))
                if match is not None and _POOL_ID.fullmatch(match["tag"]):
                    found[match["tag"]].add(str(key))
    return found


def _glob(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _pool_name(raw: object) -> str | None:
    try:
        name = json.loads(str(raw))["name"] if raw is not None else None
    except (ValueError, KeyError, TypeError):
        return None
    return str(name) if name is not None else None


def _login_label(login: str) -> str:
    """A login as reports show it: the provider, and a digest instead of the user id (user
    ids are Logins values, which never appear in output)."""
    provider, user_id = split_login_key(login)
    return f"{provider}:#{hashlib.sha256(user_id.encode()).hexdigest()[:12]}"


def _developer_of(raw: object) -> str | None:
    """The DeveloperProviderName in a pool record, if it can be read."""
    try:
        name = json.loads(str(raw)).get("developer_provider_name") if raw is not None else None
    except (ValueError, AttributeError):
        return None
    return str(name) if name else None


def _public_providers_twice(held: list[str], developer: str | None) -> list[str]:
    """The public providers (any but the developer provider) of which ``held`` holds more
    than one user: each public provider links one user per identity (contract section 9)."""
    seen: set[str] = set()
    twice: set[str] = set()
    for login in held:
        provider = split_login_key(login)[0]
        if provider == developer:
            continue
        (twice if provider in seen else seen).add(provider)
    return sorted(twice)


class _PoolWalk:
    def __init__(self, client: Any, pool_id: str, report: Report, named: set[str]):
        self.client = client
        self.pool_id = pool_id
        self.keys = keys.PoolKeys.of(pool_id)
        self.report = report
        self.named = named

    def problem(self, kind: str, key: str, detail: str) -> None:
        self.report.problems.append(Problem(self.pool_id, kind, key, detail))

    def deleted(self, present: set[str], indexed: bool, has_name: bool) -> None:
        tombstones = set(self.keys.tombstones)
        for key in sorted(present):
            detail = f"pool {self.pool_id} does not exist"
            if key in tombstones:
                detail += "; its deletion was interrupted (DeleteIdentityPool again finishes it)"
            self.problem(KEY_OF_DELETED_POOL, key, detail)
        if indexed:
            self.problem(INDEX_OF_DELETED_POOL, keys.POOL_INDEX, self.pool_id)
        if has_name:
            self.problem(INDEX_OF_DELETED_POOL, keys.POOL_NAMES, self.pool_id)
        for identity_id in sorted(self.named):
            self.problem(
                INDEX_OF_DELETED_POOL,
                keys.identity_index(identity_id),
                f"{identity_id} -> {self.pool_id}",
            )

    def live(self, indexed: bool, listed_name: str | None) -> None:
        k = self.keys
        self.report.pools += 1
        if not indexed:
            self.problem(POOL_NOT_INDEXED, keys.POOL_INDEX, self.pool_id)
        raw_pool = self.client.get(k.pool)
        name = _pool_name(raw_pool)
        if listed_name is None:
            self.problem(POOL_NOT_INDEXED, keys.POOL_NAMES, self.pool_id)
        elif name is not None and listed_name != name:
            self.problem(POOL_NAME_STALE, keys.POOL_NAMES, self.pool_id)
        logins = {str(a): str(b) for a, b in self.client.hscan_iter(k.logins, count=SCAN_COUNT)}
        raw = {str(a): str(b) for a, b in self.client.hscan_iter(k.identities, count=SCAN_COUNT)}
        order = {str(m) for m, _ in self.client.zscan_iter(k.order, count=SCAN_COUNT)}
        self.report.identities += len(raw)
        self.report.logins += len(logins)
        listed = {identity_id: self._record(identity_id, rec) for identity_id, rec in raw.items()}
        for login, owner in sorted(logins.items()):
            if owner not in listed:
                self.problem(
                    LOGIN_TO_MISSING_IDENTITY, k.logins, f"{_login_label(login)} -> {owner}"
                )
            elif login not in listed[owner][1]:
                self.problem(LOGIN_NOT_LISTED, k.logins, f"{_login_label(login)} -> {owner}")
        developer = _developer_of(raw_pool)
        for identity_id, (disabled, held) in sorted(listed.items()):
            if disabled and held:
                self.problem(DISABLED_WITH_LOGINS, k.identities, f"{identity_id} holds {len(held)}")
            for provider in _public_providers_twice(held, developer):
                self.problem(PUBLIC_PROVIDER_TWICE, k.identities, f"{identity_id}: {provider}")
            for login in held:
                points_at = logins.get(login)
                if points_at != identity_id:
                    where = f"points at {points_at}" if points_at else "is not in the logins hash"
                    self.problem(
                        LOGIN_ELSEWHERE,
                        k.identities,
                        f"{identity_id}: {_login_label(login)} {where}",
                    )
            if identity_id not in order:
                self.problem(IDENTITY_WITHOUT_ORDER, k.order, identity_id)
            if identity_id not in self.named:
                self.problem(IDENTITY_NOT_INDEXED, keys.identity_index(identity_id), identity_id)
        for identity_id in sorted(order - set(listed)):
            self.problem(ORDER_WITHOUT_IDENTITY, k.order, identity_id)
        for identity_id in sorted(self.named - set(listed)):
            self.problem(
                INDEX_WITHOUT_IDENTITY,
                keys.identity_index(identity_id),
                f"{identity_id} -> {self.pool_id}",
            )

    def _record(self, identity_id: str, raw: str) -> tuple[bool, list[str]]:
        try:
            record = json.loads(raw)
            held = record.get("l") or []  # Lua's cjson writes an empty list as {}
            if not isinstance(held, list) or not all(isinstance(x, str) for x in held):
                raise ValueError("l is not a list of logins")
            return record.get("d") == 1, held
        except (ValueError, AttributeError) as exc:
            self.problem(UNREADABLE_IDENTITY, self.keys.identities, f"{identity_id}: {exc}")
            return False, []
