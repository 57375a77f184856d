"""The process helpers themselves: a real redis-server starts, survives a crash with its
append-only file, and leaves nothing running once stopped."""

from __future__ import annotations

import gc
import socket
import weakref
from pathlib import Path
from typing import Any

import pytest
from redis.cluster import RedisCluster
from support import redis_clients
from support.processes import (
    REDIS_DURABLE_CONFIG,
    RedisServer,
    child_pids,
    free_port,
    pid_alive,
)
from support.topologies import Topology, connector_for

from broker.store.connection import RedisConnector


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


def test_redis_server_answers_and_stops_without_leftovers() -> None:
    server = RedisServer().start()
    try:
        pid = server.pid
        assert pid is not None and pid_alive(pid)
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        with server.client() as conn:
            assert conn.ping() is True
            conn.set("greeting", "hello")
            assert conn.get("greeting") == "hello"  # decode_responses=True
            assert conn.config_get("appendonly") == {"appendonly": "no"}
    finally:
        server.stop()
    assert not pid_alive(pid)
    assert not server.ping()
    assert not server.dir.exists()  # the temporary dir it made is gone


def test_kill_and_restart_keep_acknowledged_writes(tmp_path: Path) -> None:
    with RedisServer(REDIS_DURABLE_CONFIG, dir=tmp_path) as server:
        port = server.port
        with server.client() as conn:
            assert conn.config_get("appendfsync") == {"appendfsync": "always"}
            conn.set("survivor", "yes")
            conn.hset("pool:1", mapping={"name": "p", "count": "3"})
        first_pid = server.pid
        assert first_pid is not None

        server.kill()  # SIGKILL: no shutdown, no final save
        assert not pid_alive(first_pid)
        assert not server.ping()

        server.restart()
        assert server.port == port
        assert server.pid != first_pid
        with server.client() as conn:
            assert conn.get("survivor") == "yes"
            assert conn.hgetall("pool:1") == {"name": "p", "count": "3"}
        second_pid = server.pid
    assert second_pid is not None and not pid_alive(second_pid)
    assert tmp_path.exists()  # a dir given by the test is the test's to keep


def test_without_persistence_a_kill_loses_the_data() -> None:
    with RedisServer() as server:
        with server.client() as conn:
            conn.set("ephemeral", "1")
        server.kill()
        server.restart()
        with server.client() as conn:
            assert conn.get("ephemeral") is None


def test_a_failed_start_says_why(tmp_path: Path) -> None:
    server = RedisServer(("--no-such-option", "1"), dir=tmp_path)
    with pytest.raises(RuntimeError, match="redis-server on port"):
        server.start()
    assert server.pid is not None and not pid_alive(server.pid)


def test_child_pids_of_a_process_without_children() -> None:
    with RedisServer() as server:
        assert server.pid is not None
        assert child_pids(server.pid) == []


def _connections(client: Any) -> list[weakref.ref[Any]]:
    """Weak references to every connection ``client`` holds: a ``redis.Redis`` (and a
    Sentinel master's sentinels) or a ``RedisCluster`` (its nodes' clients)."""
    if isinstance(client, RedisCluster):
        pools = [
            n.redis_connection.connection_pool for n in client.get_nodes() if n.redis_connection
        ]
    else:
        pools = [client.connection_pool]
        manager = getattr(client.connection_pool, "sentinel_manager", None)
        if manager is not None:
            pools += [sentinel.connection_pool for sentinel in manager.sentinels]
    return [
        weakref.ref(conn)
        for pool in pools
        for conn in [*pool._available_connections, *pool._in_use_connections]
    ]


def _open(refs: list[weakref.ref[Any]]) -> int:
    return sum(1 for ref in refs if (conn := ref()) is not None and conn._sock is not None)


def test_redis_clients_left_open_are_disconnected_after_the_test(
    redis_server: RedisServer,
) -> None:
    """redis-py's pools are reference cycles: a client a test drops with its connections
    open is finalized by the garbage collector, whose order may reach the socket first
    (``ResourceWarning: unclosed <socket.socket ...>`` at some random later test). Every
    ``redis.Redis`` is held until its connections are closed after the test; one still used
    elsewhere works afterwards, one used nowhere else is let go."""
    dropped = redis_server.client()
    dropped.ping()
    gone = weakref.ref(dropped)
    connector = RedisConnector.from_url(redis_server.url, 2.0)
    kept = connector.client()
    kept.ping()
    connector.call("a-key", "GET", "a-key")  # ping's connection, now held for call()
    connections = _connections(dropped) + _connections(kept)
    assert _open(connections) == 2
    del dropped
    gc.collect()  # held: not collected with its socket open
    assert gone() is not None and _open(connections) == 2
    redis_clients.disconnect_all()
    assert _open(connections) == 0
    gc.collect()
    assert gone() is None  # nothing else held it: let go, its sockets closed
    assert kept.ping() is True  # a disconnected client connects again when used
    assert connector.call("a-key", "GET", "a-key") is None


@pytest.mark.parametrize("topology", ["cluster", "sentinel"])
def test_topology_clients_left_open_are_disconnected_and_still_serve(
    topology: str, request: pytest.FixtureRequest
) -> None:
    """The topologies' clients too: a RedisCluster's node clients and a Sentinel's master
    and sentinel clients. A connector a longer-lived fixture keeps (a cluster's above all,
    which ``close()`` would leave unusable) serves again after the test's disconnect."""
    servers: Topology = request.getfixturevalue(
        "redis_cluster" if topology == "cluster" else "redis_sentinels"
    )
    dropped = servers.client()
    dropped.set("left-open", "1")
    connector = connector_for(servers)
    kept = connector.client()
    assert kept.get("left-open") == "1"
    connector.call("left-open", "GET", "left-open")
    connections = _connections(dropped) + _connections(kept)
    assert _open(connections) >= 2
    del dropped
    gc.collect()
    assert _open(connections) >= 2  # held: not collected with their sockets open
    redis_clients.disconnect_all()
    assert _open(connections) == 0
    assert connector.client().get("left-open") == "1"
    assert connector.call("left-open", "GET", "left-open") == "1"
    assert connector.health() == []
    connector.client().delete("left-open")
