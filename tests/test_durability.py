"""Crash durability (docs/reliability.md): ``kill -9`` of Redis (appendonly yes, appendfsync
always) under a load of new-identity requests, restart on the same data directory, and
every identity a client was told about is still there and maps back from its login.

Also the repair that makes this hold when the crash falls between the two writes of a
creation: the identity (one Lua script in the pool's hash slot) and its identity index
entry (another slot, written just after).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.faults import NewIdentityLoad, create_pool, record_figures, verify_identities
from support.processes import REDIS_DURABLE_CONFIG, REPO_ROOT, BrokerServer, RedisServer, broker_env

from broker.identity.developer import resolve_developer_login
from broker.identity.models import PoolConfig
from broker.identity.pools import create_pool as create_pool_in
from broker.store import keys
from broker.store.checker import IDENTITY_NOT_INDEXED, check_store
from broker.store.client import RedisConnector
from broker.store.redis_store import RedisStore

PROVIDER = "login.durable"
REGION = "us-east-1"
SOAK = os.environ.get("BROKER_SOAK") == "1"
#: Redis crashes per run, and identities acknowledged before each crash and after the last.
KILLS = 12 if SOAK else 2
ACKS_PER_PHASE = 400 if SOAK else 150
THREADS = 4
OUTAGE_SECONDS = 0.5  # Redis stays dead this long: requests meanwhile must fail fast


def run_checker_cli(redis_url: str) -> subprocess.CompletedProcess[str]:
    env = broker_env()
    env["REDIS_URL"] = redis_url
    return subprocess.run(
        [str(Path(sys.prefix) / "bin" / "flask"), "--app", "app", "broker", "check"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_acknowledged_identities_survive_kill_9_of_redis(
    broker_credentials: dict[str, str], tmp_path: Path
) -> None:
    started = time.monotonic()
    with (
        RedisServer(REDIS_DURABLE_CONFIG, dir=tmp_path / "redis") as redis_server,
        BrokerServer(
            redis_url=redis_server.url, credentials=broker_credentials, workers=3
        ) as server,
    ):
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
@pytest.fixture
def halfway_redis() -> Iterator[tuple[RedisServer, str]]:
    """A Redis with an ACL user that may write a pool's keys but not the identity index:
    through it a creation does its Lua script and then fails, exactly as if the process
    had died between the two writes."""
    with RedisServer() as server:
        with server.client() as admin:
            pool_keys = f"~ib:{{{REGION}:*"  # read everything, write only the pools' keys
            admin.execute_command(
                "ACL", "SETUSER", "halfway", "on", ">halfway-pw", "%R~*", pool_keys, "+@all"
            )
        yield server, f"redis://halfway:halfway-pw@127.0.0.1:{server.port}/0"


def test_a_creation_cut_short_before_its_index_entry_is_finished_by_the_retry(
    halfway_redis: tuple[RedisServer, str],
) -> None:
    server, halfway_url = halfway_redis
    store = RedisStore(RedisConnector(server.url, 2.0))
    halfway = RedisStore(RedisConnector(halfway_url, 2.0))
    pool = create_pool_in(
        store,
        PoolConfig(name="halfway", allow_unauthenticated=False, developer_provider_name="dev"),
        region=REGION,
        max_pools=10,
        now=1.0,
    )

    def token_call(via: RedisStore) -> str:
        resolved = resolve_developer_login(
            via, pool_id=pool.id, logins={"dev": "u"}, identity_id=None, region=REGION, now=2.0
        )
        return resolved.identity.id

    with pytest.raises(Exception, match="no permissions"):  # the client got no answer
        token_call(halfway)
    with server.client() as client:
        report = check_store(client, [pool.id])
        assert [p.kind for p in report.problems] == [IDENTITY_NOT_INDEXED]

        identity_id = token_call(store)  # the client asks again, as every SDK does

        assert store.get_identity(identity_id) is not None  # DescribeIdentity finds it
        assert client.hget(keys.IDENTITY_INDEX, identity_id) == pool.id
        assert check_store(client, [pool.id]).clean
        assert token_call(store) == identity_id
