"""broker/store/script_runner.py sends EVALSHA on a connection each thread keeps
(``broker.store.connection``): it must load a script Redis forgot, replace a connection the
server closed before using it, drop one that timed out and raise Redis's errors."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import redis
from support.processes import RedisServer

from broker.store.connection import RedisConnector, script_sha
from broker.store.script_runner import ScriptRunner

ECHO = "return {KEYS[1], ARGV[1], #KEYS, #ARGV}"
FAILS = "return redis.error_reply('ERR broker test: refused')"


class Runner(ScriptRunner):
    def run(self, source: str, keys: list[str], args: list[str]) -> object:
        return self._run(source, keys, args)


@pytest.fixture
def runner(redis_server: RedisServer) -> Runner:
    return Runner(RedisConnector.from_url(redis_server.url, timeout=1.0))


def test_keys_and_args_arrive_and_replies_are_decoded(runner: Runner) -> None:
    key = f"{{test}}:{uuid.uuid4()}"
    assert runner.run(ECHO, [key, "k2"], ["é", "2", "3"]) == [key, "é", 2, 3]


def test_a_script_redis_forgot_is_loaded_again(runner: Runner) -> None:
    assert runner.run(ECHO, ["a"], ["1"]) == ["a", "1", 1, 1]
    runner.redis.script_flush()
    assert runner.run(ECHO, ["b"], ["2"]) == ["b", "2", 1, 1]
    assert runner.redis.script_exists(script_sha(ECHO)) == [True]


def test_an_error_reply_is_raised_and_the_connection_stays_usable(runner: Runner) -> None:
    with pytest.raises(redis.ResponseError, match="broker test: refused"):
        runner.run(FAILS, ["a"], [])
    assert runner.run(ECHO, ["a"], ["1"]) == ["a", "1", 1, 1]


def _script_connections(server: RedisServer) -> list[dict[str, Any]]:
    """The server's clients whose last command was a script (the runner's kept ones)."""
    with server.client() as admin:
        return [c for c in admin.client_list() if c.get("cmd") in ("evalsha", "eval")]


def test_a_killed_connection_is_replaced_before_use(
    runner: Runner, redis_server: RedisServer
) -> None:
    runner.run(ECHO, ["a"], ["1"])
    kept = _script_connections(redis_server)
    assert kept, "the runner keeps its connection"
    with redis_server.client() as admin:
        for client in kept:
            admin.client_kill_filter(_id=client["id"])
    assert runner.run(ECHO, ["b"], ["2"]) == ["b", "2", 1, 1]  # not the dead one


def test_a_timed_out_call_drops_its_connection_so_no_late_reply_is_misread(
    redis_server: RedisServer,
) -> None:
    runner = Runner(RedisConnector.from_url(redis_server.url, timeout=0.2))
    spin = (  # busy for 0.5 s, then answers "late"
        "local function now() local t = redis.call('TIME') return t[1] + t[2] / 1e6 end "
        "local stop = now() + 0.5 while now() < stop do end return 'late'"
    )
    with pytest.raises(redis.TimeoutError):
        runner.run(spin, ["a"], [])
    time.sleep(0.8)  # the script has ended and its reply has been sent
    answer = runner.run(ECHO, ["b"], ["2"])
    assert answer == ["b", "2", 1, 1]  # its own reply, not the spinning script's "late"
    assert runner.run(ECHO, ["c"], ["3"]) == ["c", "3", 1, 1]
    assert len(_script_connections(redis_server)) == 1  # the timed-out one was closed
