"""The process helpers themselves: a real redis-server starts, survives a crash with its
append-only file, and leaves nothing running once stopped."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from support.processes import (
    REDIS_DURABLE_CONFIG,
    RedisServer,
    child_pids,
    free_port,
    pid_alive,
)


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


def test_redis_clients_left_open_are_closed_after_the_test(redis_server: RedisServer) -> None:
    """redis-py clients are reference cycles: one a test drops open is finalized by the
    garbage collector, whose order may reach the socket first (``ResourceWarning: unclosed
    <socket.socket ...>`` at some random later test). Those of RedisServer.client() and of
    every RedisConnector (in-process apps, stores) are tracked and closed after each test."""
    import gc
    import weakref

    from support import redis_clients

    from broker.store.connection import RedisConnector

    dropped = redis_server.client()
    dropped.ping()
    connector = RedisConnector.from_url(redis_server.url, 2.0)
    connector.client().ping()
    watched = [dropped, connector.client()]
    connections = [
        weakref.ref(conn)
        for client in watched
        for conn in client.connection_pool._available_connections
    ]
    assert len(connections) == 2
    assert all(ref() is not None and ref()._sock is not None for ref in connections)
    del dropped, connector, watched
    gc.collect()  # tracked: not collected with its socket open
    assert all(ref() is not None for ref in connections)
    redis_clients.close_all()
    assert all(ref() is None or ref()._sock is None for ref in connections)
