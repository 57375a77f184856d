"""Worker crash (docs/reliability.md): ``kill -9`` of gunicorn workers under a load of
new-identity requests. The master replaces each one; clients see at most a failed
connection for each request that worker had been sent; afterwards every acknowledged identity
is intact and the consistency checker finds nothing."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter

import pytest
import requests
from support.faults import (
    NO_ANSWER,
    NewIdentityLoad,
    call,
    create_pool,
    record_figures,
    verify_identities,
)
from support.processes import BrokerServer, RedisServer

pytestmark = pytest.mark.slow  # servers or subprocesses of its own: not the fast lane

PROVIDER = "login.crash"
SOAK = os.environ.get("BROKER_SOAK") == "1"
WORKERS = 3
THREADS = 4
KILLS = 30 if SOAK else 3
ACKS_PER_PHASE = 150 if SOAK else 100
REPLACE_TIMEOUT = 20.0
#: What a client may see from a worker killed while serving it: the connection drops.
CONNECTION_ERRORS = {"ConnectionError", "ChunkedEncodingError"}


def wait_for_replacement(server: BrokerServer, victim: int) -> float:
    """Seconds until the master has ``WORKERS`` live workers again, none of them the victim,
    and the service answers."""
    started = time.monotonic()
    while time.monotonic() - started < REPLACE_TIMEOUT:
        workers = server.worker_pids()
        if victim not in workers and len(workers) == WORKERS and server.ready():
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"worker {victim} not replaced within {REPLACE_TIMEOUT} s")


def test_killed_workers_are_replaced_and_nothing_acknowledged_is_lost(
    redis_server: RedisServer, broker_credentials: dict[str, str]
) -> None:
    rng = random.Random(7)
    started = time.monotonic()
    replaced_in: list[float] = []
    with BrokerServer(
        redis_url=redis_server.url, credentials=broker_credentials, workers=WORKERS
    ) as server:
        master = server.pid
        pool_id = create_pool(server, PROVIDER)
        with NewIdentityLoad(server, pool_id, PROVIDER, threads=THREADS) as load:
            for kill in range(1, KILLS + 1):
                load.wait_for(ACKS_PER_PHASE * kill, timeout=60)
                victim = rng.choice(server.worker_pids())
                os.kill(victim, signal.SIGKILL)
                replaced_in.append(wait_for_replacement(server, victim))
            load.wait_for(ACKS_PER_PHASE * (KILLS + 1), timeout=60)
        assert server.pid == master and len(server.worker_pids()) == WORKERS
        with redis_server.client() as client:
            result = verify_identities(server, client, pool_id, PROVIDER, load.attempts)
        assert requests.get(f"{server.url}/readyz", timeout=5).status_code == 200
        # the session's Redis is shared: leave no pool behind
        assert call(server, "DeleteIdentityPool", {"IdentityPoolId": pool_id}).status_code == 200

    outcomes = load.outcomes()
    record_figures(
        "worker crash: kill -9 of a gunicorn worker",
        {
            "faults_injected": KILLS,
            **result.figures(),
            "outcomes": dict(outcomes),
            "slowest_replacement_seconds": round(max(replaced_in), 2),
            "seconds": round(time.monotonic() - started, 1),
        },
    )
    assert result.lost == []
    assert result.problems == []
    failures = Counter(
        a.error if a.status == NO_ANSWER else f"HTTP {a.status} {a.error}"
        for a in load.attempts
        if a.status != 200
    )
    assert set(failures) <= CONNECTION_ERRORS, failures
    # A worker holds kept-alive connections: a kill fails at most the requests it had been
    # sent and not yet answered, one per connection, so one per client thread.
    assert sum(failures.values()) <= KILLS * THREADS, failures
