"""Which Redis the broker keeps its data in: standalone, Sentinel or Cluster, and how
durable an acknowledged change must be (contract section 11, docs/scaling.md).

Exactly one topology is chosen by the environment:

- ``REDIS_URL`` (the default, ``redis://127.0.0.1:6379/0``): one Redis server;
- ``REDIS_CLUSTER_NODES=host:port[,host:port...]``: a Redis Cluster, found from these seed
  nodes (database 0 only, as Redis Cluster has no other);
- ``REDIS_SENTINELS=host:port[,...]`` with ``REDIS_SENTINEL_MASTER=<name>``: the master
  Sentinel names, found again after every failover.

``REDIS_PASSWORD`` authenticates to the data nodes of a cluster or a Sentinel set (in
standalone mode the password goes in ``REDIS_URL``); ``REDIS_SENTINEL_PASSWORD`` to the
sentinels themselves. ``REDIS_WAIT_REPLICAS=N`` (default 0) makes every change to an
identity, a login link, a pool or a signing key wait until N replicas confirmed it
(Redis ``WAIT``), for at most ``REDIS_WAIT_TIMEOUT_MS`` (default 1000); a change not
confirmed in time fails the request instead of being acknowledged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import urlsplit

from config.env import BETWEEN_0_AND_60_SECONDS, read_float, read_int, text
from config.errors import ConfigError

Mode = Literal["standalone", "cluster", "sentinel"]

DEFAULT_REDIS_URL: Final = "redis://127.0.0.1:6379/0"
DEFAULT_REDIS_TIMEOUT: Final = 1.0
DEFAULT_WAIT_TIMEOUT_MS: Final = 1000
MAX_WAIT_REPLICAS: Final = 16
MAX_WAIT_TIMEOUT_MS: Final = 60_000
#: The variables that choose a topology, each naming the mode it chooses.
MODE_VARIABLES: Final[Mapping[str, Mode]] = {
    "REDIS_URL": "standalone",
    "REDIS_CLUSTER_NODES": "cluster",
    "REDIS_SENTINELS": "sentinel",
}


@dataclass(frozen=True)
class RedisSettings:
    mode: Mode = "standalone"
    url: str = field(default=DEFAULT_REDIS_URL, repr=False)  # may hold a password
    nodes: tuple[tuple[str, int], ...] = ()  # cluster seeds, or the sentinels
    sentinel_master: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_REDIS_TIMEOUT
    wait_replicas: int = 0
    wait_timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RedisSettings:
        chosen = [name for name in MODE_VARIABLES if text(environ, name)]
        if len(chosen) > 1:
            raise ConfigError(
                f"{' and '.join(chosen)} are set together: choose one Redis topology "
                "(REDIS_URL for one server, REDIS_CLUSTER_NODES for a cluster, "
                "REDIS_SENTINELS with REDIS_SENTINEL_MASTER for Sentinel)"
            )
        mode: Mode = MODE_VARIABLES[chosen[0]] if chosen else "standalone"
        url = environ.get("REDIS_URL", DEFAULT_REDIS_URL).strip()  # set but blank: refused
        if mode == "standalone" and urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")
        nodes: tuple[tuple[str, int], ...] = ()
        master = text(environ, "REDIS_SENTINEL_MASTER") or None
        if mode == "cluster":
            nodes = parse_nodes(environ, "REDIS_CLUSTER_NODES")
        elif mode == "sentinel":
            nodes = parse_nodes(environ, "REDIS_SENTINELS")
            if master is None:
                raise ConfigError(
                    "REDIS_SENTINEL_MASTER is required with REDIS_SENTINELS (the name the "
                    "sentinels monitor the master under, e.g. mymaster)"
                )
        if master is not None and mode != "sentinel":
            raise ConfigError("REDIS_SENTINEL_MASTER is set without REDIS_SENTINELS")
        password = environ.get("REDIS_PASSWORD") or None
        if password is not None and mode == "standalone":
            raise ConfigError(
                "REDIS_PASSWORD is for a cluster or a Sentinel set; with REDIS_URL put the "
                "password in the URL (redis://:PASSWORD@host:port/0)"
            )
        sentinel_password = environ.get("REDIS_SENTINEL_PASSWORD") or None
        if sentinel_password is not None and mode != "sentinel":
            raise ConfigError("REDIS_SENTINEL_PASSWORD is set without REDIS_SENTINELS")
        return cls(
            mode=mode,
            url=url,
            nodes=nodes,
            sentinel_master=master,
            password=password,
            sentinel_password=sentinel_password,
            timeout=read_float(
                environ,
                "BROKER_REDIS_TIMEOUT",
                DEFAULT_REDIS_TIMEOUT,
                high=60,
                bounds=BETWEEN_0_AND_60_SECONDS,
            ),
            wait_replicas=read_int(
                environ, "REDIS_WAIT_REPLICAS", 0, low=0, high=MAX_WAIT_REPLICAS
            ),
            wait_timeout_ms=read_int(
                environ,
                "REDIS_WAIT_TIMEOUT_MS",
                DEFAULT_WAIT_TIMEOUT_MS,
                low=1,
                high=MAX_WAIT_TIMEOUT_MS,
            ),
        )

    def describe(self) -> str:
        """The Redis in a log line: where it is, never a password."""
        if self.mode == "cluster":
            return "Redis Cluster (seeds " + ", ".join(f"{h}:{p}" for h, p in self.nodes) + ")"
        if self.mode == "sentinel":
            sentinels = ", ".join(f"{h}:{p}" for h, p in self.nodes)
            return f"Redis Sentinel master {self.sentinel_master!r} (sentinels {sentinels})"
        return "Redis " + redacted_url(self.url)


def redacted_url(url: str) -> str:
    """``redis://host:port/db`` without its user and password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    host = parts.hostname or "localhost"
    port = parts.port or 6379
    where = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{where}:{port}{parts.path or '/0'}"


def parse_nodes(environ: Mapping[str, str], name: str) -> tuple[tuple[str, int], ...]:
    """``host:port[,host:port...]``, each port 1..65535; IPv6 hosts in brackets."""
    raw = text(environ, name)
    nodes: list[tuple[str, int]] = []
    for item in raw.split(","):
        entry = item.strip()
        host, sep, port = entry.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(
                f"{name} must be comma-separated host:port pairs, got {entry or item!r}"
            )
        nodes.append((host, int(port)))
    if len(set(nodes)) != len(nodes):
        raise ConfigError(f"{name} names the same node twice")
    return tuple(nodes)
