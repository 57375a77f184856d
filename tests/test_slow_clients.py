"""Clients that trickle partial requests do not keep new clients out (issue 14 item 4).

Before: each keep-alive worker held at most gunicorn's ``worker_connections`` (1,000, not
settable through ``BROKER_*``), a connection with a request still arriving was never
closed to make room, and so 1,000 trickling sockets per worker kept every new client
waiting in the kernel's queue until their request timeout. Now the bound is
``BROKER_WORKER_CONNECTIONS``, one source address may hold at most
``BROKER_PARTIAL_REQUESTS_PER_ADDRESS`` connections of a worker with a request arriving
(a tenth of its connections by default; past it its oldest is closed), and a full worker
closes the request arriving longest to take a new connection.

Real sockets throughout: a gunicorn broker and, for the attack, 5,000 sockets bound to
127.0.0.2 (all of 127.0.0.0/8 is loopback on Linux) while the measured client uses
127.0.0.1.
"""

from __future__ import annotations

import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.faults import record_figures
from support.processes import REPO_ROOT, BrokerServer, RedisServer
from support.trickle import PARTIAL, Trickler, connect, healthz

pytestmark = pytest.mark.slow  # servers or subprocesses of its own: not the fast lane

HEALTH = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
ATTACKER = "127.0.0.2"


@pytest.fixture(scope="module")
def broker(
    own_redis: RedisServer, broker_credentials: dict[str, str]
) -> Callable[..., BrokerServer]:
    def make(workers: int = 1, **env: str) -> BrokerServer:
        return BrokerServer(
            redis_url=own_redis.url, credentials=broker_credentials, workers=workers, env=env
        )

    return make


