"""Real processes for tests: a redis-server and the broker under gunicorn, on free ports.

Both are started as children of the test process in their own session (a Ctrl-C in the
terminal reaches pytest, whose teardown stops them) with a parent-death signal, and are
registered for an ``atexit`` sweep, so nothing outlives the test run even when a test fails,
a fixture errors, or pytest itself is killed.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NamedTuple, Self

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

REPO_ROOT = Path(__file__).resolve().parents[2]

REDIS_DEFAULT_CONFIG: tuple[str, ...] = ("--save", "", "--appendonly", "no")
"""No persistence at all: the fastest server, for tests that do not restart it."""

REDIS_DURABLE_CONFIG: tuple[str, ...] = (
    "--save",
    "",
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
)
"""Every write fsynced to the append-only file before the reply: survives kill()."""

REDIS_START_TIMEOUT = 10.0
BROKER_START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 40

_PR_SET_PDEATHSIG = 1
_live: set[subprocess.Popen[bytes]] = set()

#: Set by tests/conftest.py when the run leaves out ``slow`` tests (``scripts/test
#: --fast``): a test starting gunicorn or moto_server there lacks its ``slow`` mark.
FAST_LANE = False


def refuse_in_fast_lane(what: str) -> None:
    if FAST_LANE:
        raise RuntimeError(
            f"this test starts {what} but runs in the fast lane: mark it "
            "@pytest.mark.slow (or its module: pytestmark = pytest.mark.slow)"
        )


class ManagedProcess:
    """``with server:`` starts it and always stops it, whatever the block raised."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ProcessStartError(RuntimeError):
    """A server did not come up; the message carries the tail of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picked it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pid_alive(pid: int) -> bool:
    """True while /proc shows the pid and it is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def child_pids(parent: int) -> list[int]:
    """Pids whose parent is ``parent``, read from /proc/*/stat."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == parent and fields[0] != "Z":
            children.append(int(entry.name))
    return sorted(children)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask the kernel for SIGTERM when the test
    # process dies, so a killed pytest leaves no server behind. The kernel ties this to the
    # THREAD that forked: start servers from the main thread (or a thread that outlives
    # them), never from a short-lived worker thread, or they are stopped when it ends.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def spawn(
    args: Sequence[str],
    *,
    log: IO[bytes],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    cpus: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``args`` in its own session, output to ``log``; under ``taskset -c cpus`` when
    given (the benchmark pins servers and load generator to different cores)."""
    argv = list(args) if cpus is None else ["taskset", "-c", cpus, *args]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # tests start processes from the main thread only
    )
    _live.add(proc)
    return proc


def end_process(
    proc: subprocess.Popen[bytes], timeout: float, first: signal.Signals, *, group: bool = False
) -> None:
    """Send ``first``, wait up to ``timeout``, then SIGKILL; always reaps the child.

    ``group``: signal the child's whole process group (``spawn`` makes every child lead its
    own), so what it forked goes too, and SIGKILL what is left of the group at the end."""

    def send(sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)

    if proc.poll() is None:
        send(first)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            send(signal.SIGKILL)
            proc.wait()
        if group:
            send(signal.SIGKILL)  # children the leader left behind still hold its group id
    _live.discard(proc)


