"""DeleteIdentityPool on a big pool (contract section 4): it leaves no key of the pool and
no index entry naming it, and no single Redis call it makes grows with the pool's size, so
deleting a pool of any size never blocks Redis past the client's timeout.

The pool's identities are written straight into Redis with a pipeline, in the store's own
record format (``broker.store.scripts``), and the checker confirms the data is well formed
before the deletion. A redis-server of the test's own logs every command in its SLOWLOG
with the time Redis spent on it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from support.identities import DEVELOPER_PROVIDER, REGION, assert_consistent
from support.processes import REDIS_DEFAULT_CONFIG, RedisServer

from broker.identity.models import PoolConfig
from broker.identity.pools import create_pool
from broker.store import keys
from broker.store.connection import RedisConnector
from broker.store.redis_store import RedisStore
from broker.store.token_cache import CachedToken, RedisTokenCache, entry_key

#: Identities in the big pool: enough that any call touching them all stands out from the
#: scheduling noise of a busy 2-core machine.
BIG_POOL = 50_000
#: The longest any one Redis command of the deletion may take (microseconds). The former
#: DELETE_POOL script (HKEYS of every identity) took 40-50 ms for 30,000 identities here;
#: a call on DELETION_BATCH of them takes well under 1 ms, 11 ms at worst on a loaded host.
MAX_CALL_MICROS = 25_000


@pytest.fixture(scope="module")
def slowlog_redis() -> Iterator[RedisServer]:
    config = (
        *REDIS_DEFAULT_CONFIG,
        "--slowlog-log-slower-than",
        "0",
        "--slowlog-max-len",
        "100000",
    )
    with RedisServer(config) as server:
        yield server


@pytest.fixture
def store(slowlog_redis: RedisServer) -> RedisStore:
    return RedisStore(RedisConnector.from_url(slowlog_redis.url, 1.0))


def fill_pool(client: redis.Redis, pool_id: str, count: int) -> list[str]:
    """``count`` identities with one developer login each, as RESOLVE_LOGIN writes them."""
    k = keys.PoolKeys.of(pool_id)
    ids = [f"{REGION}:{uuid.uuid4()}" for _ in range(count)]
    now = time.time()
    pipe = client.pipeline(transaction=False)
    for seq, identity in enumerate(ids, start=1):
        login = f"{DEVELOPER_PROVIDER}:user-{seq}"
        record = {"c": now, "m": now, "d": 0, "l": [login], "s": seq}
        pipe.hset(k.identities, identity, json.dumps(record, separators=(",", ":")))
        pipe.hset(k.logins, login, identity)
        pipe.zadd(k.order, {identity: seq})
        pipe.hset(keys.identity_index(identity), identity, pool_id)
        if seq % 2000 == 0:
            pipe.execute()
    pipe.set(k.sequence, count)
    pipe.execute()
    return ids


def new_pool(store: RedisStore) -> str:
    config = PoolConfig(
        name="big", allow_unauthenticated=True, developer_provider_name=DEVELOPER_PROVIDER
    )
    return create_pool(store, config, region=REGION, max_pools=100, now=time.time()).id


def keys_of(client: redis.Redis, pool_id: str) -> list[str]:
    return [str(key) for key in client.scan_iter(match=f"*{pool_id}*", count=1000)]


@pytest.mark.slow
def test_deleting_a_big_pool_is_done_in_small_steps(
    store: RedisStore, slowlog_redis: RedisServer
) -> None:
    with slowlog_redis.client() as client:
        pool_id = new_pool(store)
        ids = fill_pool(client, pool_id, BIG_POOL)
        assert_consistent(client, pool_id)
        client.slowlog_reset()

        assert store.delete_pool(pool_id)

        logged = client.slowlog_get(100_000)
        assert len(logged) < 100_000  # the log held every call
        calls = [call for call in logged if not bytes(call["command"]).startswith(b"SLOWLOG")]
        assert any(bytes(call["command"]).startswith(b"EVALSHA") for call in calls)
        slowest = max(calls, key=lambda call: call["duration"])
        assert slowest["duration"] < MAX_CALL_MICROS, slowest
        assert keys_of(client, pool_id) == []
        assert client.zscore(keys.POOL_INDEX, pool_id) is None
        assert not any(client.hget(keys.identity_index(i), i) for i in ids)
        assert_consistent(client, pool_id)
    assert store.get_identity(ids[0]) is None
    assert not store.delete_pool(pool_id)


def test_an_interrupted_deletion_is_finished_by_the_next_one(
    store: RedisStore, slowlog_redis: RedisServer
) -> None:
    """A worker that dies after the pool's script leaves tombstones and index entries; the
    checker reports them and DeleteIdentityPool again (the client's retry) finishes the job,
    answering that the pool is gone."""
    from broker.store import checker, scripts

    with slowlog_redis.client() as client:
        pool_id = new_pool(store)
        ids = fill_pool(client, pool_id, 50)
        store._run(scripts.DELETE_POOL, keys.PoolKeys.of(pool_id).deletion())  # then "dies"
        problems = checker.check_store(client, [pool_id]).problems
        assert {p.kind for p in problems} == {
            checker.KEY_OF_DELETED_POOL,
            checker.INDEX_OF_DELETED_POOL,
        }
        assert any("deletion was interrupted" in p.detail for p in problems)
        assert store.get_pool(pool_id) is None

        assert not store.delete_pool(pool_id)

        assert keys_of(client, pool_id) == []
        assert not any(client.hget(keys.identity_index(i), i) for i in ids)
        assert client.zscore(keys.POOL_INDEX, pool_id) is None
        assert_consistent(client, pool_id)


def test_the_backend_door_token_cache_of_a_deleted_pool_goes_too(
    store: RedisStore, slowlog_redis: RedisServer
) -> None:
    """The backend door's cache entries carry the pool's hash tag and a counter of the
    tokens it signed. Deleting a pool the door served removes them (a SCAN matching only
    the cache's prefix, done only when that counter shows the door cached for the pool);
    deleting any other pool never scans the keyspace."""
    cache = RedisTokenCache(RedisConnector.from_url(slowlog_redis.url, 1.0))
    with slowlog_redis.client() as client:
        served, plain = new_pool(store), new_pool(store)
        for n in range(3):
            entry = entry_key(served, f"digest-{n}")
            cache.put(served, entry, CachedToken("t", 1, 2), 3600, None, f"{REGION}:one")
        client.set(entry_key(served, "digest-0") + ":lock", "holder", px=60_000)
        # the pool, three entries, a lock, a counter, the identity's variants
        assert len(keys_of(client, served)) == 7

        client.slowlog_reset()
        assert store.delete_pool(plain)
        commands = [bytes(call["command"]).split()[0] for call in client.slowlog_get(1000)]
        assert b"SCAN" not in commands

        assert store.delete_pool(served)
        assert keys_of(client, served) == []
        assert_consistent(client, served, plain)
