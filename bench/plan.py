"""What one benchmark run does: levels, repetitions, durations, CPU pinning, outputs."""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.procs import REPO_ROOT


@dataclass(frozen=True)
class Plan:
    quick: bool
    reps: int
    levels: tuple[int, ...]
    moto_levels: tuple[int, ...]
    backend_levels: tuple[int, ...]
    duration: float  # seconds per measured wrk run
    warmup: float
    returning_users: int
    memory_requests: int
    memory_connections: int
    profile_seconds: float  # 0: no profile
    ceiling_runs: int
    ceiling_seconds: float
    server_cpus: str
    generator_cpus: str
    wrk_threads: int
    quiet_wait: float  # at most this long before each run for other processes to go quiet
    retry_budget: float  # seconds, in all, for running disturbed runs once more
    max_seconds: int  # the whole run is stopped (and cleaned up) past this
    out_prefix: Path  # writes <prefix>.md, <prefix>.png, <prefix>.json
    moto: bool
    backend: bool
    broker_env: dict[str, str]  # experiments only: extra environment for every gunicorn
    venv: Path

    @property
    def profile(self) -> bool:
        return self.profile_seconds > 0


def _levels(raw: str) -> tuple[int, ...]:
    return tuple(int(x) for x in raw.split(",") if x.strip())


def parse(argv: list[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description="Benchmark the broker's token path against moto_server and the RS512 "
        "signing ceiling; print a table and write docs/benchmarks.{md,png,json}.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one repetition, fewer levels, shorter runs, a 10,000-request memory run and no "
        "profile (under 2 minutes); writes to a temporary directory unless --out is given",
    )
    parser.add_argument("--reps", type=int, help="repetitions of each configuration (3)")
    parser.add_argument("--levels", help="connection counts, comma-separated (8,32,64)")
    parser.add_argument("--duration", type=float, help="seconds per measured run (5; --quick: 4)")
    parser.add_argument("--memory-requests", type=int, help="requests in the memory run (100000)")
    parser.add_argument("--profile-seconds", type=float, help="py-spy recording, 0 for none (10)")
    parser.add_argument("--no-moto", action="store_true", help="skip moto_server")
    parser.add_argument("--no-backend", action="store_true", help="skip POST /v1/token")
    parser.add_argument(
        "--out",
        type=Path,
        help="output prefix (default docs/benchmarks; with --quick or an experiment: "
        "$TMPDIR/identity-broker-bench/benchmarks-quick or -experiment)",
    )
    parser.add_argument(
        "--gunicorn-args",
        default="",
        help="EXPERIMENT: GUNICORN_CMD_ARGS for the broker (overrides config/gunicorn.conf.py), "
        "e.g. '--worker-class gthread --threads 4'; the report marks the run as not production",
    )
    parser.add_argument(
        "--broker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="EXPERIMENT: extra environment for the broker, e.g. BROKER_ACCESS_LOG=off",
    )
    # Two modes of their own, taken by bench/harness.py.main before this parser runs; declared
    # here for --help, and refused when they come after other options.
    parser.add_argument(
        "--render",
        metavar="JSON",
        help="only rewrite the .md and .png beside a saved benchmarks.json (alone)",
    )
    parser.add_argument(
        "--compare",
        metavar="REV",
        help="REV and this checkout at once, short runs interleaved (first; bench/compare.py)",
    )
    parser.add_argument("--server-cpus", default="0,1", help="taskset list for the servers")
    parser.add_argument("--generator-cpus", default="1", help="taskset list for wrk")
    args = parser.parse_args(argv)
    if args.render is not None or args.compare is not None:
        parser.error("--render and --compare come first: bench/run --render JSON | --compare REV")

    quick = bool(args.quick)
    levels = _levels(args.levels) if args.levels else ((8, 32) if quick else (8, 32, 64))
    if args.out is not None:
        out = args.out if args.out.is_absolute() else Path.cwd() / args.out
    elif quick or args.gunicorn_args or args.broker_env:
        kind = "quick" if quick else "experiment"
        out = Path(tempfile.gettempdir()) / "identity-broker-bench" / f"benchmarks-{kind}"
    else:
        out = REPO_ROOT / "docs" / "benchmarks"
    broker_env = dict(item.split("=", 1) for item in args.broker_env)
    if args.gunicorn_args:
        broker_env["GUNICORN_CMD_ARGS"] = args.gunicorn_args
    profile = args.profile_seconds if args.profile_seconds is not None else (0 if quick else 10)
    return Plan(
        quick=quick,
        reps=args.reps or (1 if quick else 3),
        levels=levels,
        moto_levels=(32,) if quick else levels,
        backend_levels=(32,) if quick else levels,
        duration=args.duration or (4.0 if quick else 5.0),
        warmup=2.0 if quick else 3.0,
        returning_users=2000,
        memory_requests=args.memory_requests or (10_000 if quick else 100_000),
        memory_connections=32,
        profile_seconds=profile,
        ceiling_runs=1 if quick else 3,
        ceiling_seconds=1.5,
        server_cpus=args.server_cpus,
        generator_cpus=args.generator_cpus,
        wrk_threads=1,
        quiet_wait=1.0 if quick else 2.0,
        retry_budget=0.0 if quick else 60.0,
        max_seconds=(300 if quick else 1500),
        out_prefix=out,
        moto=not args.no_moto,
        backend=not args.no_backend,
        broker_env=broker_env,
        venv=Path(os.environ.get("BENCH_VENV", REPO_ROOT / ".venv-bench")),
    )
