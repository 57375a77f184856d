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
