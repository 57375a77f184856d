"""Every key of every script, pipeline and multi-key command the store sends hashes to one
Redis Cluster slot, for any pool id (contract section 11: a cluster refuses anything else).

The store's classes run against a real redis-server through a connector that records what
each Redis call names together: a script's KEYS (and the connection's slot key), a
pipeline's keys, a multi-key command's keys. Hypothesis draws the pool ids (any region the
settings accept, any uuid). The slots are computed with redis-py's own ``key_slot``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.crc import key_slot
from support.logins import StandIn
from support.processes import RedisServer

from broker.identity import developer, lifecycle, lookup, pool_settings, pools, public
from broker.identity.models import PoolConfig, PoolRoles, PrincipalTagMap
from broker.ratelimit.limiter import RateLimiter
from broker.ratelimit.redis_counter import RedisRateCounter
from broker.store import keys
from broker.store.backend_pool import RedisPoolNames
from broker.store.connection import Confirm, RedisConnector, never
from broker.store.redis_store import RedisStore
from broker.store.signing_keys import RedisSigningKeys
from broker.store.token_cache import CachedToken, RedisTokenCache, entry_key
from broker.tokens.keys import RedisKeySource
from broker.upstream.guard_store import BreakerKeys, RedisBreakerState, RedisQuota
from broker.upstream.identity_store import Failure, RedisUpstreamIdentities, login_key
from config.limits import MAX_RATE, RateLimitSettings
from config.redis import RedisSettings

MULTI_KEY = {"delete", "unlink", "mget", "exists"}
PIPELINE_KEYED = {"get", "hgetall", "hget", "set", "incr", "expire", "hset", "zadd"}


class RecordingPipeline:
    def __init__(self, pipe: Any, groups: list[tuple[str, list[str]]]) -> None:
        self._pipe = pipe
        self._groups = groups
        self._keys: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._pipe, name)
        if name in PIPELINE_KEYED:

            def queued(key: str, *args: Any, **kwargs: Any) -> Any:
                self._keys.append(key)
                return method(key, *args, **kwargs)

            return queued
        if name == "execute":

            def execute(*args: Any, **kwargs: Any) -> Any:
                self._groups.append(("pipeline", list(self._keys)))
                return method(*args, **kwargs)

            return execute
        return method


class RecordingClient:
    def __init__(self, client: Any, groups: list[tuple[str, list[str]]]) -> None:
        self._client = client
        self._groups = groups

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name == "pipeline":
            return lambda *a, **k: RecordingPipeline(attribute(*a, **k), self._groups)
        if name in MULTI_KEY:

            def multi(*names: Any, **kwargs: Any) -> Any:
                flat = list(names[0]) if names and isinstance(names[0], list) else list(names)
                self._groups.append((name, [str(k) for k in flat]))
                return attribute(*names, **kwargs)

            return multi
        return attribute


class RecordingConnector(RedisConnector):
    def __init__(self, url: str) -> None:
        super().__init__(RedisSettings(url=url, timeout=2.0))
        self.groups: list[tuple[str, list[str]]] = []

    def client(self) -> Any:
        return RecordingClient(super().client(), self.groups)

    def script(
        self, source: str, keys: Sequence[str], args: Sequence[Any], confirm: Confirm = never
    ) -> Any:
        self.groups.append(("script", list(keys)))
        return super().script(source, keys, args, confirm)

    def call(self, slot_key: str, *command: Any, confirm: Confirm = never) -> Any:
        if command[0] not in ("EVALSHA", "SCRIPT"):
            self.groups.append((f"call {command[0]}", [slot_key, str(command[1])]))
        return super().call(slot_key, *command, confirm=confirm)


def exercise(connector: RecordingConnector, region: str) -> None:
    """Every store operation the broker has, once, on a new pool of ``region``."""
    store = RedisStore(connector)
    now = time.time()
    config = PoolConfig(
        name="slots", allow_unauthenticated=True, developer_provider_name="dev",
        supported_login_providers={"accounts.google.com": "1", "appleid.apple.com": "2"},
    )  # fmt: skip
    pool = pools.create_pool(store, config, region=region, max_pools=10**6, now=now)
    a = developer.resolve_developer_login(
        store, pool_id=pool.id, logins={"dev": "a"}, identity_id=None, region=region, now=now,
        peek=entry_key(pool.id, "peek"),
    )  # fmt: skip
    developer.resolve_developer_login(
        store, pool_id=pool.id, logins={"dev": "b"}, identity_id=None, region=region, now=now
    )
    limits = RateLimiter(  # every limit on, none reached: each check counts in Redis
        RateLimitSettings(per_access_key=MAX_RATE, per_identity=MAX_RATE),
        RedisRateCounter(connector),
        time.time,
    )
    limit_pool = limits.check_unsigned_pool  # as the unsigned operations' handlers pass it
    verifier = StandIn()  # accepts "ok:<sub>" as a token of the pool's providers
    unauth = public.get_id(
        store, pool_id=pool.id, account_id=None, logins={}, broker_account_id="000000000000",
        region=region, now=now, limit_pool=limit_pool, verifier=verifier,
    )  # fmt: skip
    public.authenticate(  # GetOpenIdToken's and UnlinkIdentity's check, pool limit included
        store, identity_id=unauth.id, logins={}, verify=lambda token: {}, limit_pool=limit_pool,
        verifier=verifier, region=region, now=now,
    )  # fmt: skip
    public.get_id(  # a public login: RESOLVE_LOGINS creates its identity
        store, pool_id=pool.id, account_id=None, logins={"accounts.google.com": "ok:g1"},
        broker_account_id="000000000000", region=region, now=now, limit_pool=limit_pool,
        verifier=verifier,
    )  # fmt: skip
    both = developer.resolve_developer_login(  # links an Apple login beside a developer one
        store, pool_id=pool.id, logins={"dev": "e", "appleid.apple.com": "ok:p1"},
        identity_id=None, region=region, now=now, verifier=verifier,
    )  # fmt: skip
    merged = developer.resolve_developer_login(  # d:e's identity and Google g1's: merged
        store, pool_id=pool.id, logins={"dev": "e", "accounts.google.com": "ok:g1"},
        identity_id=None, region=region, now=now, verifier=verifier,
    )  # fmt: skip
    assert merged.identity.id == both.identity.id  # the survivor holds the developer login
    public.unlink_identity(
        store, identity_id=both.identity.id, logins={"accounts.google.com": "ok:g1"},
        logins_to_remove=("appleid.apple.com",), verify=lambda token: {}, limit_pool=limit_pool,
        verifier=verifier, region=region, now=now,
    )  # fmt: skip
    developer.resolve_developer_login(
        store, pool_id=pool.id, logins={"dev": "c"}, identity_id=unauth.id, region=region,
        now=now,
    )  # fmt: skip
    lookup.find_developer_identity(store, pool_id=pool.id, identity_id=a.identity.id, user_id="a")
    lookup.describe_identity(store, a.identity.id)
    lookup.list_identities(store, pool.id, after=None, limit=60, hide_disabled=True)
    lifecycle.merge_developer_identities(
        store, pool_id=pool.id, provider="dev", source_user="b", destination_user="a", now=now
    )
    lifecycle.unlink_developer_identity(
        store, pool_id=pool.id, identity_id=unauth.id, provider="dev", user_id="c", now=now
    )
    renamed = PoolConfig(name="renamed", allow_unauthenticated=True, tags={"team": "x"})
    pools.update_pool(store, pool.id, renamed, replace_tags=True)
    pools.update_pool(store, pool.id, renamed, replace_tags=False)  # keeps the tags
    pools.list_pools(store, after=None, limit=60)
    store.set_pool_roles(pool.id, PoolRoles(roles={"authenticated": "arn:aws:iam::1:role/x"}))
    store.get_pool_roles(pool.id)
    pool_settings.set_principal_tag_map(
        store, pool_id=pool.id, provider="dev", tag_map=PrincipalTagMap(principal_tags={"a": "b"})
    )
    store.get_principal_tag_map(pool.id, "dev")
    cache = RedisTokenCache(connector)
    entry = entry_key(pool.id, uuid.uuid4().hex)
    holder = cache.try_lock(entry, 5000)
    for n in range(6):  # past the variants bound: some are evicted
        cached = CachedToken(f"t{n}", 1, 2, a.identity.id)
        cache.put(pool.id, entry_key(pool.id, f"v{n}"), cached, 60, holder, a.identity.id)
    cache.get(entry)
    cache.count_signature(pool.id)
    names = RedisPoolNames(connector)
    marker = names.claim(f"slots-{pool.id}", 5000)
    if marker is not None:
        names.publish(f"slots-{pool.id}", marker, pool.id)
    names.forget(f"slots-{pool.id}", pool.id)
    breaker = RedisBreakerState(connector)
    bkeys = BreakerKeys.of(pool.id)
    breaker.allow(bkeys, 3, 1000)
    breaker.failure(bkeys, 3, 1000, 1000)
    breaker.reset(bkeys)
    RedisQuota(connector).reserve(pool.id, 1000, 10_000)
    upstream = RedisUpstreamIdentities(connector)
    login = login_key(pool.id, "dev", "a")
    upstream.remember(login, a.identity.id, now)
    upstream.get(login)
    upstream.holder_and_failure(login)
    upstream.record_failure(login, Failure("h", "UpstreamUnavailable", "m"))
    upstream.forget(login, a.identity.id)
    limits.check_identity(a.identity.id)
    limits.check_access_key("AKIDSLOTS")
    for address in ("127.0.0.1", "::1", "2001:db8::1", ""):  # the AWS door's REMOTE_ADDR
        limits.check_unsigned_address(address)
    source = RedisKeySource(RedisSigningKeys(connector))
    source.load()
    source.rotate(activate_after=60)
    lifecycle.delete_identities(store, [a.identity.id, unauth.id])
    pools.delete_pool(store, pool.id)


REGIONS = st.from_regex(r"[a-z]{2}(-[a-z0-9]{1,12}){1,3}", fullmatch=True)


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(region=REGIONS)
def test_every_redis_call_names_keys_of_one_slot(redis_server: RedisServer, region: str) -> None:
    connector = RecordingConnector(redis_server.url)
    exercise(connector, region)
    kinds = {kind for kind, _ in connector.groups}
    assert {"script", "pipeline", "call HSET"} <= kinds  # the recording saw each shape
    scripted = [key for kind, group in connector.groups if kind == "script" for key in group]
    for scope in ("pool", "address", "identity", "key"):  # every rate limit's counter
        assert any(key.startswith(f"{keys.PREFIX}:rate:{scope}:") for key in scripted), scope
    for kind, group in connector.groups:
        slots = {key_slot(key.encode()) for key in group}
        assert len(slots) <= 1, f"{kind} spans slots {sorted(slots)}: {group}"


def test_the_identity_index_is_spread_over_many_slots() -> None:
    """No hot key for every pool: the index buckets hash to as many slots as there are."""
    slots = {key_slot(bucket.encode()) for bucket in keys.all_index_buckets()}
    assert len(slots) == keys.IDENTITY_INDEX_BUCKETS
    ids = [f"us-east-1:{uuid.uuid4()}" for _ in range(5000)]
    used = {keys.identity_index(identity_id) for identity_id in ids}
    assert len(used) == keys.IDENTITY_INDEX_BUCKETS  # 5,000 ids reach every bucket