@atexit.register
def stop_all() -> None:
    """End every process started here that still runs (and what it forked): the sweep at
    exit, and a harness's last resort."""
    for proc in list(_live):
        end_process(proc, 2.0, signal.SIGTERM, group=True)


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], timeout: float) -> str:
    """Poll ``ready`` until true; return '' then, else why it never was."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with status {proc.returncode}"
        if ready():
            return ""
        time.sleep(0.05)
    return f"not ready after {timeout:.0f} s"


class RedisServer(ManagedProcess):
    """A ``redis-server`` on 127.0.0.1 and a free port, in its own directory.

    ``config`` is extra redis-server arguments (default: no persistence). Pass
    ``REDIS_DURABLE_CONFIG`` and a ``dir`` to test crash recovery with ``kill()`` and
    ``restart()``. A temporary directory made here is removed by ``stop()``.
    """

    def __init__(
        self,
        config: Sequence[str] = REDIS_DEFAULT_CONFIG,
        *,
        dir: str | Path | None = None,
        port: int | None = None,
        executable: str = "redis-server",
        cpus: str | None = None,
    ) -> None:
        self.config = tuple(config)
        self._own_dir = dir is None
        self.dir = Path(dir) if dir is not None else Path(tempfile.mkdtemp(prefix="redis-test-"))
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self.executable = executable
        self.cpus = cpus
        self.log_path = self.dir / "redis-server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def client(self, **kwargs: object) -> redis.Redis:
        """A new client (decode_responses=True): close it, or use it as a context manager;
        one left open has its connections closed after the test (``support.redis_clients``,
        which tracks every ``redis.Redis`` of the test process)."""
        options: dict[str, object] = {"decode_responses": True, "socket_timeout": 5.0}
        options.update(kwargs)
        return redis.Redis(host="127.0.0.1", port=self.port, db=0, **options)  # type: ignore[arg-type]

    def ping(self) -> bool:
        """One PING, no retries (redis-py would otherwise back off for seconds)."""
        try:
            with redis.Redis(
                host="127.0.0.1",
                port=self.port,
                socket_timeout=1.0,
                socket_connect_timeout=1.0,
                retry=Retry(NoBackoff(), 0),
            ) as conn:
                return bool(conn.ping())
        except redis.RedisError:
            return False

    def _shutdown_nosave(self) -> None:
        # Raw RESP on a socket: redis-py treats the closed connection as an error to retry.
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), timeout=2.0) as sock,
        ):
            sock.sendall(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
            while sock.recv(4096):
                pass  # the server closes the connection when it goes

    def start(self) -> Self:
        if self._proc is not None and self._proc.poll() is None:
            raise RuntimeError(f"redis-server already running (pid {self._proc.pid})")
        if shutil.which(self.executable) is None:
            raise ProcessStartError(f"{self.executable} is not on PATH (scripts/test installs it)")
        self.dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            reason = self._start_once()
            if not reason:
                return self
            in_use = "Address already in use" in log_tail(self.log_path, 5)
            if in_use and not self._fixed_port and attempt < 2:
                self.port = free_port()  # lost the race for the port: take another
                continue
            break
        tail = log_tail(self.log_path)
        self.kill()
        raise ProcessStartError(f"redis-server on port {self.port} {reason}; log:\n{tail}")

    def _start_once(self) -> str:
        args = [
            self.executable,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.dir),
            "--daemonize", "no",
            "--logfile", "",
            *self.config,
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self._proc = spawn(args, log=log, cpus=self.cpus)
        return wait_until(self.ping, self._proc, REDIS_START_TIMEOUT)

    def kill(self) -> None:
        """SIGKILL, like a crash: no shutdown save, no final fsync. The dir is kept."""
        if self._proc is not None:
            end_process(self._proc, STOP_TIMEOUT, signal.SIGKILL)

    def restart(self) -> Self:
        """Start again on the same port and dir (after kill(), or a graceful stop first)."""
        if self._proc is not None and self._proc.poll() is None:
            end_process(self._proc, STOP_TIMEOUT, signal.SIGTERM)
        self._fixed_port = True
        return self.start()

    def stop(self) -> None:
        """SHUTDOWN NOSAVE, falling back to SIGTERM then SIGKILL; removes a temporary dir."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            self._shutdown_nosave()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(STOP_TIMEOUT)
        if proc is not None:
            end_process(proc, STOP_TIMEOUT, signal.SIGTERM)
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def http_ok(url: str) -> bool:
    """``GET url`` answers 200 within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def broker_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parent's environment without BROKER_*, REDIS_* and AWS_* (no leaking settings)."""
    source = os.environ if base is None else base
    return {
        key: value
        for key, value in source.items()
        if not key.startswith(("BROKER_", "AWS_", "REDIS_"))
    }


