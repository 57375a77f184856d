"""The processes one benchmark run starts: redis-server, the broker under gunicorn,
moto_server, and the load generator, and what the harness reads of them (CPU, memory).

They are the test suite's own process helpers (``tests/support/processes.py``): every
process is started in its own session (so a Ctrl-C in the terminal reaches only the
harness, whose ``finally`` blocks stop them), with a parent-death signal (so a killed
harness leaves nothing behind), registered for an ``atexit`` sweep, and stopped through its
own process group (the group a server's workers share), never by name. What the benchmark
adds: pinning to CPUs (``taskset``), redis-server persisting as ``scripts/run`` configures
it, the broker with gunicorn.conf.py's own worker count, and waiting until every worker
booted. Every wait is bounded in time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO_ROOT / "tests"))  # after the project: no shadowing
from support import processes  # noqa: E402
from support.processes import (  # noqa: E402
    BrokerServer,
    ProcessStartError,
    RedisServer,
    child_pids,
    free_port,
    http_ok,
    stop_all,
    wait_until,
)

__all__ = [
    "REPO_ROOT",
    "Broker",
    "Moto",
    "Redis",
    "StartError",
    "child_pids",
    "free_port",
    "stop_all",
]

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 25.0  # gunicorn's graceful_timeout is 20 s
#: Persistence as scripts/run configures it: append-only file, fsync every second.
REDIS_PERSISTENCE = ("--save", "", "--appendonly", "yes", "--appendfsync", "everysec")

StartError = ProcessStartError


def spawn(
    args: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    cpus: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``args`` (under ``taskset -c cpus`` when given), output appended to ``log``."""
    with log.open("ab") as handle:
        return processes.spawn(args, log=handle, env=env, cwd=cwd, cpus=cpus)


def stop(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the process's own group, SIGKILL it after ``timeout``; always reaps."""
    processes.end_process(proc, timeout, signal.SIGTERM, group=True)


def tail(path: Path, lines: int = 30) -> str:
    return processes.log_tail(path, lines)


def quiet_child() -> None:
    """Initializer of the harness's multiprocessing pools: the default action for the
    signals the harness turns into exceptions (so Pool.terminate works), Ctrl-C ignored
    (the harness handles it and ends the pool)."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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


class Redis(RedisServer):
    """redis-server for a benchmark: persisting as scripts/run has it, pinned to ``cpus``."""

    def __init__(self, workdir: Path, cpus: str) -> None:
        super().__init__(REDIS_PERSISTENCE, dir=workdir / "redis", cpus=cpus)

    def bench_client(self) -> redis.Redis:
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

    def commandstats(self) -> dict[str, int]:
        """Calls so far per command (``cmdstat_get:calls=12,...`` -> {"get": 12})."""
        with self.bench_client() as client:
            stats = client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


class Broker(BrokerServer):
    """The broker under gunicorn with config/gunicorn.conf.py and no worker override,
    pinned to ``cpus``; ``start`` returns once every worker has booted. ``root`` is the
    checkout gunicorn serves (bench/compare.py: a worktree); ``redis_env`` a topology's
    REDIS_* variables instead of ``redis_url`` (bench/topology.py)."""

    def __init__(
        self,
        *,
        workdir: Path,
        venv: Path,
        redis_url: str,
        credentials: Mapping[str, str],
        cpus: str,
        extra_env: Mapping[str, str] | None = None,
        root: Path = REPO_ROOT,
        redis_env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            redis_url="" if redis_env else redis_url,
            redis_env=redis_env,
            credentials=credentials,
            workers=None,
            env=extra_env,
            log_path=workdir / "broker.log",
            venv=venv,
            start_timeout=START_TIMEOUT,
            root=root,
            cpus=cpus,
        )
        self.workdir = workdir

    def start(self, name: str = "broker") -> Broker:
        self.log_path = self.workdir / f"{name}.log"
        super().start()
        self.wait_for_workers()
        return self

    def workers_now(self) -> list[int]:
        """The gunicorn workers alive now (none before start)."""
        return self.worker_pids() if self._proc is not None else []


class Moto(processes.ManagedProcess):
    """moto_server (upstream-mode runs), pinned to ``cpus``, recording nothing."""

    def __init__(self, workdir: Path, venv: Path, cpus: str) -> None:
        self.workdir, self.venv, self.cpus = workdir, venv, cpus
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Moto:
        self.port = free_port()
        log = self.workdir / "moto.log"
        args = [str(self.venv / "bin" / "moto_server"), "-H", LOOPBACK, "-p", str(self.port)]
        self.proc = spawn(args, log=log, cpus=self.cpus)
        reason = wait_until(lambda: http_ok(f"{self.url}/moto-api/"), self.proc, START_TIMEOUT)
        if reason:
            stop(self.proc, timeout=5.0)
            raise StartError(f"moto_server on {self.url} {reason}:\n{tail(log)}")
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
