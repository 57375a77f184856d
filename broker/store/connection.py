"""One Redis topology per process: standalone, Sentinel or Cluster (``config.redis``).

What the rest of the store needs from Redis comes in two shapes:

- ``client()``: redis-py's own client for the topology (``redis.Redis``, the Sentinel
  master's ``redis.Redis``, or ``redis.cluster.RedisCluster``) for ordinary commands and
  single-slot pipelines. redis-py routes each command (by slot, on a cluster) and follows
  failovers; its retries are off, so a fault surfaces at once as a redis-py error.
- ``call(slot_key, *command, confirm=...)``: one command (a script's EVALSHA, mostly) on the
  connection of the node that owns ``slot_key``'s slot, and, when ``confirm`` says the
  command changed something that must survive a failover, ``WAIT`` for
  ``REDIS_WAIT_REPLICAS`` replicas on the same connection (WAIT counts the acknowledged
  writes of the connection that sends it, so it must be that one). This is the hot path
  (a returning user's token is one EVALSHA), so each thread keeps one connection per node
  taken from redis-py's pool, through redis-py's public connection API (``send_command``,
  ``read_response``, ``disconnect``); a connection reconnects by itself once dropped.

Faults that mean the topology moved (a connection error or timeout, ``READONLY`` from a
demoted master, ``MOVED``/``CLUSTERDOWN`` on a cluster, a WAIT short of replicas) drop every
connection this process holds for ``call`` and make the next call look the topology up again
(Sentinel: ask the sentinels for the master; Cluster: read the slot map again), so a
connection to a demoted master is never used twice. ``MOVED`` and ``ASK`` are followed once
(the command did not run), every other fault fails the call fast; the caller's retry finds
the new layout.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    AuthenticationError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    ReadOnlyError,
    RedisClusterException,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel

from broker.errors import StoreUnavailable
from config.redis import RedisSettings

log = logging.getLogger("broker.store")

#: Connections one process may open to one node (redis-py's pool bound).
MAX_CONNECTIONS: Final = 64
#: Slots of a Redis Cluster (CLUSTER INFO's cluster_slots_ok when all are served).
CLUSTER_SLOTS: Final = 16384
#: A cluster's slot map is read again at most this often after a fault (seconds).
REFRESH_INTERVAL: Final = 0.2

#: Decides from a command's reply whether it changed something that WAIT must confirm.
Confirm = Callable[[Any], bool]


def never(_: Any) -> bool:
    return False


def always(_: Any) -> bool:
    return True


class ReplicationUnconfirmed(StoreUnavailable):
    """Fewer replicas than REDIS_WAIT_REPLICAS confirmed a change in REDIS_WAIT_TIMEOUT_MS:
    the change may be lost in a failover, so it is not acknowledged (contract section 11)."""


def script_sha(source: str) -> str:
    """The SHA-1 Redis names a script by (EVALSHA)."""
    return hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


def describe_fault(exc: BaseException) -> str:
    """What went wrong, named as the operator must fix it: never just a class name, never
    a password."""
    text = str(exc).strip()
    if isinstance(exc, MovedError):
        return (
            f"MOVED {exc.slot_id} {exc.host}:{exc.port}: the server is a Redis Cluster node; "
            "set REDIS_CLUSTER_NODES instead of REDIS_URL"
        )
    if isinstance(exc, ClusterDownError):
        return f"CLUSTERDOWN: the Redis Cluster cannot serve the slot ({text})"
    if isinstance(exc, ReadOnlyError):
        return "READONLY: the server is a replica (a demoted master or a read-only node)"
    if isinstance(exc, AuthenticationError) or "NOAUTH" in text or "WRONGPASS" in text:
        return f"authentication failed ({text}): check REDIS_PASSWORD or the URL's password"
    if isinstance(exc, MasterNotFoundError):
        why = (
            "no sentinel answered"
            if "ConnectionError" in text or "TimeoutError" in text
            else "the sentinels that answered monitor no master of that name"
        )
        return f"Sentinel names no master: {why} (check REDIS_SENTINELS, REDIS_SENTINEL_MASTER)"
    if isinstance(exc, ReplicationUnconfirmed):
        return exc.message
    if isinstance(exc, RedisTimeoutError):
        return f"timed out ({text or 'no answer within BROKER_REDIS_TIMEOUT'})"
    if isinstance(exc, RedisConnectionError):
        if "previous master is now a slave" in text:
            return "READONLY: the master was demoted; asking the sentinels again"
        return f"unreachable ({text})"
    if isinstance(exc, RedisClusterException):
        return f"Redis Cluster: {text}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Held:
    """The connections one thread keeps for ``call``: one per node, all of one generation.
    They go back to their pools when the thread ends (its thread-local goes, and this with
    it), so threads that come and go do not drain the pools."""

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.connections: dict[str, tuple[Any, Any]] = {}  # node -> (pool, connection)

    def __del__(self) -> None:
        for pool, conn in self.connections.values():
            with contextlib.suppress(Exception):  # at interpreter exit the pool may be gone
                pool.release(conn)


class RedisConnector:
    """This process's view of the topology; a forked child builds its own clients."""

    def __init__(self, settings: RedisSettings, *, max_connections: int = MAX_CONNECTIONS) -> None:
        self.settings = settings
        self._max_connections = max_connections
        self._client: Any = None
        self._sentinel: Sentinel | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._local = threading.local()
        self._generation = 0  # bumped when the topology moved: held connections are stale
        self._refreshed_at = 0.0

    @classmethod
    def from_url(cls, url: str, timeout: float = 1.0) -> RedisConnector:
        """A standalone server's connector (tools and tests)."""
        return cls(RedisSettings(url=url, timeout=timeout))

    # --- redis-py's client ------------------------------------------------------------------
    def client(self) -> Any:
        """``redis.Redis`` (standalone, Sentinel master) or ``RedisCluster``."""
        client = self._client
        if client is not None and self._pid == os.getpid():
            return client
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                self._client = self._build()
                self._pid = os.getpid()
                self._generation += 1
            return self._client

    def _options(self) -> dict[str, Any]:
        timeout = self.settings.timeout
        return {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
            "max_connections": self._max_connections,
            "decode_responses": True,
        }

    def _build(self) -> Any:
        s = self.settings
        if s.mode == "cluster":
            return RedisCluster(
                startup_nodes=[_node(host, port) for host, port in s.nodes],
                password=s.password,
                require_full_coverage=False,
                **self._options(),
            )
        if s.mode == "sentinel":
            timeouts = {"socket_timeout": s.timeout, "socket_connect_timeout": s.timeout}
            self._sentinel = Sentinel(  # type: ignore[no-untyped-call]
                list(s.nodes),
                sentinel_kwargs={
                    **timeouts,
                    "password": s.sentinel_password,
                    "retry": Retry(NoBackoff(), 0),
                    "decode_responses": True,
                },
            )
            master_for: Any = self._sentinel.master_for  # redis-py leaves it untyped
            return master_for(s.sentinel_master or "", password=s.password, **self._options())
        return redis.Redis.from_url(s.url, **self._options())

    @property
    def is_cluster(self) -> bool:
        return self.settings.mode == "cluster"

    # --- one command on the slot's own connection ----------------------------------------
    def call(self, slot_key: str, *command: Any, confirm: Confirm = never) -> Any:
        """Run ``command`` on the node owning ``slot_key``'s slot; WAIT when ``confirm``
        says so (and REDIS_WAIT_REPLICAS is set). Redis faults surface as redis-py errors
        (the store's fault translation names them); a WAIT short of replicas raises
        :class:`ReplicationUnconfirmed`."""
        for attempt in (1, 2):
            node, pool, conn = self._held(slot_key)
            try:
                reply = _send(conn, command)
                if self.settings.wait_replicas and confirm(reply):
                    self._wait(conn)
                return reply
            except (MovedError, AskError) as exc:  # the command did not run: follow once
                if attempt == 2:
                    self._moved()
                    raise
                if isinstance(exc, MovedError):
                    self._moved()
                    continue
                return self._ask(exc, command, confirm)
            except (RedisConnectionError, RedisTimeoutError, ReadOnlyError, ClusterDownError):
                self._drop(node, pool, conn)
                self._moved()
                raise
            except ReplicationUnconfirmed:
                self._moved()  # a demoted master cannot be confirmed: look again
                raise
            except TryAgainError:
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def script(
        self, source: str, keys: Sequence[str], args: Sequence[Any], confirm: Confirm = never
    ) -> Any:
        """EVALSHA on the slot of ``keys[0]`` (every key of a script shares one slot),
        loading the script on that node when it does not know it (NOSCRIPT)."""
        sha = script_sha(source)
        try:
            return self.call(keys[0], "EVALSHA", sha, len(keys), *keys, *args, confirm=confirm)
        except NoScriptError:
            self.call(keys[0], "SCRIPT", "LOAD", source)
            return self.call(keys[0], "EVALSHA", sha, len(keys), *keys, *args, confirm=confirm)

    def _wait(self, conn: Any) -> None:
        s = self.settings
        conn.send_command("WAIT", s.wait_replicas, s.wait_timeout_ms)
        acked = int(conn.read_response(timeout=s.wait_timeout_ms / 1000 + s.timeout))
        if acked < s.wait_replicas:
            raise ReplicationUnconfirmed(
                f"The change was confirmed by {acked} of the {s.wait_replicas} Redis replicas "
                f"REDIS_WAIT_REPLICAS asks for within {s.wait_timeout_ms} ms; retry the request."
            )

    def _ask(self, exc: AskError, command: Sequence[Any], confirm: Confirm) -> Any:
        """A slot being migrated: ask its new owner, once, on that node's connection."""
        node_name = f"{exc.host}:{exc.port}"
        cluster = self.client()
        target = cluster.get_node(host=exc.host, port=exc.port)
        if target is None:
            self._moved(force=True)
            raise exc
        pool = cluster.get_redis_connection(target).connection_pool
        conn = pool.get_connection()
        try:
            _send(conn, ("ASKING",))
            reply = _send(conn, command)
            if self.settings.wait_replicas and confirm(reply):
                self._wait(conn)
            return reply
        except (RedisConnectionError, RedisTimeoutError):
            conn.disconnect()
            self._moved()
            raise
        finally:
            pool.release(conn)
            log.debug("followed ASK to %s", node_name)

    # --- held connections -------------------------------------------------------------------
    def _held(self, slot_key: str) -> tuple[str, Any, Any]:
        client = self.client()
        held: _Held | None = getattr(self._local, "held", None)
        if held is None or held.generation != self._generation:
            if held is not None:
                for name, (pool, conn) in list(held.connections.items()):
                    self._drop(name, pool, conn, held)
            held = self._local.held = _Held(self._generation)
        if self.is_cluster:
            node = client.get_node_from_key(slot_key)
            name = node.name
            entry = held.connections.get(name)
            if entry is None:
                pool = client.get_redis_connection(node).connection_pool
                entry = held.connections[name] = (pool, pool.get_connection())
        else:
            name = "primary"
            entry = held.connections.get(name)
            if entry is None:
                pool = client.connection_pool
                entry = held.connections[name] = (pool, pool.get_connection())
        _fresh(entry[1])
        return name, entry[0], entry[1]

    def _drop(self, name: str, pool: Any, conn: Any, held: _Held | None = None) -> None:
        """Close a held connection and give it back to its pool."""
        held = held or getattr(self._local, "held", None)
        if held is not None:
            held.connections.pop(name, None)
        conn.disconnect()
        pool.release(conn)

    def _moved(self, *, force: bool = False) -> None:
        """The topology may have moved: every thread drops its held connections before its
        next call; a cluster reads its slot map again (at most every REFRESH_INTERVAL)."""
        with self._lock:
            self._generation += 1
        if not self.is_cluster or self._client is None:
            if self.settings.mode == "sentinel" and self._client is not None:
                self._client.connection_pool.disconnect(inuse_connections=False)
            return
        now = time.monotonic()
        if not force and now - self._refreshed_at < REFRESH_INTERVAL:
            return
        self._refreshed_at = now
        try:
            self._client.nodes_manager.initialize()
        except (redis.RedisError, RedisClusterException) as exc:
            log.warning(
                "Redis Cluster: the slot map could not be read again: %s", describe_fault(exc)
            )

    # --- what the topology is, and whether it serves ----------------------------------------
    def describe(self) -> str:
        return self.settings.describe()

    def primaries(self) -> list[redis.Redis]:
        """A client per primary: the cluster's masters, or the one server (for walks)."""
        client = self.client()
        if self.is_cluster:
            return [client.get_redis_connection(node) for node in client.get_primaries()]
        return [client]

    def by_node(self, keys: Sequence[str]) -> list[tuple[redis.Redis, list[str]]]:
        """``keys`` grouped by the node that owns each one's slot, with a client of that
        node: for walks that read many small keys (the checker), one pipeline per node."""
        client = self.client()
        if not self.is_cluster:
            return [(client, list(keys))]
        groups: dict[str, tuple[redis.Redis, list[str]]] = {}
        for key in keys:
            node = client.get_node_from_key(key)
            entry = groups.setdefault(node.name, (client.get_redis_connection(node), []))
            entry[1].append(key)
        return list(groups.values())

    def health(self) -> list[str]:
        """Why the topology does not serve, one reason a line, each starting ``redis
        unreachable:`` or ``redis:``; empty when it serves."""
        try:
            if self.settings.mode == "cluster":
                reasons = self._cluster_health()
            elif self.settings.mode == "sentinel":
                reasons = self._sentinel_health()
            else:
                self.client().ping()
                reasons = []
        except (redis.RedisError, RedisClusterException) as exc:
            kind = (
                "unreachable" if isinstance(exc, RedisConnectionError | RedisTimeoutError) else ""
            )
            head = f"redis {kind}".rstrip()
            return [f"{head}: {self.describe()}: {describe_fault(exc)}"]
        return [f"redis: {reason}" for reason in reasons]

    def _cluster_health(self) -> list[str]:
        client = self.client()
        info = client.cluster_info(target_nodes=RedisCluster.RANDOM)
        state = str(info.get("cluster_state", "unknown"))
        served = int(info.get("cluster_slots_ok", 0))
        reasons = []
        if state != "ok":
            reasons.append(f"Redis Cluster state is {state!r}")
        if served < CLUSTER_SLOTS:
            reasons.append(f"Redis Cluster serves {served} of {CLUSTER_SLOTS} slots")
        for node in client.get_primaries():
            try:
                client.get_redis_connection(node).ping()
            except redis.RedisError as exc:
                reasons.append(f"Redis Cluster primary {node.name}: {describe_fault(exc)}")
        return reasons

    def _sentinel_health(self) -> list[str]:
        self.client()
        host, port = self._discover_master()
        master = self.client()
        role = master.execute_command("ROLE")
        if not role or role[0] != "master":
            return [f"Sentinel names {host}:{port} as master, but it answers as {role[0]!r}"]
        return []

    def _discover_master(self) -> tuple[str, int]:
        sentinel: Any = self._sentinel  # built by client() in Sentinel mode
        host, port = sentinel.discover_master(self.settings.sentinel_master)
        return str(host), int(port)

    def master_address(self) -> str | None:
        """Where writes go now: the Sentinel master or the standalone server (None for a
        cluster, whose writes go to the slot's owner)."""
        if self.settings.mode == "sentinel":
            self.client()
            host, port = self._discover_master()
            return f"{host}:{port}"
        if self.settings.mode == "standalone":
            kwargs = self.client().connection_pool.connection_kwargs
            return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
        return None


def _node(host: str, port: int) -> ClusterNode:
    node: ClusterNode = ClusterNode(host, port)  # type: ignore[no-untyped-call]
    return node


def _fresh(conn: Any) -> None:
    """A kept connection the server closed meanwhile (Redis's idle ``timeout``, a restart,
    CLIENT KILL), or that holds unread input, is closed here, so the command goes out on a
    new one (redis-py reconnects on send) instead of failing."""
    try:
        if conn.can_read():
            conn.disconnect()
    except (RedisConnectionError, OSError):
        conn.disconnect()


def _send(conn: Any, command: Sequence[Any]) -> Any:
    conn.send_command(*command)
    return conn.read_response()
