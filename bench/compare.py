"""``bench/run --compare REV``: the broker at REV against this checkout, interleaved.

Why: this machine's speed drifts by tens of percent within minutes (other tenants; see
docs/performance.md), so a benchmark of one version now and of another later mostly
measures the drift. Here both run at once, each under gunicorn with production settings on
one shared redis-server, and short wrk runs alternate between them (A B B A A B ...), so
drift reaches both alike; the medians and their ratio are what to quote.

REV is checked out with ``git worktree`` into a temporary directory (removed at the end)
and served from there with this checkout's ``.venv-bench`` (same dependencies): gunicorn
imports ``wsgi:app`` and ``broker`` from its working directory first. Workloads: returning
users (GetOpenIdTokenForDeveloperIdentity, SigV4-signed, 2,000 users created first) and the
backend door's cache hits (``POST /v1/token``, 2,000 users cached first).
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench import loadgen, presign, procs, workloads
from bench.harness import log

USERS = 2000


@dataclass
class Side:
    name: str
    tree: Path
    broker: procs.Broker
    returning: Path = Path()
    cache_hits: Path = Path()
    target: presign.Target | None = None
    pool: str = ""
    runs: dict[str, list[tuple[float, float, int]]] = field(default_factory=dict)


def _worktree(rev: str, into: Path) -> Path:
    tree = into / "tree"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "--quiet", str(tree), rev],
        cwd=procs.REPO_ROOT,
        check=True,
    )
    return tree


def _drop_worktree(tree: Path) -> None:
    subprocess.run(
        ["git", "worktree", "remove", "--force", str(tree)], cwd=procs.REPO_ROOT, check=False
    )


def _start(
    name: str,
    tree: Path,
    redis: procs.Redis,
    workdir: Path,
    key: str,
    secret: str,
    api_key: str,
    venv: Path,
) -> Side:
    env = {
        "PYTHONPATH": str(tree),
        "BROKER_BACKEND_AUTH": "api_key",
        "BROKER_BACKEND_API_KEYS": api_key,
        "BROKER_BACKEND_POOL_NAME": f"compare-{name}",
        "BROKER_BACKEND_DEVELOPER_PROVIDER": "login.backend",
    }
    side_dir = workdir / name
    side_dir.mkdir()
    broker = procs.Broker(
        workdir=side_dir,
        venv=venv,
        redis_url=redis.url,
        credentials={key: secret},
        cpus="0,1",
        extra_env=env,
        root=tree,
    ).start(f"broker-{name}")
    return Side(name, tree, broker)


def _prepare(side: Side, key: str, secret: str, api_key: str) -> None:
    broker = side.broker
    side_dir = broker.workdir
    side.target = presign.Target(host=f"{procs.LOOPBACK}:{broker.port}", key_id=key, secret=secret)
    side.pool = workloads.create_pool(broker.url, side.target, f"compare-{side.name}")
    workloads.seed(broker.url, side.target, side.pool, USERS, side_dir, "1")
    side.cache_hits = workloads.cache_hits_file(
        side_dir / "backend.tsv", side.target.host, api_key, USERS
    )
    fill = workloads.each_once(broker.url, side.cache_hits, USERS, side_dir, "1")
    if fill.errors:
        raise RuntimeError(f"{side.name}: filling the token cache failed: {fill.statuses}")


def _measure(side: Side, workload: str, connections: int, duration: float) -> None:
    broker = side.broker
    if workload == "returning":
        assert side.target is not None
        requests = workloads.returning_file(
            broker.workdir / "returning.tsv", side.target, side.pool, USERS
        )
    else:
        requests = side.cache_hits
    pids = broker.workers_now()
    before = procs.cpu_seconds(pids)
    res = loadgen.run(
        broker.url,
        connections=connections,
        duration=duration,
        returning=requests,
        new=None,
        new_every=0,
        cpus="1",
        workdir=broker.workdir,
    )
    cpu_us = (procs.cpu_seconds(pids) - before) / max(res.requests, 1) * 1e6
    side.runs.setdefault(workload, []).append((res.rps, cpu_us, res.errors))
    log(
        f"  {side.name:6} {workload:10} {res.rps:8,.0f} req/s  {cpu_us:6,.0f} µs CPU/req "
        f"(workers)  p99 {res.p99_ms:5.1f} ms  errors {res.errors}"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench/run --compare")
    parser.add_argument("rev", help="the git revision to compare this checkout with")
    parser.add_argument("--rounds", type=int, default=6, help="pairs of runs per workload (6)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run (3)")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    venv = procs.REPO_ROOT / ".venv-bench"
    workdir = Path(tempfile.mkdtemp(prefix="identity-broker-compare-"))
    key, secret, api_key = "AKIDCOMPARE", secrets.token_urlsafe(30), secrets.token_urlsafe(36)
    tree = _worktree(args.rev, workdir)
    redis = procs.Redis(workdir=workdir, cpus="0,1").start()
    sides: list[Side] = []
    try:
        rev_name = subprocess.run(
            ["git", "rev-parse", "--short", args.rev],
            cwd=procs.REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        log(f"before: {rev_name} (worktree {tree}); after: this checkout ({procs.REPO_ROOT})")
        sides = [
            _start("before", tree, redis, workdir, key, secret, api_key, venv),
            _start("after", procs.REPO_ROOT, redis, workdir, key, secret, api_key, venv),
        ]
        for side in sides:
            _prepare(side, key, secret, api_key)
        for workload in ("returning", "cache-hits"):
            log(
                f"{workload}: {args.rounds} rounds of {args.duration:g} s, "
                f"{args.connections} connections"
            )
            for n in range(args.rounds):
                for side in sides if n % 2 == 0 else reversed(sides):
                    _measure(side, workload, args.connections, args.duration)
        print(
            f"\nbefore = {rev_name}, after = this checkout; medians of {args.rounds} "
            f"interleaved runs of {args.duration:g} s at {args.connections} connections\n"
        )
        print(
            "| workload | before req/s | after req/s | after/before | before µs CPU/req | "
            "after µs CPU/req | errors |"
        )
        print("|---|---|---|---|---|---|---|")
        for workload in ("returning", "cache-hits"):
            b, a = (side.runs[workload] for side in sides)
            b_rps, a_rps = statistics.median(r[0] for r in b), statistics.median(r[0] for r in a)
            b_cpu, a_cpu = statistics.median(r[1] for r in b), statistics.median(r[1] for r in a)
            errors = sum(r[2] for r in b) + sum(r[2] for r in a)
            print(
                f"| {workload} | {b_rps:,.0f} | {a_rps:,.0f} | {a_rps / b_rps:.2f}x | "
                f"{b_cpu:,.0f} | {a_cpu:,.0f} | {errors} |"
            )
        return 0
    finally:
        for side in sides:
            side.broker.stop()
        redis.stop()
        _drop_worktree(tree)
