"""Gunicorn settings for Identity Broker: production defaults, each overridable from the env.

Loaded with ``gunicorn -c config/gunicorn.conf.py wsgi:app``. Gunicorn executes this file in
the master before it forks, so reading the environment here is the point of the file; the
application's own settings are read by ``config.settings.Settings.from_env`` in each worker.

=========================  ====================================  ============================
variable                   gunicorn setting                      default
=========================  ====================================  ============================
BROKER_BIND                bind                                  127.0.0.1:8000
BROKER_WORKERS             workers                               cores + 1, at least 2
BROKER_WORKER_CLASS        worker_class: keepalive or sync       keepalive
BROKER_WORKER_TIMEOUT      timeout (s)                           30
BROKER_GRACEFUL_TIMEOUT    graceful_timeout (s)                  20
BROKER_KEEPALIVE           keepalive (s)                         5
BROKER_WORKER_CONNECTIONS  worker_connections (per worker)       1000
BROKER_MAX_REQUESTS        max_requests (+10 % jitter when set)  0 (never recycle workers)
BROKER_ACCESS_LOG          accesslog "-" (stdout) or off         on
BROKER_CONTROL_SOCKET      control_socket (gunicornc), a path    none: disabled
=========================  ====================================  ============================

A bad value stops gunicorn before it binds, with one line naming the variable. The
application's settings (``config.settings``) are checked the same way in the master by the
``on_starting`` hook below, so a bad BROKER_CREDENTIALS or REDIS_URL is one clear line before
any socket is opened, instead of a traceback from every worker.

``preload_app`` stays False: each worker imports the app after the fork and so builds its own
Redis connection pool and loads the signing key itself; no socket is shared across a fork.
``forwarded_allow_ips`` is left at gunicorn's default (trust X-Forwarded-* from 127.0.0.1
only; gunicorn reads FORWARDED_ALLOW_IPS itself); it applies to the sync worker only: the
keep-alive worker reads no proxy header (the broker's URLs come from BROKER_ISSUER, not from
the request), nor does it run gunicorn's pre_request/post_request hooks or serve TLS.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, NoReturn

# Gunicorn puts its working directory (the project root) on sys.path before it loads this
# file, as it must for ``logger_class`` and ``wsgi:app`` below.
from config.env import read_choice, read_int
from config.errors import ConfigError
from config.server import DEFAULT_CONNECTIONS, MAX_CONNECTIONS, Bind

MAX_WORKERS = 256
MAX_SECONDS = 3600


def _fail(message: str) -> NoReturn:
    # SystemExit is not an Exception, so gunicorn's config loader lets it through: the
    # process ends with this line and status 2 instead of a traceback.
    sys.stderr.write(f"identity-broker: configuration error: {message}\n")
    raise SystemExit(2)


def _int_env(name: str, default: int, minimum: int, maximum: int) -> int:
    try:
        return read_int(os.environ, name, default, low=minimum, high=maximum)
    except ConfigError as exc:
        _fail(str(exc))


def _default_workers() -> int:
    """One more than the cores keeps them busy while a worker waits for Redis; with one
    worker per core instead, the keep-alive worker measured no better (docs/performance.md)."""
    try:
        cores = len(os.sched_getaffinity(0))  # honours CPU pinning (containers, taskset)
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(2, cores + 1)


def _bind() -> str:
    try:
        return Bind.from_env(os.environ).address  # the app reads it by the same rule
    except ConfigError as exc:
        _fail(str(exc))


def _control_socket() -> str | None:
    raw = os.environ.get("BROKER_CONTROL_SOCKET", "").strip()
    if raw and not os.path.isabs(raw):
        _fail(f"BROKER_CONTROL_SOCKET must be an absolute path, got {raw!r}")
    return raw or None


WORKER_CLASSES = {"keepalive": "broker.server.worker.KeepAliveWorker", "sync": "sync"}


def _worker_class() -> str:
    invalid = "{name} must be 'keepalive' or 'sync', got {raw!r}"
    try:
        choice = read_choice(
            os.environ, "BROKER_WORKER_CLASS", tuple(WORKER_CLASSES), "keepalive", invalid
        )
    except ConfigError as exc:
        _fail(str(exc))
    return WORKER_CLASSES[choice]


def _access_log() -> str | None:
    invalid = "{name} must be 'on' or 'off', got {raw!r}"
    try:
        switch = read_choice(os.environ, "BROKER_ACCESS_LOG", ("on", "off"), "on", invalid)
    except ConfigError as exc:
        _fail(str(exc))
    return "-" if switch == "on" else None


bind = [_bind()]
# keepalive: broker.server.worker.KeepAliveWorker (persistent connections, llhttp parsing;
# docs/performance.md). sync: gunicorn's own sync worker, one connection per request.
worker_class = _worker_class()
workers = _int_env("BROKER_WORKERS", _default_workers(), 1, MAX_WORKERS)
timeout = _int_env("BROKER_WORKER_TIMEOUT", 30, 1, MAX_SECONDS)
graceful_timeout = _int_env("BROKER_GRACEFUL_TIMEOUT", 20, 0, MAX_SECONDS)
keepalive = _int_env("BROKER_KEEPALIVE", 5, 0, MAX_SECONDS)
# The connections one keep-alive worker holds (idle, arriving or being answered); the sync
# worker serves one at a time whatever this says.
worker_connections = _int_env("BROKER_WORKER_CONNECTIONS", DEFAULT_CONNECTIONS, 1, MAX_CONNECTIONS)
max_requests = _int_env("BROKER_MAX_REQUESTS", 0, 0, 10_000_000)
max_requests_jitter = max(1, max_requests // 10) if max_requests else 0
preload_app = False
proc_name = "identity-broker"

# Gunicorn >= 25.1 opens a control socket (for gunicornc: change the worker count, reload,
# stop) at $HOME/.gunicorn/gunicorn.ctl unless told otherwise: one path shared by every
# instance run by the same user (tests start several), and a control surface that production
# does not need. Off unless BROKER_CONTROL_SOCKET names where to put it.
_control = _control_socket()
control_socket_disable = _control is None
if _control is not None:
    control_socket = _control

accesslog = _access_log()
errorlog = "-"
# JSON lines (broker/observability/gunicorn_logging.py). The access line holds method, path
# without the query string, status, bytes, milliseconds and the request id the app returns; never a
# request header (Authorization carries the SigV4 signature) nor the query string.
logger_class = "broker.observability.gunicorn_logging.JsonLogger"


def on_starting(server: object) -> None:
    """Gunicorn hook, in the master before it binds: fail fast on bad app settings.

    Only the pure settings function runs here; the app itself (and its Redis pool) is still
    built in each worker after the fork (preload_app is False).
    """
    from config.server import ServerSettings
    from config.settings import Settings

    try:
        settings = Settings.from_env(os.environ)
        # the connections as gunicorn will run them (GUNICORN_CMD_ARGS may override ours)
        cfg = getattr(server, "cfg", None)
        connections = getattr(cfg, "worker_connections", DEFAULT_CONNECTIONS)
        ServerSettings.from_env(os.environ, int(connections))
    except ConfigError as exc:
        _fail(str(exc))
    bound = list(getattr(cfg, "bind", bind))
    if bound != bind:  # -b / --bind / GUNICORN_CMD_ARGS: the app would judge the wrong address
        _fail(
            f"gunicorn was told to bind {', '.join(bound)} (its -b/--bind option or "
            f"GUNICORN_CMD_ARGS), but the broker decides loopback-only defaults and its issuer "
            f"from BROKER_BIND={bind[0]}: set BROKER_BIND instead"
        )
    if not _inherits_sockets():
        _check_free(bind[0])
    log = getattr(server, "log", None)
    for warning in settings.warnings():  # once here; the workers' apps do not repeat them
        if log is not None:
            log.warning("%s", warning)
    os.environ["BROKER_START_WARNINGS_LOGGED"] = "1"  # read by wsgi.py in the workers
    _prepare_metrics_dir()


def _inherits_sockets() -> bool:
    """A new master of an in-place upgrade (USR2: GUNICORN_FD) or one systemd hands the
    listening socket to (LISTEN_FDS) binds nothing itself: the address is in use by design."""
    return bool(os.environ.get("GUNICORN_FD") or os.environ.get("LISTEN_FDS"))


def _check_free(address: str) -> None:
    """A port another process listens on stops gunicorn with one line naming the fix,
    before gunicorn's own five attempts (ten ERROR lines over 5 s). A test bind, closed at
    once; gunicorn binds for real right after."""
    import errno
    import socket

    if address.startswith("unix:"):
        _check_unix_free(address[len("unix:") :])
        return
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)
    except OSError:
        return  # gunicorn reports a host it cannot resolve itself
    family, _, _, _, sockaddr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                _fail(
                    f"BROKER_BIND={address}: the address is already in use (another broker "
                    f"or program listens there; `ss -ltnp 'sport = :{port}'` names it): "
                    "stop it, or set BROKER_BIND to a free port"
                )


def _check_unix_free(path: str) -> None:
    """gunicorn removes a socket file it finds at its path, even one a running process
    serves: a second broker would take the first one's clients. One that answers stops
    this start instead (a stale file, nobody listening, is left for gunicorn to replace)."""
    import errno
    import socket

    if not os.path.exists(path):
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError as exc:
            if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                return  # a stale file: nobody listens (gunicorn replaces it)
            # busy (full backlog, a timeout) or not ours to probe: someone holds it
    _fail(
        f"BROKER_BIND=unix:{path}: a process already listens on this socket (another "
        "broker?): stop it, or set BROKER_BIND to another path"
    )


def _prepare_metrics_dir() -> None:
    """Prometheus multiprocess mode: every worker writes its samples to files in one
    directory, emptied at each start so counts begin at zero. An operator may name it with
    PROMETHEUS_MULTIPROC_DIR; otherwise a private temporary directory is made."""
    import tempfile

    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if path:
        if os.path.isdir(path):
            for name in os.listdir(path):
                if name.endswith(".db"):
                    os.remove(os.path.join(path, name))
        else:
            os.makedirs(path, mode=0o700)
    else:
        path = tempfile.mkdtemp(prefix="broker-metrics-")
        _made_dirs.append(path)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path


_made_dirs: list[str] = []


def on_exit(server: object) -> None:
    """In the master only (workers must not remove what the others still write to)."""
    import shutil

    for path in _made_dirs:
        shutil.rmtree(path, ignore_errors=True)


def child_exit(server: object, worker: Any) -> None:
    """A worker left: its live gauges stop counting (counters stay, as they must)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


POST_WORKER_INIT = "broker.app.banner:post_worker_init"
STARTED_AT = time.time()  # read in the master: the workers, its forks, see the same value


def post_worker_init(worker: Any) -> None:
    """Gunicorn hook, in each worker once its app is built: the app's own hook (the ready
    line), named by module path like worker_class and logger_class above, so that config/
    imports nothing from broker/."""
    import importlib

    module, _, name = POST_WORKER_INIT.partition(":")
    getattr(importlib.import_module(module), name)(worker, STARTED_AT)
