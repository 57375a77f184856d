"""``bench/run --topologies``: the broker on one redis-server against the broker on a
3-master Redis Cluster, interleaved (docs/scaling.md).

Both brokers run at once under gunicorn with production settings, each on its own Redis:
a standalone redis-server, and a Redis Cluster of 3 masters with a replica each
(``tests/support/topologies.py``, the fixture the test suite uses). Short wrk runs alternate
between them (A B B A ...) so that this machine's drift reaches both alike. Workloads:
returning users and new users (GetOpenIdTokenForDeveloperIdentity, SigV4-signed). For each
run it records tokens/s, p99, the broker workers' CPU per request and the CPU every Redis
process of the topology spent per request (a cluster's masters and replicas summed), which
is what sizing a deployment needs. With ``--wait-replicas N`` both brokers set
``REDIS_WAIT_REPLICAS`` (the standalone server then gets a replica too).
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench import loadgen, presign, procs, workloads
from bench.harness import log

sys.path.insert(0, str(procs.REPO_ROOT / "tests"))
from support.processes import RedisServer  # noqa: E402
from support.topologies import RedisClusterServers  # noqa: E402

USERS = 2000
#: Persistence as scripts/run configures it: append-only file, fsync every second.
REDIS_CONFIG = ("--save", "", "--appendonly", "yes", "--appendfsync", "everysec")


@dataclass
class Side:
    name: str
    broker: procs.Broker
    redis_pids: list[int]
    target: presign.Target | None = None
    pool: str = ""
    new_made: int = 0
    runs: dict[str, list[tuple[float, float, float, float, int]]] = field(default_factory=dict)


def _start(name: str, redis_env: dict[str, str], redis_pids: list[int], workdir: Path, key: str,
           secret: str, venv: Path, extra: dict[str, str]) -> Side:  # fmt: skip
    side_dir = workdir / f"broker-{name}"
    side_dir.mkdir()
    broker = procs.Broker(
        workdir=side_dir,
        venv=venv,
        redis_url="",
        redis_env=redis_env,
        credentials={key: secret},
        cpus="0,1",
        extra_env=extra,
    ).start(f"broker-{name}")
    side = Side(name, broker, redis_pids)
    side.target = presign.Target(host=f"{procs.LOOPBACK}:{broker.port}", key_id=key, secret=secret)
    side.pool = workloads.create_pool(broker.url, side.target, f"topology-{name}")
    workloads.seed(broker.url, side.target, side.pool, USERS, side_dir, "1")
    workloads.check_broker(broker.url, side.target, side.pool)
    return side


def _measure(side: Side, workload: str, connections: int, duration: float) -> None:
    broker = side.broker
    assert side.target is not None
    if workload == "returning":
        requests = workloads.returning_file(
            broker.workdir / "returning.tsv", side.target, side.pool, USERS
        )
        new = None
    else:
        side.new_made += 1
        new = workloads.new_file(
            broker.workdir / "new.tsv", side.target, side.pool, str(side.new_made), 40_000
        )
        requests = None
    workers = broker.workers_now()
    before_workers, before_redis = procs.cpu_seconds(workers), procs.cpu_seconds(side.redis_pids)
    res = loadgen.run(
        broker.url,
        connections=connections,
        duration=duration,
        returning=requests,
        new=new,
        new_every=1 if new is not None else 0,
        cpus="1",
        workdir=broker.workdir,
    )
    done = max(res.requests, 1)
    worker_us = (procs.cpu_seconds(workers) - before_workers) / done * 1e6
    redis_us = (procs.cpu_seconds(side.redis_pids) - before_redis) / done * 1e6
    side.runs.setdefault(workload, []).append(
        (res.rps, res.p99_ms, worker_us, redis_us, res.errors)
    )
    log(
        f"  {side.name:10} {workload:9} {res.rps:8,.0f} tokens/s  p99 {res.p99_ms:6.1f} ms  "
        f"workers {worker_us:5,.0f} µs/req  redis {redis_us:5,.0f} µs/req  errors {res.errors}"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench/run --topologies")
    parser.add_argument("--rounds", type=int, default=4, help="pairs of runs per workload (4)")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per run (4)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--wait-replicas", type=int, default=0, help="REDIS_WAIT_REPLICAS (0)")
    args = parser.parse_args(argv)
    venv = procs.REPO_ROOT / ".venv-bench"
    workdir = Path(tempfile.mkdtemp(prefix="identity-broker-topologies-"))
    key, secret = "AKIDTOPOLOGY", secrets.token_urlsafe(30)
    extra = {"REDIS_WAIT_REPLICAS": str(args.wait_replicas)} if args.wait_replicas else {}
    standalone = RedisServer(REDIS_CONFIG, dir=workdir / "standalone").start()
    replica = None
    if args.wait_replicas:
        replica = RedisServer(
            (*REDIS_CONFIG, "--replicaof", "127.0.0.1", str(standalone.port)),
            dir=workdir / "standalone-replica",
        ).start()
    cluster = RedisClusterServers(REDIS_CONFIG).start()
    sides: list[Side] = []
    try:
        log(f"standalone redis-server on {standalone.port}; cluster seeds {cluster.seeds()}")
        standalone_pids = [p for p in (standalone.pid, replica and replica.pid) if p]
        cluster_pids = [node.pid for node in cluster.nodes if node.pid]
        sides = [
            _start("standalone", {"REDIS_URL": standalone.url}, standalone_pids, workdir, key,
                   secret, venv, extra),
            _start("cluster", cluster.env(), cluster_pids, workdir, key, secret, venv, extra),
        ]  # fmt: skip
        for workload in ("returning", "new"):
            log(
                f"{workload}: {args.rounds} rounds of {args.duration:g} s, {args.connections} conns"
            )
            for n in range(args.rounds):
                for side in sides if n % 2 == 0 else reversed(sides):
                    _measure(side, workload, args.connections, args.duration)
        print(
            f"\nmedians of {args.rounds} interleaved runs of {args.duration:g} s at "
            f"{args.connections} connections; REDIS_WAIT_REPLICAS={args.wait_replicas}; "
            "Redis CPU: every process of the topology (cluster: 3 masters + 3 replicas)\n"
        )
        print(
            "| workload | topology | tokens/s | p99 ms | workers µs CPU/req | "
            "Redis µs CPU/req | errors |"
        )
        print("|---|---|---|---|---|---|---|")
        for workload in ("returning", "new"):
            for side in sides:
                runs = side.runs[workload]
                print(
                    f"| {workload} | {side.name} | "
                    f"{statistics.median(r[0] for r in runs):,.0f} | "
                    f"{statistics.median(r[1] for r in runs):.1f} | "
                    f"{statistics.median(r[2] for r in runs):,.0f} | "
                    f"{statistics.median(r[3] for r in runs):,.0f} | "
                    f"{sum(r[4] for r in runs)} |"
                )
            a, b = (statistics.median(r[0] for r in s.runs[workload]) for s in sides)
            print(f"| {workload} | cluster / standalone | {b / a:.2f}x | | | | |")
        return 0
    finally:
        for side in sides:
            side.broker.stop()
        cluster.stop()
        if replica is not None:
            replica.stop()
        standalone.stop()
