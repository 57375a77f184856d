"""The Redis client of one store and the Lua scripts it has registered.

Scripts are registered once per client and run with EVALSHA (loading the script again
after a Redis restart answers NOSCRIPT), and again when a forked worker builds its own
client. Every store that runs a script goes through here, so none sends the whole script
with each call.

A script outside a pipeline is sent on a connection taken from the client's pool directly
(``_evalsha``): one EVALSHA is a request's only Redis round trip for a returning user, and
redis-py's generic command path (retry wrapper, observability hooks, response callbacks)
cost more than the round trip's own client work. What that path does that matters here is
kept: the connection goes back to the pool, a connection or timeout error drops it (the
next use reconnects) and is raised as is (retries are off anyway: ``client.py``), and an
error reply is raised as redis-py's exception.

The connection itself is taken from the pool and given back by :func:`_take` and
:func:`_give_back`, which do what redis-py's ``get_connection`` and ``release`` do for the
common case (an idle, connected connection with nothing unread) without those methods'
per-call bookkeeping for redis-py's OpenTelemetry metrics (not set up here; about half of
their cost). Every other case (no idle connection, a connection closed or holding unread
data, a forked process) goes to redis-py's own methods.
"""

from __future__ import annotations

from typing import Any, Final

import redis
from redis.event import AfterConnectionReleasedEvent
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from broker.store.client import RedisConnector

# KEYS: one key   ARGV: the value it must still hold. A compare-and-delete: a lock's holder
# releasing it, or a name dropped only while it names what the caller saw.
DELETE_IF_EQUAL: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class ScriptRunner:
    def __init__(self, connector: RedisConnector) -> None:
        self._connector = connector
        self._scripts: dict[str, Any] = {}
        self._scripts_client: redis.Redis | None = None

    @property
    def redis(self) -> redis.Redis:
        return self._connector.client()

    def _script(self, source: str) -> Any:
        client = self.redis
        if client is not self._scripts_client:
            self._scripts = {}
            self._scripts_client = client
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = client.register_script(source)
        return script

    def _run(
        self, source: str, keys: list[str], args: list[Any] | None = None, client: Any = None
    ) -> Any:
        """Run the script; ``client`` may be a pipeline, which loads it before it executes."""
        script = self._script(source)
        if client is not None:
            return script(keys=keys, args=args or [], client=client)
        return self._evalsha(script, keys, args or [])

    def _evalsha(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        pool = self.redis.connection_pool
        conn: Any = _take(pool)  # redis-py types its Connection methods loosely
        try:
            try:
                conn.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
                return conn.read_response()
            except NoScriptError:  # Redis restarted (or flushed its scripts): load it again
                conn.send_command("SCRIPT", "LOAD", script.script)
                script.sha = conn.read_response()
                conn.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
                return conn.read_response()
        except (RedisConnectionError, RedisTimeoutError):
            conn.disconnect()
            raise
        finally:
            _give_back(pool, conn)


def _take(pool: Any) -> Any:  # a ConnectionPool, whose private parts are untyped
    """``pool.get_connection()``: an idle connection that is connected and has nothing
    unread (redis-py's own check) is handed out here; anything else, redis-py decides."""
    pool._checkpid()
    with pool._lock:
        conn = pool._available_connections.pop() if pool._available_connections else None
        if conn is not None:
            pool._in_use_connections.add(conn)
    if conn is None:
        return pool.get_connection()
    try:
        if conn._sock is not None and not conn.can_read():
            return conn
    except (RedisConnectionError, RedisTimeoutError, OSError):
        pass
    _give_back(pool, conn)
    return pool.get_connection()  # which reconnects it, as it would have


def _give_back(pool: Any, conn: Any) -> None:
    """``pool.release(conn)``: the common case here, any other (a connection the pool
    does not own after a fork, one that must reconnect) by redis-py."""
    pool._checkpid()
    with pool._lock:
        if (
            conn in pool._in_use_connections
            and pool.owns_connection(conn)
            and not conn.should_reconnect()
        ):
            pool._in_use_connections.remove(conn)
            pool._available_connections.append(conn)
            event = AfterConnectionReleasedEvent(conn)  # type: ignore[no-untyped-call]
            pool._event_dispatcher.dispatch(event)
            return
    pool.release(conn)