class BrokerServer(ManagedProcess):
    """The broker under gunicorn, as ``scripts/run`` starts it, on a free loopback port.

    ``credentials`` maps access key ids to secrets (BROKER_CREDENTIALS); the first pair is
    ``access_key_id`` / ``secret_access_key``; ``None`` sets no credentials at all (the
    development pair a loopback broker falls back to). The Redis is ``redis_url``
    (standalone) or ``redis_env``, a topology's REDIS_* variables. ``workers`` is
    BROKER_WORKERS (``None``: gunicorn.conf.py's own choice); ``issuer`` BROKER_ISSUER
    (default: the broker's URL; ``None``: unset, derived from the bind). ``env`` overrides
    or adds variables. ``root`` serves another checkout of the project (a before/after
    comparison): gunicorn runs there, with it first on PYTHONPATH (this venv has this
    checkout installed). ``cpus`` pins gunicorn and its workers (``taskset -c``).
    """

    def __init__(
        self,
        *,
        redis_url: str = "",
        credentials: Mapping[str, str] | None,
        redis_env: Mapping[str, str] | None = None,
        workers: int | None = 3,
        env: Mapping[str, str] | None = None,
        log_path: str | Path | None = None,
        venv: str | Path | None = None,
        start_timeout: float = BROKER_START_TIMEOUT,
        root: Path = REPO_ROOT,
        issuer: str | None = "",
        cpus: str | None = None,
    ) -> None:
        if credentials is not None and not credentials:
            raise ValueError("BrokerServer: credentials None (the development pair) or pairs")
        if bool(redis_url) == bool(redis_env):
            raise ValueError("BrokerServer needs redis_url or redis_env (a topology's REDIS_*)")
        self.redis_url = redis_url
        self.redis_env = dict(redis_env) if redis_env else {"REDIS_URL": redis_url}
        self.credentials = dict(credentials) if credentials is not None else None
        self.workers = workers
        self.issuer = issuer
        self.cpus = cpus
        self.extra_env = dict(env or {})
        self._own_log = log_path is None
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="broker-", suffix=".log")
            os.close(fd)
            log_path = name
        self.log_path = Path(log_path)
        self.gunicorn = Path(venv or sys.prefix) / "bin" / "gunicorn"
        self.start_timeout = start_timeout
        self.root = root
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_key_id(self) -> str:
        if self.credentials is None:
            raise RuntimeError("this broker runs on the development pair (credentials=None)")
        return next(iter(self.credentials))

    @property
    def secret_access_key(self) -> str:
        if self.credentials is None:
            raise RuntimeError("this broker runs on the development pair (credentials=None)")
        return self.credentials[self.access_key_id]

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("the broker is not started")
        return self._proc.pid

    def env(self) -> dict[str, str]:
        env = broker_env()
        env.update({"BROKER_BIND": f"127.0.0.1:{self.port}", **self.redis_env})
        if self.issuer is not None:
            env["BROKER_ISSUER"] = self.issuer or self.url
        if self.credentials is not None:
            pairs = ",".join(f"{k}:{v}" for k, v in self.credentials.items())
            env["BROKER_CREDENTIALS"] = pairs
        if self.workers is not None:
            env["BROKER_WORKERS"] = str(self.workers)
        env["PYTHONUNBUFFERED"] = "1"
        if self.root != REPO_ROOT:
            env["PYTHONPATH"] = str(self.root)
        env.update(self.extra_env)
        return env

    def worker_pids(self) -> list[int]:
        """The gunicorn workers: children of the master, from /proc."""
        return child_pids(self.pid)

    def ready(self) -> bool:
        return http_ok(f"{self.url}/readyz")

    def start(self) -> Self:
        if self._proc is not None and self._proc.poll() is None:
            raise RuntimeError(f"the broker is already running (pid {self._proc.pid})")
        refuse_in_fast_lane("gunicorn")
        if not self.gunicorn.exists():
            raise ProcessStartError(f"{self.gunicorn} not found (run scripts/test to set up .venv)")
        for attempt in range(3):
            with self.log_path.open("ab") as log:
                log.write(f"--- start on port {self.port}\n".encode())
                log.flush()
                args = [str(self.gunicorn), "-c", "config/gunicorn.conf.py", "wsgi:app"]
                self._proc = spawn(args, log=log, env=self.env(), cwd=self.root, cpus=self.cpus)
            reason = wait_until(self.ready, self._proc, self.start_timeout)
            if not reason:
                return self
            in_use = "in use" in log_tail(self.log_path, 10)
            self._kill_all(grace=2.0)
            if in_use and attempt < 2:
                self.port = free_port()
                continue
            break
        raise ProcessStartError(
            f"gunicorn on {self.url} {reason} (GET /readyz never answered 200); "
            f"log {self.log_path}:\n{log_tail(self.log_path)}"
        )

    def wait_for_workers(self, settle: float = 1.0, timeout: float = 15.0) -> int:
        """Wait until every worker has booted (/readyz answers as soon as one has): the count
        of the master's children has not changed for ``settle`` seconds. Returns it."""
        deadline = time.monotonic() + timeout
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = len(self.worker_pids())
            if count != seen:
                seen, since = count, time.monotonic()
            elif count and time.monotonic() - since >= settle:
                break
            time.sleep(0.1)
        return seen

    def _kill_all(self, grace: float) -> None:
        proc = self._proc
        if proc is None:
            return
        workers = child_pids(proc.pid) if proc.poll() is None else []
        end_process(proc, grace, signal.SIGTERM)
        _kill_leftovers(workers)

    def stop(self, timeout: float = 25.0) -> None:
        """SIGTERM (graceful: workers finish their request), SIGKILL after ``timeout``."""
        self._kill_all(grace=timeout)


class OwnBroker(NamedTuple):
    broker: BrokerServer
    redis: RedisServer


@contextlib.contextmanager
def broker_on_own_redis(
    *,
    redis_config: Sequence[str] = REDIS_DEFAULT_CONFIG,
    redis_dir: str | Path | None = None,
    **broker_options: Any,
) -> Iterator[OwnBroker]:
    """A new redis-server and the broker under gunicorn on it, for a test (or a module's
    fixture) whose writes, counters or faults no other test may see. Both are stopped at
    the end, the broker first. ``broker_options`` are BrokerServer's (``credentials`` is
    required there: pass the ``broker_credentials`` fixture's pairs, or ``None``)."""
    with (
        RedisServer(redis_config, dir=redis_dir) as redis_server,
        BrokerServer(redis_url=redis_server.url, **broker_options) as broker,
    ):
        yield OwnBroker(broker, redis_server)


def _kill_leftovers(pids: Iterable[int]) -> None:
    """SIGKILL any of ``pids`` still alive (workers orphaned by a master that was killed)."""
    pids = list(pids)
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