def gunicorn_value(env: dict[str, str], name: str) -> subprocess.CompletedProcess[str]:
    script = f"import runpy; print(runpy.run_path('config/gunicorn.conf.py').get({name!r}))"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    return subprocess.run(
        [sys.executable, "-c", script],
        env={**clean, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(("raw", "expected"), [("", "1000"), ("5000", "5000"), ("7", "7")])
def test_worker_connections_is_a_broker_setting(raw: str, expected: str) -> None:
    done = gunicorn_value({"BROKER_WORKER_CONNECTIONS": raw}, "worker_connections")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


@pytest.mark.parametrize("raw", ["0", "many", "100001"])
def test_a_bad_worker_connections_stops_gunicorn_with_one_line(raw: str) -> None:
    done = gunicorn_value({"BROKER_WORKER_CONNECTIONS": raw}, "worker_connections")
    assert done.returncode == 2
    assert done.stderr.startswith(
        "identity-broker: configuration error: BROKER_WORKER_CONNECTIONS must be"
    )
    assert len(done.stderr.strip().splitlines()) == 1


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_a_full_worker_closes_the_request_arriving_longest_for_a_new_client(
    broker: Callable[..., BrokerServer],
) -> None:
    """BROKER_WORKER_CONNECTIONS=2, no bound per address: two partial requests fill the
    worker. A new client is still served (within PARTIAL_MIN_AGE, 1 s, of the older
    request's start), and the older partial request is the one closed."""
    with broker(BROKER_WORKER_CONNECTIONS="2", BROKER_PARTIAL_REQUESTS_PER_ADDRESS="off") as server:
        first = connect(server.port, ATTACKER)
        first.sendall(PARTIAL)
        time.sleep(0.2)
        second = connect(server.port, ATTACKER)
        second.sendall(PARTIAL)
        try:
            took = healthz(server.port, timeout=4)
            assert took < 2.0
            assert closed_by_server(first, 1)
            assert not closed_by_server(second, 0.2)
        finally:
            first.close()
            second.close()


def test_one_address_is_held_to_its_share_of_partial_requests(
    broker: Callable[..., BrokerServer],
) -> None:
    """BROKER_PARTIAL_REQUESTS_PER_ADDRESS=3: a fourth partial request from one address
    closes that address's oldest; another address is not counted with it."""
    with broker(BROKER_PARTIAL_REQUESTS_PER_ADDRESS="3") as server:
        socks = []
        try:
            for _ in range(4):
                sock = connect(server.port, ATTACKER)
                sock.sendall(PARTIAL)
                socks.append(sock)
                time.sleep(0.05)
            neighbour = connect(server.port, "127.0.0.3")
            neighbour.sendall(PARTIAL)
            socks.append(neighbour)
            assert closed_by_server(socks[0], 2)
            assert not any(closed_by_server(sock, 0.1) for sock in socks[1:])
            for sock in socks[1:]:
                sock.sendall(b"x\r\n\r\n")  # each request completes and is answered
                sock.settimeout(5)
                assert sock.recv(12) == b"HTTP/1.1 200"
        finally:
            for sock in socks:
                sock.close()


def test_new_clients_are_answered_while_one_address_trickles_5000_partial_requests(
    broker: Callable[..., BrokerServer],
) -> None:
    """Two workers with the default settings (1,000 connections each, at most 100 of them
    per address with a request arriving). 127.0.0.2 opens 5,000 sockets, each trickling a
    partial request and reopened when closed; meanwhile a new client on 127.0.0.1 asks for
    /healthz every 0.2 s and must be answered at once each time (before: not within 5 s,
    every slot held until the request timeout)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 5000 + 1000
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    # the workers inherit the limit: each may hold 1,000 connections and its own files
    with (
        broker(workers=2, BROKER_WORKER_TIMEOUT="10") as server,
        Trickler(server.port, ATTACKER, 5000) as attack,
    ):
        deadline = time.monotonic() + 10
        while attack.opened < 5000 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # every socket had time to connect and send its partial request
        latencies = []
        for _ in range(30):
            latencies.append(healthz(server.port, timeout=5))
            time.sleep(0.2)
        figures = {
            "attacker_sockets_opened": attack.opened,
            "attacker_most_open_at_once": attack.most_connected,
            "attacker_closed_by_server": attack.closed_by_server,
            "attacker_connect_failures": attack.failed,
            "new_clients": len(latencies),
            "new_client_median_ms": round(statistics.median(latencies) * 1000, 1),
            "new_client_max_ms": round(max(latencies) * 1000, 1),
        }
    record_figures("5,000 trickling sockets from one address", figures)
    assert attack.opened >= 5000 and attack.closed_by_server >= 3000, figures
    assert max(latencies) < 1.0, figures


@pytest.mark.parametrize(
    ("env", "connections", "threads", "partial"),
    [
        ({}, 1000, 16, 100),
        ({}, 5, 16, 1),  # at least one
        (
            {"BROKER_PARTIAL_REQUESTS_PER_ADDRESS": "off", "BROKER_WORKER_THREADS": "0"},
            1000,
            0,
            None,
        ),
        ({"BROKER_PARTIAL_REQUESTS_PER_ADDRESS": "1000"}, 1000, 16, 1000),
    ],
)
def test_server_settings(
    env: dict[str, str], connections: int, threads: int, partial: int | None
) -> None:
    from config.server import ServerSettings

    settings = ServerSettings.from_env(env, connections)
    assert (settings.threads, settings.partial_per_address) == (threads, partial)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"BROKER_PARTIAL_REQUESTS_PER_ADDRESS": "1001"},
            "BROKER_PARTIAL_REQUESTS_PER_ADDRESS must be between 1 and 1000, got 1001",
        ),
        (
            {"BROKER_WORKER_CONNECTIONS": "50", "BROKER_PARTIAL_REQUESTS_PER_ADDRESS": "51"},
            "BROKER_PARTIAL_REQUESTS_PER_ADDRESS must be between 1 and 50, got 51",
        ),
        (
            {"BROKER_PARTIAL_REQUESTS_PER_ADDRESS": "some"},
            "BROKER_PARTIAL_REQUESTS_PER_ADDRESS must be a whole number of connections, or off, "
            "got 'some'",
        ),
        (
            {"BROKER_WORKER_THREADS": "-1"},
            "BROKER_WORKER_THREADS must be between 0 and 256, got -1",
        ),
    ],
)
def test_a_bad_server_setting_stops_gunicorn_before_it_binds(
    env: dict[str, str], message: str, own_redis: RedisServer
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    done = subprocess.run(
        [str(Path(sys.prefix) / "bin" / "gunicorn"), "-c", "config/gunicorn.conf.py", "wsgi:app"],
        env={**clean, "REDIS_URL": own_redis.url, "BROKER_BIND": "127.0.0.1:1", **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert (
        done.stderr.strip().splitlines()[-1] == f"identity-broker: configuration error: {message}"
    )


def test_the_table_of_arriving_requests_keeps_each_address_to_its_bound() -> None:
    from broker.server.arriving import ArrivingRequests

    class Conn:
        def __init__(self) -> None:
            self.arriving_since = 0.0

    now = [100.0]
    table: ArrivingRequests[Conn] = ArrivingRequests(2, monotonic=lambda: now[0])
    a1, a2, a3, b1 = Conn(), Conn(), Conn(), Conn()
    assert table.update(a1, "a", True) is None
    now[0] += 0.5
    assert table.update(a2, "a", True) is None
    assert table.update(b1, "b", True) is None  # another address: not counted with "a"
    assert table.update(a1, "a", True) is None  # still arriving: nothing changes
    assert table.update(a3, "a", True) is a1  # past the bound: the address's oldest
    assert table.oldest(1.0) is None  # a1 began 0.5 s ago
    now[0] += 0.6
    assert table.oldest(1.0) is a1  # the caller closes it, then:
    assert table.update(a1, "a", False) is None and a1.arriving_since == 0.0
    assert table.oldest(0.0) is a2 and len(table) == 3
    for conn, address in ((a2, "a"), (a3, "a"), (b1, "b")):
        table.update(conn, address, False)
    assert len(table) == 0 and table.oldest(0.0) is None
    unbounded: ArrivingRequests[Conn] = ArrivingRequests(None)
    assert all(unbounded.update(Conn(), "a", True) is None for _ in range(50))
