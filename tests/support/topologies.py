"""Real Redis topologies for tests, on free loopback ports: a Redis Cluster (3 masters and
3 replicas, made by ``redis-cli --cluster create``) and a Sentinel set (1 master, 2
replicas, 3 sentinels started with ``redis-server --sentinel``).

Each is a :class:`~support.processes.ManagedProcess` made of :class:`RedisServer` nodes, so
every process is a child of the test run that dies with it and is stopped by PID. Each has
what a test needs to point a broker at it (``env()``: the REDIS_* variables) and to look at
its data (``client()``: a redis-py client of the right kind, decoding to str).

The Sentinel set's replicas are chained, master -> replica 1 -> replica 2: WAIT on the
master counts its direct replicas only, so with ``REDIS_WAIT_REPLICAS=1`` the one replica
that confirms is the one Sentinel can promote (it sees only the master's direct replicas),
which is the setup docs/scaling.md names as safe for one confirmed replica.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, Self

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

from broker.store.connection import RedisConnector
from config.redis import RedisSettings
from support.processes import (
    REDIS_DEFAULT_CONFIG,
    REDIS_START_TIMEOUT,
    STOP_TIMEOUT,
    ManagedProcess,
    RedisServer,
    end_process,
    free_port,
    spawn,
    wait_until,
)

CLUSTER_NODE_TIMEOUT_MS = 1500
SENTINEL_DOWN_AFTER_MS = 1000
SENTINEL_FAILOVER_TIMEOUT_MS = 4000
MASTER_NAME = "brokermaster"
READY_TIMEOUT = 30.0


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.RedisError, OSError) as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"{what}: not after {timeout:.0f} s (last error: {last!r})")


class Topology(Protocol):
    topology: str

    def env(self) -> dict[str, str]: ...
    def client(self) -> Any: ...
    def server_for(self, key: str) -> RedisServer: ...
    def describe(self) -> str: ...


def connector_for(topology: Topology) -> RedisConnector:
    """The broker's own connector to ``topology`` (as a broker with ``env()`` builds it)."""
    return RedisConnector(RedisSettings.from_env({**topology.env(), "BROKER_REDIS_TIMEOUT": "5"}))


class StandaloneRedis:
    """The session's one redis-server, in the shape of the other topologies."""

    topology = "standalone"

    def __init__(self, server: RedisServer) -> None:
        self.server = server

    def env(self) -> dict[str, str]:
        return {"REDIS_URL": self.server.url}

    def client(self) -> redis.Redis:
        return self.server.client()

    def server_for(self, key: str) -> RedisServer:
        return self.server

    def describe(self) -> str:
        return f"redis-server on {self.server.port}"


def free_cluster_port() -> int:
    """A free port whose cluster bus port (10,000 higher) is free too and exists."""
    for _ in range(1000):
        port = free_port()
        if port > 55535:
            continue
        with contextlib.closing(socket.socket()) as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise AssertionError("no free port pair for a cluster node")


class RedisClusterServers(ManagedProcess):
    """Six cluster-enabled redis-servers joined into 3 masters with a replica each."""

    topology = "cluster"

    def __init__(self, config: Sequence[str] = REDIS_DEFAULT_CONFIG, masters: int = 3) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="redis-cluster-"))
        self.config = tuple(config)
        self.masters = masters
        self.nodes: list[RedisServer] = []

    def start(self) -> Self:
        for n in range(self.masters * 2):
            node = RedisServer(
                (
                    *self.config,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    str(CLUSTER_NODE_TIMEOUT_MS),
                    "--cluster-replica-validity-factor",
                    "0",
                    "--cluster-require-full-coverage",
                    "no",
                ),  # fmt: skip
                dir=self.dir / f"node-{n}",
                port=free_cluster_port(),
            )
            self.nodes.append(node.start())
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        created = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],  # fmt: skip
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if created.returncode != 0:
            self.stop()
            raise AssertionError(f"redis-cli --cluster create failed:\n{created.stdout[-2000:]}")
        wait_for(self._healthy, READY_TIMEOUT, "the cluster serving every slot on every node")
        return self

    def _healthy(self) -> bool:
        for node in self.nodes:
            with node.client() as client:
                info = client.cluster("INFO")
                if info.get("cluster_state") != "ok" or int(info["cluster_slots_ok"]) != 16384:
                    return False
        with self.client() as cluster:
            return (
                len(cluster.get_primaries()) == self.masters
                and len(cluster.get_replicas()) == self.masters
            )

    def seeds(self) -> str:
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes[:3])

    def env(self) -> dict[str, str]:
        return {"REDIS_CLUSTER_NODES": self.seeds()}

    def client(self) -> RedisCluster:
        return RedisCluster(
            startup_nodes=[ClusterNode("127.0.0.1", node.port) for node in self.nodes],
            decode_responses=True,
            socket_timeout=5.0,
        )

    def describe(self) -> str:
        return f"Redis Cluster of {len(self.nodes)} nodes"

    def server_for(self, key: str) -> RedisServer:
        """The master serving ``key``'s slot now."""
        return self.primary_of(key)

    def node_at(self, port: int) -> RedisServer:
        (node,) = [n for n in self.nodes if n.port == port]
        return node

    def primary_of(self, key: str) -> RedisServer:
        with self.client() as cluster:
            return self.node_at(int(cluster.get_node_from_key(key).port))

    def replica_of(self, primary: RedisServer) -> RedisServer:
        """A node currently replicating ``primary``."""
        with primary.client() as client:
            replicas = client.info("replication")
        for n in range(int(replicas.get("connected_slaves", 0))):
            port = int(replicas[f"slave{n}"]["port"])
            return self.node_at(port)
        raise AssertionError(f"no replica of the node on {primary.port}")

    def wait_healthy(self, timeout: float = READY_TIMEOUT) -> None:
        """Every slot served again by a live master (after a failover or a kill)."""

        def served() -> bool:
            for node in self.nodes:
                if node.pid is None or node._proc is None or node._proc.poll() is not None:
                    continue
                with node.client() as client:
                    info = client.cluster("INFO")
                    if info.get("cluster_state") != "ok":
                        return False
            return True

        wait_for(served, timeout, "the cluster serving every slot again")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        with contextlib.suppress(OSError):
            _remove(self.dir)


