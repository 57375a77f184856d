"""Failovers under load lose no acknowledged identity (issue 13, contract section 11).

Each test runs a broker with ``REDIS_WAIT_REPLICAS=1`` on a topology of its own, has 16
threads ask for tokens of new users throughout, makes the topology fail over, and then
proves (``support.faults.verify_identities``) that every user the broker acknowledged still
maps to the same IdentityId (LookupDeveloperIdentity, DescribeIdentity, a new token), that
no user got two identities and that the checker is clean. Requests may fail only in a
window around the failover; the test reports that window and bounds it.

- ``SENTINEL FAILOVER`` of a Sentinel set whose replicas are chained (master -> replica 1
  -> replica 2), so that the replica WAIT counts is the one Sentinel promotes;
- ``CLUSTER FAILOVER`` on the replica of the cluster master that owns the pool's slot;
- ``kill -9`` of that master: the cluster elects its replica; the killed node is started
  again and rejoins as the new master's replica (until then the shard has no replica, and
  no change to it can be confirmed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.faults import Attempt, NewIdentityLoad, create_pool, record_figures, verify_identities
from support.processes import BrokerServer
from support.topologies import RedisClusterServers, SentinelServers, wait_for

from broker.store import keys

pytestmark = pytest.mark.slow  # servers or subprocesses of its own: not the fast lane

PROVIDER = "login.failover"
THREADS = 16
ACKS_BEFORE = 300  # acknowledged before the failover starts
ACKS_AFTER = 300  # and after the topology serves again
#: Requests may fail from the failover's start until this long after it is over.
WINDOW_SLACK_SECONDS = 8.0
#: The longest window of failed requests a failover may cause here.
MAX_WINDOW_SECONDS = 20.0
WAIT_ENV = {"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_MS": "500"}


def error_window(attempts: list[Attempt], started: float) -> tuple[float, float, int]:
    """The first and last failed request, in seconds from the failover's start, and how
    many failed (0, 0, 0 when none did)."""
    failed = [a for a in attempts if a.status != 200]
    if not failed:
        return 0.0, 0.0, 0
    first = min(a.sent for a in failed) - started
    last = max(a.sent + a.seconds for a in failed) - started
    return round(first, 2), round(last, 2), len(failed)


def run_failover(
    name: str,
    server: BrokerServer,
    store_client: Callable[[], Any],
    fail_over: Callable[[str], None],
) -> None:
    pool_id = create_pool(server, PROVIDER)
    with NewIdentityLoad(server, pool_id, PROVIDER, threads=THREADS) as load:
        load.wait_for(ACKS_BEFORE, timeout=120)
        started = time.monotonic()
        fail_over(pool_id)
        over = time.monotonic()
        load.wait_for(load.acknowledged + ACKS_AFTER, timeout=120)
    first, last, failed = error_window(load.attempts, started)
    with store_client() as client:
        result = verify_identities(server, client, pool_id, PROVIDER, load.attempts)
    record_figures(
        name,
        {
            **result.figures(),
            "outcomes": dict(load.outcomes()),
            "failover_seconds": round(over - started, 2),
            "errors": failed,
            "error_window_seconds": [first, last],
        },
    )
    assert result.lost == []
    assert result.problems == []
    if failed:
        assert first >= -1.0, "requests failed before the failover began"
        assert last <= over - started + WINDOW_SLACK_SECONDS, (first, last)
        assert last - first <= MAX_WINDOW_SECONDS, (first, last)
    assert set(load.outcomes()) <= {"200", "500 InternalErrorException"}, load.outcomes()


@pytest.mark.slow
def test_sentinel_failover_loses_no_acknowledged_identity(
    broker_credentials: dict[str, str], tmp_path: Path
) -> None:
    with (
        SentinelServers() as sentinels,
        BrokerServer(
            redis_env=sentinels.env(),
            credentials=broker_credentials,
            workers=3,
            env=WAIT_ENV,
            log_path=tmp_path / "broker.log",
        ) as server,
    ):

        def fail_over(pool_id: str) -> None:
            sentinels.failover()

        run_failover("failover: SENTINEL FAILOVER", server, sentinels.client, fail_over)


@pytest.mark.slow
def test_cluster_failover_loses_no_acknowledged_identity(
    broker_credentials: dict[str, str], tmp_path: Path
) -> None:
    with (
        RedisClusterServers() as cluster,
        BrokerServer(
            redis_env=cluster.env(),
            credentials=broker_credentials,
            workers=3,
            env=WAIT_ENV,
            log_path=tmp_path / "broker.log",
        ) as server,
    ):

        def fail_over(pool_id: str) -> None:
            primary = cluster.primary_of(keys.PoolKeys.of(pool_id).pool)
            replica = cluster.replica_of(primary)
            with replica.client() as client:
                client.execute_command("CLUSTER", "FAILOVER")
            wait_for(
                lambda: cluster.primary_of(keys.PoolKeys.of(pool_id).pool).port == replica.port,
                30,
                "the replica serving the pool's slot",
            )
            cluster.wait_healthy()

        run_failover("failover: CLUSTER FAILOVER", server, cluster.client, fail_over)


@pytest.mark.slow
def test_a_killed_cluster_master_loses_no_acknowledged_identity(
    broker_credentials: dict[str, str], tmp_path: Path
) -> None:
    with (
        RedisClusterServers() as cluster,
        BrokerServer(
            redis_env=cluster.env(),
            credentials=broker_credentials,
            workers=3,
            env=WAIT_ENV,
            log_path=tmp_path / "broker.log",
        ) as server,
    ):

        def fail_over(pool_id: str) -> None:
            primary = cluster.primary_of(keys.PoolKeys.of(pool_id).pool)
            replica = cluster.replica_of(primary)
            primary.kill()  # SIGKILL: the cluster must elect the replica
            wait_for(
                lambda: _answers_as_master(replica),
                30,
                "the replica elected master",
            )
            # The new master has no replica left, so no change to its slots can be confirmed
            # (WAIT 1) until the operator brings the failed node back: it rejoins as the
            # new master's replica.
            primary.restart()
            wait_for(lambda: _replicas_of(replica) >= 1, 30, "the old master rejoined as replica")
            cluster.wait_healthy()

        run_failover("failover: kill -9 of a cluster master", server, cluster.client, fail_over)


def _replicas_of(node: Any) -> int:
    """Replicas of ``node`` that are online (synchronised, acknowledging writes)."""
    with node.client() as client:
        info = client.info("replication")
    count = int(info.get("connected_slaves", 0))
    return sum(1 for n in range(count) if info[f"slave{n}"].get("state") == "online")


def _answers_as_master(node: Any) -> bool:
    with node.client() as client:
        return bool(client.execute_command("ROLE")[0] == "master")
