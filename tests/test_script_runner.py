"""broker/store/script_runner.py sends EVALSHA on a pooled connection itself: it must load
a script Redis forgot, give connections back, drop a broken one and raise Redis's errors."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import redis
from support.processes import RedisServer

from broker.store.client import RedisConnector
from broker.store.script_runner import ScriptRunner

ECHO = "return {KEYS[1], ARGV[1], #KEYS, #ARGV}"
FAILS = "return redis.error_reply('ERR broker test: refused')"


class Runner(ScriptRunner):
    def run(self, source: str, keys: list[str], args: list[str]) -> object:
        return self._run(source, keys, args)


@pytest.fixture
def runner(redis_server: RedisServer) -> Runner:
    return Runner(RedisConnector(redis_server.url, timeout=1.0))


def test_keys_and_args_arrive_and_replies_are_decoded(runner: Runner) -> None:
    key = f"{{test}}:{uuid.uuid4()}"
    assert runner.run(ECHO, [key, "k2"], ["é", "2", "3"]) == [key, "é", 2, 3]


def test_a_script_redis_forgot_is_loaded_again(runner: Runner) -> None:
    assert runner.run(ECHO, ["a"], ["1"]) == ["a", "1", 1, 1]
    runner.redis.script_flush()
    assert runner.run(ECHO, ["b"], ["2"]) == ["b", "2", 1, 1]
    assert runner.redis.script_exists(runner._script(ECHO).sha) == [True]


def test_an_error_reply_is_raised_and_the_connection_stays_usable(runner: Runner) -> None:
    with pytest.raises(redis.ResponseError, match="broker test: refused"):
        runner.run(FAILS, ["a"], [])
    assert runner.run(ECHO, ["a"], ["1"]) == ["a", "1", 1, 1]


def test_a_killed_connection_is_replaced_before_use(runner: Runner) -> None:
    runner.run(ECHO, ["a"], ["1"])
    pool = runner.redis.connection_pool
    assert len(pool._available_connections) == 1  # given back after use
    name = f"victim-{uuid.uuid4()}"
    conn: Any = pool.get_connection()
    conn.send_command("CLIENT", "SETNAME", name)
    assert conn.read_response() == "OK"
    pool.release(conn)
    other = redis.Redis(port=runner.redis.connection_pool.connection_kwargs["port"])
    (client_id,) = [c["id"] for c in other.client_list() if c.get("name") == name]
    other.client_kill_filter(_id=client_id)
    assert runner.run(ECHO, ["b"], ["2"]) == ["b", "2", 1, 1]


def test_a_timed_out_call_drops_its_connection_so_no_late_reply_is_misread(
    redis_server: RedisServer,
) -> None:
    runner = Runner(RedisConnector(redis_server.url, timeout=0.2))
    spin = (  # busy for 0.5 s, then answers "late"
        "local function now() local t = redis.call('TIME') return t[1] + t[2] / 1e6 end "
        "local stop = now() + 0.5 while now() < stop do end return 'late'"
    )
    with pytest.raises(redis.TimeoutError):
        runner.run(spin, ["a"], [])
    time.sleep(0.8)  # the script has ended and its reply has been sent
    answer = runner.run(ECHO, ["b"], ["2"])
    assert answer == ["b", "2", 1, 1]  # its own reply, not the spinning script's "late"
    assert len(runner.redis.connection_pool._available_connections) == 1
