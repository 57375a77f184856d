"""Crash durability (docs/reliability.md): ``kill -9`` of Redis (appendonly yes, appendfsync
always) under a load of new-identity requests, restart on the same data directory, and
every identity a client was told about is still there and maps back from its login.

Also the repair that makes this hold when the crash falls between the two writes of a
creation: the identity (one Lua script in the pool's hash slot) and its identity index
entry (another slot, written just after); and GetId, which writes the index entry first.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support import layout
from support.cli import broker_cli
from support.faults import NewIdentityLoad, create_pool, record_figures, verify_identities
from support.logins import StandIn
from support.processes import REDIS_DURABLE_CONFIG, RedisServer, broker_on_own_redis

from broker.errors import StoreUnavailable
from broker.identity.developer import resolve_developer_login
from broker.identity.models import Identity, PoolConfig
from broker.identity.pools import create_pool as create_pool_in
from broker.identity.public import get_id
from broker.store.checker import IDENTITY_NOT_INDEXED, INDEX_WITHOUT_IDENTITY, check_store
from broker.store.connection import RedisConnector
from broker.store.redis_store import RedisStore

pytestmark = pytest.mark.slow  # servers or subprocesses of its own: not the fast lane

PROVIDER = "login.durable"
ACCOUNT_ID = "000000000000"
REGION = "us-east-1"
SOAK = os.environ.get("BROKER_SOAK") == "1"
#: Redis crashes per run, and identities acknowledged before each crash and after the last.
KILLS = 12 if SOAK else 2
ACKS_PER_PHASE = 400 if SOAK else 150
THREADS = 4
OUTAGE_SECONDS = 0.5  # Redis stays dead this long: requests meanwhile must fail fast


def run_checker_cli(redis_url: str) -> subprocess.CompletedProcess[str]:
    return broker_cli({"REDIS_URL": redis_url}, "check")


def test_acknowledged_identities_survive_kill_9_of_redis(
    broker_credentials: dict[str, str], tmp_path: Path
) -> None:
    started = time.monotonic()
    with broker_on_own_redis(
        redis_config=REDIS_DURABLE_CONFIG,
        redis_dir=tmp_path / "redis",
        credentials=broker_credentials,
        workers=3,
    ) as (server, redis_server):
        pool_id = create_pool(server, PROVIDER)
        with NewIdentityLoad(server, pool_id, PROVIDER, threads=THREADS) as load:
            for kill in range(1, KILLS + 1):
                load.wait_for(ACKS_PER_PHASE * kill, timeout=60)
                redis_server.kill()  # SIGKILL: no shutdown, no final fsync
                time.sleep(OUTAGE_SECONDS)
                redis_server.restart()  # same port, same directory: the AOF is all it has
            load.wait_for(ACKS_PER_PHASE * (KILLS + 1), timeout=60)
        outcomes = load.outcomes()
        with redis_server.client() as client:
            result = verify_identities(server, client, pool_id, PROVIDER, load.attempts)
        cli = run_checker_cli(redis_server.url)

    record_figures(
        "durability: kill -9 of Redis",
        {
            "faults_injected": KILLS,
            **result.figures(),
            "outcomes": dict(outcomes),
            "seconds": round(time.monotonic() - started, 1),
        },
    )
    assert result.lost == []
    assert result.problems == []
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert cli.stdout.startswith("clean: ")
    # while Redis was down the broker answered InternalErrorException, nothing else
    assert set(outcomes) <= {"200", "500 InternalErrorException"}, outcomes
    assert outcomes["500 InternalErrorException"] > 0, "no request saw the crash"


# --- a creation cut short between its two writes ---------------------------------------
@contextmanager
def redis_with_restricted_user(user: str, writable: str) -> Iterator[tuple[RedisServer, str]]:
    """A fresh Redis, and the URL of an ACL user ``user`` that may read every key but write
    only the keys matching the pattern ``writable``."""
    with RedisServer() as server:
        with server.client() as admin:
            admin.execute_command(
                "ACL", "SETUSER", user, "on", f">{user}-pw", "%R~*", f"~{writable}", "+@all"
            )
        yield server, f"redis://{user}:{user}-pw@127.0.0.1:{server.port}/0"


@pytest.fixture
def halfway_redis() -> Iterator[tuple[RedisServer, str]]:
    """A Redis with an ACL user that may write a pool's keys but not the identity index:
    through it a creation does its Lua script and then fails, exactly as if the process
    had died between the two writes."""
    with redis_with_restricted_user("halfway", f"ib:{{{REGION}:*") as redis:  # pools' keys
        yield redis


def test_a_creation_cut_short_before_its_index_entry_is_finished_by_the_retry(
    halfway_redis: tuple[RedisServer, str],
) -> None:
    server, halfway_url = halfway_redis
    store = RedisStore(RedisConnector.from_url(server.url, 2.0))
    halfway = RedisStore(RedisConnector.from_url(halfway_url, 2.0))
    pool = create_pool_in(
        store,
        PoolConfig(name="halfway", allow_unauthenticated=False, developer_provider_name="dev"),
        region=REGION,
        max_pools=10**6,  # the session Redis holds other tests' pools
        now=1.0,
    )

    def token_call(via: RedisStore) -> str:
        resolved = resolve_developer_login(
            via, pool_id=pool.id, logins={"dev": "u"}, identity_id=None, region=REGION, now=2.0
        )
        return resolved.identity.id

    with pytest.raises(StoreUnavailable) as refused:  # the client got no answer
        token_call(halfway)
    assert "no permissions" in str(refused.value.__cause__)
    with server.client() as client:
        report = check_store(client, [pool.id])
        assert [p.kind for p in report.problems] == [IDENTITY_NOT_INDEXED]

        identity_id = token_call(store)  # the client asks again, as every SDK does

        assert store.get_identity(identity_id) is not None  # DescribeIdentity finds it
        assert layout.indexed_pool(client, identity_id) == pool.id
        assert check_store(client, [pool.id]).clean
        assert token_call(store) == identity_id


# --- GetId cut short: the index entry is written first -------------------------------------
def _get_id(via: RedisStore, pool_id: str, now: float) -> Identity:
    return get_id(
        via,
        pool_id=pool_id,
        account_id=None,
        logins={},
        broker_account_id=ACCOUNT_ID,
        region=REGION,
        now=now,
        limit_pool=lambda pool_id: None,
        verifier=StandIn(),
    )


def _unauthenticated_pool(store: RedisStore) -> str:
    config = PoolConfig(name="getid", allow_unauthenticated=True, developer_provider_name="dev")
    return create_pool_in(store, config, region=REGION, max_pools=10**6, now=1.0).id


def _get_id_refused_to(restricted: tuple[RedisServer, str]) -> tuple[RedisStore, str]:
    """A GetId in a new unauthenticated pool through the restricted user, which Redis
    refuses partway ("no permissions"): the unrestricted store and the pool's id."""
    server, restricted_url = restricted
    store = RedisStore(RedisConnector.from_url(server.url, 2.0))
    pool_id = _unauthenticated_pool(store)
    with pytest.raises(StoreUnavailable) as refused:
        _get_id(RedisStore(RedisConnector.from_url(restricted_url, 2.0)), pool_id, 2.0)
    assert "no permissions" in str(refused.value.__cause__)
    return store, pool_id


