"""The processes one benchmark run starts: redis-server, the broker under gunicorn,
moto_server, and the load generator.

Every process is started in its own session (so a Ctrl-C in the terminal reaches only the
harness, whose ``finally`` blocks stop them), with a parent-death signal (so a killed
harness leaves nothing behind), and is registered for an ``atexit`` sweep. A process is
stopped through its own process group (the group a server's workers share), never by name.
Every wait is bounded in time.
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
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

REPO_ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 25.0  # gunicorn's graceful_timeout is 20 s
_PR_SET_PDEATHSIG = 1

_live: dict[int, subprocess.Popen[bytes]] = {}


class StartError(RuntimeError):
    """A server did not come up; the message carries the tail of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picked it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    # Between fork and exec: SIGTERM this child when the harness dies (tied to the forking
    # thread: the harness starts every process from its main thread).
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def spawn(
    args: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    cpus: str | None = None,
    stdout: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``args`` (under ``taskset -c cpus`` when given), output appended to ``log``."""
    argv = list(args)
    if cpus is not None:
        argv = ["taskset", "-c", cpus, *argv]
    with log.open("ab") as handle:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=handle if stdout is None else stdout,
            stderr=handle,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    _live[proc.pid] = proc
    return proc


def stop(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the process's own group, SIGKILL it after ``timeout``; always reaps."""
    pgid = proc.pid  # start_new_session: the child leads its own group
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
            proc.wait(5.0)
        # Workers the master left behind are still in its group (whose id cannot be reused
        # while they live): end them too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    _live.pop(proc.pid, None)


def quiet_child() -> None:
    """Initializer of the harness's multiprocessing pools: the default action for the
    signals the harness turns into exceptions (so Pool.terminate works), Ctrl-C ignored
    (the harness handles it and ends the pool)."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@atexit.register
def stop_all() -> None:
    for proc in list(_live.values()):
        stop(proc, timeout=3.0)


def wait_until(
    ready: Callable[[], bool], proc: subprocess.Popen[bytes], timeout: float, log: Path
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartError(f"{proc.args!r} exited with {proc.returncode}:\n{tail(log)}")
        if ready():
            return
        time.sleep(0.05)
    raise StartError(f"{proc.args!r} not ready after {timeout:.0f} s:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def child_pids(parent: int) -> list[int]:
    """Live pids whose parent is ``parent`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == parent and fields[0] != "Z":
            found.append(int(entry.name))
    return sorted(found)


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of ``pid`` in KiB, from /proc/<pid>/status."""
    values = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    return values


def cpu_seconds(pids: Sequence[int]) -> float:
    """utime + stime of ``pids`` (live ones), in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def system_cpu() -> tuple[float, float]:
    """(user + nice + system, steal) seconds of all CPUs since boot, from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = os.sysconf("SC_CLK_TCK")
    user, nice, system, steal = int(fields[0]), int(fields[1]), int(fields[2]), int(fields[7])
    return (user + nice + system) / ticks, steal / ticks


def wait_quiet(
    max_wait: float, threshold: float = 0.25, window: float = 0.5
) -> tuple[float, float]:
    """Wait (at most ``max_wait`` s) for a ``window`` in which all processes together used
    under ``threshold`` cores: the harness's own servers are idle then, so what is busy is
    someone else. Returns (seconds waited, cores busy in the last window)."""
    start = time.monotonic()
    busy = 0.0
    while True:
        before, t0 = system_cpu()[0], time.monotonic()
        time.sleep(window)
        busy = (system_cpu()[0] - before) / (time.monotonic() - t0)
        waited = time.monotonic() - start
        if busy < threshold or waited >= max_wait:
            return waited, busy


@dataclass
class Redis:
    workdir: Path
    cpus: str
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> Redis:
        if shutil.which("redis-server") is None:
            raise StartError("redis-server is not on PATH (bench/run installs it as root)")
        self.port = free_port()
        data = self.workdir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        log = self.workdir / "redis.log"
        # Persistence as scripts/run configures it: append-only file, fsync every second.
        args = [
            "redis-server", "--bind", LOOPBACK, "--port", str(self.port),
            "--dir", str(data), "--daemonize", "no", "--logfile", "",
            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
        ]  # fmt: skip
        self.proc = spawn(args, log=log, cpus=self.cpus)
        wait_until(self._ping, self.proc, START_TIMEOUT, log)
        return self

    def client(self) -> redis.Redis:
        """A client that never retries and waits at most 2 s (the benchmark's own reads)."""
        return redis.Redis(
            host=LOOPBACK,
            port=self.port,
            socket_timeout=2.0,
            socket_connect_timeout=1.0,
            retry=Retry(NoBackoff(), 0),
            protocol=2,  # neither HELLO nor CLIENT SETINFO: only the broker's commands count
            lib_name=None,
            lib_version=None,
        )

    def _ping(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def commandstats(self) -> dict[str, int]:
        """Calls so far per command (``cmdstat_get:calls=12,...`` -> {"get": 12})."""
        with self.client() as client:
            stats = client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, timeout=10.0)


@dataclass
class Broker:
    """The broker under gunicorn with config/gunicorn.conf.py and no worker override."""

    workdir: Path
    venv: Path
    redis_url: str
    credentials: Mapping[str, str]
    cpus: str
    extra_env: Mapping[str, str] = field(default_factory=dict)
    root: Path = REPO_ROOT  # the checkout gunicorn serves (bench/compare.py: a worktree)
    #: A topology's REDIS_* variables instead of ``redis_url`` (bench/topology.py).
    redis_env: Mapping[str, str] | None = None
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: Path = Path()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def env(self) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("BROKER_", "AWS_", "REDIS_"))
        }
        env.update(dict(self.redis_env) if self.redis_env else {"REDIS_URL": self.redis_url})
        env.update(
            {
                "BROKER_BIND": f"{LOOPBACK}:{self.port}",
                "BROKER_ISSUER": self.url,
                "BROKER_CREDENTIALS": ",".join(f"{k}:{v}" for k, v in self.credentials.items()),
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, name: str = "broker") -> Broker:
        self.port = free_port()
        self.log = self.workdir / f"{name}.log"
        args = [str(self.venv / "bin" / "gunicorn"), "-c", "config/gunicorn.conf.py", "wsgi:app"]
        self.proc = spawn(args, log=self.log, env=self.env(), cwd=self.root, cpus=self.cpus)
        wait_until(lambda: http_ok(f"{self.url}/readyz"), self.proc, START_TIMEOUT, self.log)
        # Every worker booted: the count of children has been the same for a second.
        deadline = time.monotonic() + 15.0
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = len(self.workers())
            if count != seen:
                seen, since = count, time.monotonic()
            elif count and time.monotonic() - since >= 1.0:
                break
            time.sleep(0.1)
        return self

    def workers(self) -> list[int]:
        return child_pids(self.proc.pid) if self.proc is not None else []

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


@dataclass
class Moto:
    workdir: Path
    venv: Path
    cpus: str
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Moto:
        self.port = free_port()
        log = self.workdir / "moto.log"
        args = [str(self.venv / "bin" / "moto_server"), "-H", LOOPBACK, "-p", str(self.port)]
        self.proc = spawn(args, log=log, cpus=self.cpus)
        wait_until(lambda: http_ok(f"{self.url}/moto-api/"), self.proc, START_TIMEOUT, log)
        return self

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None else []

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, timeout=10.0)


def expand_cpus(spec: str) -> list[int]:
    """``"0,1"`` or ``"0-1"`` -> [0, 1]."""
    cpus: list[int] = []
    for part in spec.split(","):
        low, _, high = part.partition("-")
        cpus.extend(range(int(low), int(high or low) + 1))
    return cpus