class SentinelServers(ManagedProcess):
    """One master, replica 1 of the master, replica 2 of replica 1, three sentinels."""

    topology = "sentinel"

    def __init__(self, config: Sequence[str] = REDIS_DEFAULT_CONFIG) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="redis-sentinel-"))
        self.config = tuple(config)
        self.data: list[RedisServer] = []
        self.sentinels: list[RedisServer] = []

    def start(self) -> Self:
        master = RedisServer(self.config, dir=self.dir / "data-0").start()
        replica = RedisServer(
            (*self.config, "--replicaof", "127.0.0.1", str(master.port)), dir=self.dir / "data-1"
        ).start()
        chained = RedisServer(
            (*self.config, "--replicaof", "127.0.0.1", str(replica.port)),
            dir=self.dir / "data-2",
        ).start()
        self.data = [master, replica, chained]
        wait_for(lambda: _linked(replica) and _linked(chained), READY_TIMEOUT, "replication up")
        for n in range(3):
            self.sentinels.append(self._sentinel(n, master.port).start())
        wait_for(self._watching, READY_TIMEOUT, "every sentinel watching the master")
        return self

    def _sentinel(self, n: int, master_port: int) -> RedisServer:
        folder = self.dir / f"sentinel-{n}"
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        conf = folder / "sentinel.conf"
        conf.write_text(
            "\n".join(
                [
                    f"port {port}",
                    "bind 127.0.0.1",
                    f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2",
                    f"sentinel down-after-milliseconds {MASTER_NAME} {SENTINEL_DOWN_AFTER_MS}",
                    f"sentinel failover-timeout {MASTER_NAME} {SENTINEL_FAILOVER_TIMEOUT_MS}",
                    f"sentinel parallel-syncs {MASTER_NAME} 1",
                    "",
                ]
            )
        )
        return SentinelProcess(conf, port, folder)

    def _watching(self) -> bool:
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                state = client.sentinel_masters().get(MASTER_NAME)
                if not state or int(state.get("num-other-sentinels", 0)) < 2:
                    return False
        return True

    def env(self) -> dict[str, str]:
        return {
            "REDIS_SENTINELS": ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels),
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
        }

    def master_port(self) -> int:
        with self.sentinels[0].client() as client:
            _, port = client.sentinel_get_master_addr_by_name(MASTER_NAME)
        return int(port)

    def client(self) -> redis.Redis:
        sentinel = Sentinel([("127.0.0.1", s.port) for s in self.sentinels], socket_timeout=5.0)
        master: redis.Redis = sentinel.master_for(
            MASTER_NAME, socket_timeout=5.0, decode_responses=True
        )
        return master

    def describe(self) -> str:
        return f"Sentinel set, master on {self.master_port()}"

    def server_for(self, key: str) -> RedisServer:
        """The master now."""
        port = self.master_port()
        (master,) = [s for s in self.data if s.port == port]
        return master

    def failover(self, timeout: float = READY_TIMEOUT) -> tuple[int, int]:
        """``SENTINEL FAILOVER``; waits until a new master answers as one and the old one
        replicates it. The old and new master ports."""
        old = self.master_port()
        with self.sentinels[0].client() as client:
            client.sentinel_failover(MASTER_NAME)
        wait_for(lambda: self.master_port() != old, timeout, "a new master named")
        new = self.master_port()
        (promoted,) = [s for s in self.data if s.port == new]
        wait_for(lambda: _role(promoted) == "master", timeout, "the new master promoted")
        (demoted,) = [s for s in self.data if s.port == old]
        wait_for(lambda: _role(demoted) == "slave", timeout, "the old master demoted")
        return old, new

    def stop(self) -> None:
        for server in [*self.sentinels, *self.data]:
            server.stop()
        with contextlib.suppress(OSError):
            _remove(self.dir)


class SentinelProcess(RedisServer):
    """``redis-server <sentinel.conf> --sentinel`` (a sentinel rewrites its own config)."""

    def __init__(self, conf: Path, port: int, folder: Path) -> None:
        super().__init__((), dir=folder, port=port)
        self.conf = conf

    def _start_once(self) -> str:
        args = [self.executable, str(self.conf), "--sentinel", "--logfile", ""]
        with self.log_path.open("ab") as log:
            self._proc = spawn(args, log=log)
        return wait_until(self.ping, self._proc, REDIS_START_TIMEOUT)

    def stop(self) -> None:
        if self._proc is not None:
            end_process(self._proc, STOP_TIMEOUT, signal.SIGTERM)


def _linked(replica: RedisServer) -> bool:
    with replica.client() as client:
        return bool(client.info("replication").get("master_link_status") == "up")


def _role(server: RedisServer) -> str:
    with server.client() as client:
        role: Any = client.execute_command("ROLE")
    return str(role[0])


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
