"""Settings of the keep-alive worker (``broker/server/``) that gunicorn has no setting for.

Read by the worker in each process after the fork, and checked once in the master by
``config/gunicorn.conf.py`` (a bad value stops gunicorn with one line naming it). Like the
rest of ``config/``, ``ServerSettings.from_env`` reads only what it is given.

``BROKER_WORKER_THREADS``: threads per worker for the requests the application says may
wait on an outbound call (a JWKS fetch, upstream Cognito; ``broker.server.offload``); 0
serves every request on the worker's loop, as the worker did before it had threads.

``BROKER_PARTIAL_REQUESTS_PER_ADDRESS``: how many of one worker's connections one source
address may hold with a request still arriving (its head or body incomplete). Past it the
address's connection whose request has been arriving longest is closed. The default is a
tenth of the worker's connections (``BROKER_WORKER_CONNECTIONS``, gunicorn's
``worker_connections``), so that one address trickling partial requests cannot fill a
worker; ``off`` removes the bound (behind a proxy that does not buffer requests, every
connection comes from the proxy's address).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from config.env import is_loopback, read_int, text
from config.errors import ConfigError

DEFAULT_THREADS: Final = 16
MAX_THREADS: Final = 256
DEFAULT_CONNECTIONS: Final = 1000  # gunicorn's worker_connections
MAX_CONNECTIONS: Final = 100_000
#: The default bound per address: this share of a worker's connections.
DEFAULT_PARTIAL_SHARE: Final = 10


@dataclass(frozen=True)
class ServerSettings:
    threads: int = DEFAULT_THREADS
    #: None: no bound.
    partial_per_address: int | None = DEFAULT_CONNECTIONS // DEFAULT_PARTIAL_SHARE

    @classmethod
    def from_env(cls, environ: Mapping[str, str], connections: int) -> ServerSettings:
        """``connections``: the worker's ``worker_connections`` (the default bound is a
        share of it, and no bound may exceed it)."""
        return cls(
            threads=read_int(
                environ, "BROKER_WORKER_THREADS", DEFAULT_THREADS, low=0, high=MAX_THREADS
            ),
            partial_per_address=_partial(environ, connections),
        )


def default_partial_per_address(connections: int) -> int:
    return max(1, connections // DEFAULT_PARTIAL_SHARE)


def _partial(environ: Mapping[str, str], connections: int) -> int | None:
    name = "BROKER_PARTIAL_REQUESTS_PER_ADDRESS"
    if text(environ, name).lower() == "off":
        return None
    invalid = "{name} must be a whole number of connections, or off, got {raw!r}"
    return read_int(
        environ,
        name,
        default_partial_per_address(connections),
        low=1,
        high=max(1, connections),
        invalid=invalid,
    )


DEFAULT_BIND: Final = "127.0.0.1:8000"
LOOPBACK_NAMES: Final = ("localhost",)  # hosts that are loopback by name


@dataclass(frozen=True)
class Bind:
    """``BROKER_BIND``, read by one rule for gunicorn (what it binds) and for the app (is
    it loopback, what issuer does it imply): ``HOST:PORT`` (an IPv6 host in brackets, port
    1-65535) or ``unix:PATH``.

    A unix socket is not loopback: it is how a reverse proxy on the same machine publishes
    a service, so the development defaults (loopback only) stay off on one."""

    address: str  # as given, what gunicorn binds
    host: str  # the host without brackets; "unix" for a unix socket

    @property
    def loopback(self) -> bool:
        return not self.unix and is_loopback(self.host, LOOPBACK_NAMES)

    @property
    def unix(self) -> bool:
        return self.address.startswith("unix:")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Bind:
        raw = environ.get("BROKER_BIND", "").strip() or DEFAULT_BIND
        if raw.startswith("unix://"):
            raise ConfigError(
                f"BROKER_BIND={raw!r}: write a unix socket as unix:/absolute/path (gunicorn "
                "reads unix:// as a relative path)"
            )
        if raw.startswith("unix:"):
            if not raw[len("unix:") :].strip():
                raise ConfigError(f"BROKER_BIND must be HOST:PORT, got {raw!r} (or unix:PATH)")
            return cls(raw, "unix")
        host, sep, port = raw.removeprefix("tcp://").rpartition(":")  # gunicorn's tcp://
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"BROKER_BIND must be HOST:PORT, got {raw!r} (or unix:PATH)")
        if ":" in host and not (host.startswith("[") and host.endswith("]")):
            raise ConfigError(
                f"BROKER_BIND={raw!r}: an IPv6 host goes in brackets, e.g. [::1]:8000"
            )
        return cls(raw, host.strip("[]"))
