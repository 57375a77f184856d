"""Run wrk with bench/token.lua and read back its figures."""

from __future__ import annotations

import json
import math
import resource
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import procs

SCRIPT = Path(__file__).with_name("token.lua")
MARKER = "BENCH_RESULT "


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    non_2xx: int
    socket_errors: int
    exhausted: int
    cached: int
    statuses: dict[str, int]
    generator_cpu: float  # cores of CPU the generator used over the run
    raw: dict[str, object] = field(repr=False)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


class WrkError(RuntimeError):
    pass


def run(
    url: str,
    *,
    connections: int,
    duration: float,
    returning: Path | None,
    new: Path | None,
    new_every: int,
    cpus: str,
    workdir: Path,
    threads: int = 1,
    limit: int = 0,
    timeout_s: int = 5,
    log: Path | None = None,
) -> WrkResult:
    """One wrk run pinned to ``cpus``: ``duration`` seconds, or until ``limit`` responses."""
    flag = workdir / f"wrk-flag-{time.monotonic_ns()}"
    out = workdir / "wrk.out"
    out.unlink(missing_ok=True)
    args = [
        "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{math.ceil(duration)}s",
        "--timeout", f"{timeout_s}s", "-s", str(SCRIPT), url, "--",
        str(returning or "-"), str(new or "-"), str(new_every), str(limit), str(threads),
        str(flag) if limit else "-",
    ]  # fmt: skip
    flags = [Path(f"{flag}.{t}") for t in range(threads)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = procs.spawn(args, log=out, cpus=cpus)
    try:
        deadline = started + duration + 60
        interrupted = False
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise WrkError(f"wrk did not finish within {duration + 60:.0f} s")
            if limit and not interrupted and all(f.exists() for f in flags):
                proc.send_signal(signal.SIGINT)  # every thread reached its share: stop now
                interrupted = True
            time.sleep(0.02)
    finally:
        procs.stop(proc, timeout=5)
        for f in flags:
            f.unlink(missing_ok=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = out.read_text(errors="replace")
    if log is not None:
        with log.open("a") as handle:
            handle.write(f"$ taskset -c {cpus} {' '.join(args)}\n{text}\n")
    line = next((ln for ln in text.splitlines() if ln.startswith(MARKER)), None)
    if proc.returncode != 0 or line is None:
        raise WrkError(f"wrk failed ({proc.returncode}):\n{text}")
    data = json.loads(line[len(MARKER) :])
    statuses = {str(k): int(v) for k, v in dict(data["statuses"]).items()}
    non_2xx = sum(v for k, v in statuses.items() if not k.startswith("2"))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return WrkResult(
        requests=int(data["requests"]),
        seconds=int(data["duration_us"]) / 1e6,
        p50_ms=int(data["p50_us"]) / 1e3,
        p90_ms=int(data["p90_us"]) / 1e3,
        p99_ms=int(data["p99_us"]) / 1e3,
        max_ms=int(data["max_us"]) / 1e3,
        mean_ms=float(data["mean_us"]) / 1e3,
        non_2xx=non_2xx,
        socket_errors=sum(int(data[k]) for k in ("connect", "read", "write", "timeout")),
        exhausted=int(data["exhausted"]),
        cached=int(data["cached"]),
        statuses=statuses,
        generator_cpu=cpu / wall if wall else 0.0,
        raw=data,
    )