def test_a_getid_that_cannot_write_the_index_creates_nothing(
    halfway_redis: tuple[RedisServer, str],
) -> None:
    server, _ = halfway_redis
    store, pool_id = _get_id_refused_to(halfway_redis)
    with server.client() as client:
        assert check_store(client, [pool_id]).clean  # no identity, no entry: nothing half-made
    page = store.list_identities(pool_id, None, 60, False)
    assert page is not None and list(page.items) == []


@pytest.fixture
def index_only_redis() -> Iterator[tuple[RedisServer, str]]:
    """An ACL user that may write the identity index but no pool key: a GetId through it
    writes the index entry and then fails, as if the process had died between the two."""
    with redis_with_restricted_user("indexonly", layout.INDEX_PATTERN) as redis:
        yield redis


def test_a_getid_cut_short_after_the_index_leaves_only_an_entry_that_finds_nothing(
    index_only_redis: tuple[RedisServer, str],
) -> None:
    server, _ = index_only_redis
    store, pool_id = _get_id_refused_to(index_only_redis)
    with server.client() as client:
        (leftover,) = [i for i, p in layout.index_entries(client).items() if p == pool_id]
        assert store.get_identity(leftover) is None  # DescribeIdentity: not found
        page = store.list_identities(pool_id, None, 60, False)
        assert page is not None and list(page.items) == []  # ListIdentities does not show it
        kinds = [p.kind for p in check_store(client, [pool_id]).problems]
        assert kinds == [INDEX_WITHOUT_IDENTITY]
    identity = _get_id(store, pool_id, 3.0)  # the retry
    assert store.get_identity(identity.id) is not None


def test_a_getid_in_a_pool_deleted_meanwhile_leaves_no_index_entry(
    redis_server: RedisServer,
) -> None:
    store = RedisStore(RedisConnector.from_url(redis_server.url, 2.0))
    pool_id = _unauthenticated_pool(store)
    store.delete_pool(pool_id)
    before = set(layout.index_entries(redis_server.client()))
    assert store.create_unauthenticated(pool_id, f"{REGION}:{uuid.uuid4()}", 2.0) is None
    assert set(layout.index_entries(redis_server.client())) == before
