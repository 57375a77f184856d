"""One benchmark run, start to finish (``python -m bench`` / ``bench/run``).

Order: the signing ceiling (nothing else running), then Redis, the broker and moto_server;
the returning users are created through the API; each repetition runs every broker workload
at every level and moto_server's returning users, interleaved, so drift hits all alike; then
the py-spy profile; then the backend door (its own gunicorn); then the memory run (a fresh
gunicorn). Everything is stopped in ``finally``, on Ctrl-C, on SIGTERM and past the time
limit.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from bench import ceiling, loadgen, presign, procs, report, workloads
from bench import profile as profiling
from bench.plan import Plan, parse
from bench.workloads import RETURNING, WORKLOADS, Workload

MIB = 1024.0
MEMORY_CHUNK = 10_000  # the memory run reads RSS after every chunk of requests
NOISY_CORES = report.NOISY_CORES  # a run during which others used more is flagged
Go = Callable[[], loadgen.WrkResult]
BACKEND_WORKLOAD = Workload("cache-hits", 0, "POST /v1/token, trusted API key, cache hits")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Run:
    server: str
    workload: str
    connections: int
    rep: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    exhausted: int
    cached: int
    statuses: dict[str, int]
    server_cpu: float
    cpu_by_process: dict[str, float]  # cores: gunicorn workers, master, redis-server
    redis_calls_per_request: dict[str, float]
    generator_cpu: float
    other_cpu: float  # cores busy outside the server and wrk: other tenants of the machine
    steal: float  # cores the hypervisor gave to someone else
    waited_s: float  # waiting for the machine to be quiet before the run
    worker_rss_mib: list[float]
    worker_hwm_mib: list[float]
    retried: bool = False  # the first attempt was disturbed; this is the less disturbed one

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


@dataclass
class Results:
    plan: dict[str, Any]
    started: str
    machine: dict[str, str]
    commands: list[str]
    runs: list[Run] = field(default_factory=list)
    ceiling: dict[str, float] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)
    backend: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    failure: str = ""


class Abort(Exception):
    """SIGTERM, SIGHUP or the run's time limit: unwind through every ``finally``."""


def _abort(signum: int, frame: FrameType | None) -> None:
    raise Abort(f"stopped by {signal.Signals(signum).name}")


class Bench:
    def __init__(self, plan: Plan, workdir: Path) -> None:
        self.plan = plan
        self.workdir = workdir
        self.key_id = "AKIDBENCH"
        self.secret = secrets.token_urlsafe(30)
        self.api_key = secrets.token_urlsafe(36)
        self.wrk_log = workdir / "wrk.log"
        self.max_rate = 8000.0  # replaced by 1.1 x the two-core signing ceiling
        self.retry_budget = plan.retry_budget  # seconds left for re-running disturbed runs

    # --- building blocks -------------------------------------------------------------------
    def target(self, port: int) -> presign.Target:
        return presign.Target(
            host=f"{procs.LOOPBACK}:{port}", key_id=self.key_id, secret=self.secret
        )

    def broker(self, redis: procs.Redis, extra_env: dict[str, str] | None = None) -> procs.Broker:
        return procs.Broker(
            workdir=self.workdir,
            venv=self.plan.venv,
            redis_url=redis.url,
            credentials={self.key_id: self.secret},
            cpus=self.plan.server_cpus,
            extra_env={**self.plan.broker_env, **(extra_env or {})},
        )

    def wrk(
        self,
        url: str,
        connections: int,
        duration: float,
        *,
        returning: Path | None = None,
        new: Path | None = None,
        new_every: int = 0,
        limit: int = 0,
    ) -> loadgen.WrkResult:
        return loadgen.run(
            url,
            connections=connections,
            duration=duration,
            returning=returning,
            new=new,
            new_every=new_every,
            limit=limit,
            cpus=self.plan.generator_cpus,
            workdir=self.workdir,
            threads=self.plan.wrk_threads,
            log=self.wrk_log,
        )

    def measured(
        self,
        server: str,
        workload: Workload,
        connections: int,
        rep: int,
        prepare: Callable[[], Go],
        groups: dict[str, list[int]],
        redis: procs.Redis | None = None,
    ) -> Run:
        """One measured wrk run, run again (once) when other processes disturbed it and the
        retry budget allows; ``prepare`` signs the requests and returns the run."""
        run = self._measure_once(server, workload, connections, rep, prepare(), groups, redis)
        if run.other_cpu > NOISY_CORES and self.retry_budget > 0:
            started = time.monotonic()
            log(f"  disturbed by other processes ({run.other_cpu:.2f} cores): once more")
            again = self._measure_once(server, workload, connections, rep, prepare(), groups, redis)
            self.retry_budget -= time.monotonic() - started
            again.retried = True
            if again.other_cpu < run.other_cpu:
                run = again
        return run

    def _measure_once(
        self,
        server: str,
        workload: Workload,
        connections: int,
        rep: int,
        go: Go,
        groups: dict[str, list[int]],
        redis: procs.Redis | None,
    ) -> Run:
        workers = groups.get("workers", [])
        waited, _ = procs.wait_quiet(self.plan.quiet_wait)
        stats_before = redis.commandstats() if redis is not None else {}
        cpu_before = {name: procs.cpu_seconds(pids) for name, pids in groups.items()}
        t0 = time.monotonic()
        sys_before, steal_before = procs.system_cpu()
        res: loadgen.WrkResult = go()
        wall = time.monotonic() - t0
        sys_after, steal_after = procs.system_cpu()
        cores = {
            name: (procs.cpu_seconds(pids) - cpu_before[name]) / wall if wall else 0.0
            for name, pids in groups.items()
        }
        cpu = sum(cores.values())
        other = max(0.0, (sys_after - sys_before) / wall - cpu - res.generator_cpu)
        calls: dict[str, float] = {}
        if redis is not None and res.requests:
            after = redis.commandstats()
            calls = {
                cmd: round((n - stats_before.get(cmd, 0)) / res.requests, 3)
                for cmd, n in after.items()
                if cmd != "info" and n > stats_before.get(cmd, 0)
            }
        mem = [procs.memory_kib(pid) for pid in workers]
        run = Run(
            server=server,
            workload=workload.name,
            connections=connections,
            rep=rep,
            rps=res.rps,
            p50_ms=res.p50_ms,
            p90_ms=res.p90_ms,
            p99_ms=res.p99_ms,
            mean_ms=res.mean_ms,
            max_ms=res.max_ms,
            requests=res.requests,
            seconds=res.seconds,
            non_2xx=res.non_2xx,
            socket_errors=res.socket_errors,
            exhausted=res.exhausted,
            cached=res.cached,
            statuses=res.statuses,
            server_cpu=cpu,
            cpu_by_process=cores,
            redis_calls_per_request=calls,
            generator_cpu=res.generator_cpu,
            other_cpu=other,
            steal=(steal_after - steal_before) / wall,
            waited_s=waited,
            worker_rss_mib=[m.get("VmRSS", 0) / MIB for m in mem],
            worker_hwm_mib=[m.get("VmHWM", 0) / MIB for m in mem],
        )
        flag = ""
        if run.errors:
            flag += f" ERRORS {run.statuses} socket={run.socket_errors}"
        if run.exhausted and workload.new_every:
            flag += f" NEW USERS RAN OUT ({run.exhausted} repeats)"
        if run.other_cpu > NOISY_CORES:
            flag += f" (machine busy: {run.other_cpu:.2f} cores used by other processes)"
        log(
            f"  {server:8} {workload.name:10} c={connections:<3} rep {rep}: "
            f"{run.rps:8,.0f} req/s  p50 {run.p50_ms:6.1f} ms  p99 {run.p99_ms:6.1f} ms  "
            f"server {run.server_cpu:.2f} cores, wrk {run.generator_cpu:.2f}{flag}"
        )
        return run

    @staticmethod
    def groups(broker: procs.Broker, redis: procs.Redis) -> dict[str, list[int]]:
        assert redis.pid is not None
        return {"workers": broker.workers_now(), "master": [broker.pid], "redis": [redis.pid]}

    # --- the phases ------------------------------------------------------------------------
    def token_runs(
        self,
        results: Results,
        broker: procs.Broker,
        broker_pool: str,
        redis: procs.Redis,
        moto: procs.Moto | None,
        moto_pool: str,
    ) -> None:
        plan = self.plan
        b_target = self.target(broker.port)
        for rep in range(1, plan.reps + 1):
            log(f"repetition {rep} of {plan.reps}")
            for workload in WORKLOADS:
                for conns in plan.levels:

                    def prepare(conns: int = conns, w: Workload = workload, rep: int = rep) -> Go:
                        # Signed right before the run; a retry gets users never seen before.
                        ret = workloads.returning_file(
                            self.workdir / "returning.tsv",
                            b_target,
                            broker_pool,
                            plan.returning_users,
                        )
                        new = None
                        count = workloads.new_users_needed(w, plan.duration, self.max_rate)
                        if count:
                            tag = f"{rep}-{w.name}-{conns}-{secrets.token_hex(3)}"
                            new = workloads.new_file(
                                self.workdir / "new.tsv", b_target, broker_pool, tag, count
                            )
                        return lambda: self.wrk(
                            broker.url,
                            conns,
                            plan.duration,
                            returning=ret if w.new_every != 1 else None,
                            new=new,
                            new_every=w.new_every,
                        )

                    groups = self.groups(broker, redis)
                    results.runs.append(
                        self.measured("broker", workload, conns, rep, prepare, groups, redis)
                    )
            if moto is not None:
                m_target = self.target(moto.port)
                for conns in plan.moto_levels:

                    def prepare_moto(conns: int = conns, m_target: presign.Target = m_target) -> Go:
                        ret = workloads.returning_file(
                            self.workdir / "moto.tsv", m_target, moto_pool, plan.returning_users
                        )
                        return lambda: self.wrk(moto.url, conns, plan.duration, returning=ret)

                    groups = {"moto": moto.pids()}
                    results.runs.append(
                        self.measured("moto", RETURNING, conns, rep, prepare_moto, groups)
                    )

    def profile_run(
        self, results: Results, broker: procs.Broker, broker_pool: str, redis: procs.Redis
    ) -> None:
        plan = self.plan
        seconds = plan.profile_seconds
        ret = workloads.returning_file(
            self.workdir / "returning.tsv",
            self.target(broker.port),
            broker_pool,
            plan.returning_users,
        )
        raw = self.workdir / "py-spy.txt"
        log(f"profile: py-spy on every gunicorn worker, {seconds:g} s of returning users at 32")
        spy = procs.spawn(
            [
                str(plan.venv / "bin" / "py-spy"), "record", "--pid", str(broker.pid),
                "--subprocesses", "--idle", "--nonblocking", "--rate", "200",
                "--duration", f"{seconds:g}", "--format", "raw", "-o", str(raw),
            ],
            log=self.workdir / "py-spy.log",
            cpus=plan.generator_cpus,
        )  # fmt: skip
        time.sleep(1.0)  # py-spy attaches
        res = self.wrk(broker.url, 32, seconds + 1.0, returning=ret)
        try:
            spy.wait(30)
        finally:
            procs.stop(spy, timeout=5)
        profile: dict[str, Any] = {"seconds": seconds, "rps_while_profiling": res.rps}
        try:
            profile["py_spy"] = profiling.summarize(raw)
        except OSError as exc:
            profile["py_spy"] = {"error": f"{exc}; {procs.tail(self.workdir / 'py-spy.log')}"}
        kwargs: dict[str, Any] = {
            "redis_url": redis.url,
            "broker_url": broker.url,
            "pool_id": broker_pool,
            "target": self.target(broker.port),
        }
        log("profile: pyinstrument on the WSGI app in-process, then each step alone")
        try:
            profile["in_process"] = profiling.pinned(
                0, lambda: profiling.in_process(seconds=4.0, **kwargs)
            )
        except Exception as exc:  # noqa: BLE001 - report it, keep the run
            profile["in_process"] = {"error": f"{type(exc).__name__}: {exc}"}
        profile["components"] = profiling.pinned(0, lambda: profiling.components(**kwargs))
        results.profile = profile

    def backend_runs(self, results: Results, redis: procs.Redis) -> None:
        plan = self.plan
        env = {
            "BROKER_BACKEND_AUTH": "api_key",
            "BROKER_BACKEND_API_KEYS": self.api_key,
            "BROKER_BACKEND_POOL_NAME": "bench-backend",
            "BROKER_BACKEND_DEVELOPER_PROVIDER": "login.backend",
        }
        broker = self.broker(redis, env)
        try:
            try:
                broker.start("broker-backend")
            except procs.StartError as exc:
                results.backend = {
                    "skipped": f"the broker with the backend door did not start: {exc}"
                }
                log(f"backend: skipped, {results.backend['skipped'][:300]}")
                return
            host = f"{procs.LOOPBACK}:{broker.port}"
            headers = {"Host": host, "Content-Type": "application/json", "X-Api-Key": self.api_key}
            body = json.dumps({"user_id": "probe"}).encode()
            status, answer = workloads.post(host, headers, body, path="/v1/token")
            if status != 200 or not answer.get("success"):
                results.backend = {"skipped": f"POST /v1/token answered {status}: {answer}"}
                log(f"backend: skipped, {results.backend['skipped'][:300]}")
                return
            path = workloads.cache_hits_file(
                self.workdir / "backend.tsv", host, self.api_key, plan.returning_users
            )
            log(f"backend: filling the token cache with {plan.returning_users} users")
            fill = workloads.each_once(
                broker.url, path, plan.returning_users, self.workdir, plan.generator_cpus
            )
            if fill.errors:
                results.backend = {"skipped": f"filling the cache failed: {fill.statuses}"}
                return
            self.wrk(broker.url, 32, plan.warmup, returning=path)
            results.backend = {"env": {k: v for k, v in env.items() if "KEY" not in k}}
            for rep in range(1, plan.reps + 1):
                for conns in plan.backend_levels:

                    def prepare(conns: int = conns) -> Go:
                        return lambda: self.wrk(broker.url, conns, plan.duration, returning=path)

                    groups = self.groups(broker, redis)
                    results.runs.append(
                        self.measured(
                            "backend", BACKEND_WORKLOAD, conns, rep, prepare, groups, redis
                        )
                    )
        finally:
            broker.stop()

    def memory_run(self, results: Results, redis: procs.Redis) -> None:
        plan = self.plan
        broker = self.broker(redis).start("broker-memory")
        try:
            target = self.target(broker.port)
            pool = workloads.create_pool(broker.url, target, "bench-memory")
            workloads.seed(
                broker.url, target, pool, plan.returning_users, self.workdir, plan.generator_cpus
            )
            samples = [self._rss_sample(broker, 0)]
            done = 0
            log(
                f"memory run: {plan.memory_requests:,} requests at {plan.memory_connections} "
                f"connections, RSS read every {MEMORY_CHUNK:,}"
            )
            while done < plan.memory_requests:
                # Chunks re-signed each time: a signature is good for 5 minutes only.
                chunk = min(MEMORY_CHUNK, plan.memory_requests - done)
                ret = workloads.returning_file(
                    self.workdir / "mem.tsv", target, pool, plan.returning_users
                )
                res = self.wrk(broker.url, plan.memory_connections, 240, returning=ret, limit=chunk)
                if res.requests == 0:
                    raise RuntimeError("the memory run made no progress")
                done += res.requests
                sample = self._rss_sample(broker, done)
                sample.update(rps=res.rps, errors=res.errors, p99_ms=res.p99_ms)
                samples.append(sample)
            results.memory = {
                "requests": plan.memory_requests,
                "connections": plan.memory_connections,
                "workload": "returning users",
                "seed_requests": plan.returning_users,
                "samples": samples,
            }
        finally:
            broker.stop()

    def _rss_sample(self, broker: procs.Broker, requests: int) -> dict[str, Any]:
        workers = broker.workers_now()
        mem = {pid: procs.memory_kib(pid) for pid in workers}
        sample = {
            "after_requests": requests,
            "rss_mib": {str(p): m.get("VmRSS", 0) / MIB for p, m in mem.items()},
            "hwm_mib": {str(p): m.get("VmHWM", 0) / MIB for p, m in mem.items()},
        }
        log(
            f"  after {requests:,} requests: RSS per worker "
            + ", ".join(f"{v:.1f}" for v in sample["rss_mib"].values())
            + " MiB"
        )
        return sample

    # --- the whole run ---------------------------------------------------------------------
    def run(self, results: Results) -> None:
        plan = self.plan
        waited, busy = procs.wait_quiet(plan.quiet_wait)
        log(
            f"signing ceiling: {plan.ceiling_runs} x {plan.ceiling_seconds:g} s per configuration "
            f"(waited {waited:.0f} s for a quiet machine: {busy:.2f} cores busy)"
        )
        c = ceiling.measure(runs=plan.ceiling_runs, seconds=plan.ceiling_seconds)
        results.ceiling = dataclasses.asdict(c)
        self.max_rate = 1.1 * c.jwt_two_cores
        log(
            f"  RS512 JWT (TokenSigner): {c.jwt_one_core:,.0f}/s on one core, "
            f"{c.jwt_two_cores:,.0f}/s on two; raw RSA sign {c.raw_rsa_one_core:,.0f}/s, "
            f"{c.raw_rsa_two_cores:,.0f}/s"
        )

        redis = procs.Redis(self.workdir, plan.server_cpus).start()
        broker: procs.Broker | None = None
        moto: procs.Moto | None = None
        try:
            broker = self.broker(redis).start()
            log(
                f"redis-server on {redis.url}; broker on {broker.url} "
                f"({len(broker.workers_now())} workers)"
            )
            b_target = self.target(broker.port)
            pool = workloads.create_pool(broker.url, b_target, "bench")
            log(f"creating {plan.returning_users} returning users through the API")
            workloads.seed(
                broker.url, b_target, pool, plan.returning_users, self.workdir, plan.generator_cpus
            )
            identity = workloads.check_broker(broker.url, b_target, pool)
            log(f"  a returning user's token verifies against the JWKS (sub {identity})")
            moto_pool = ""
            if plan.moto:
                moto = procs.Moto(self.workdir, plan.venv, plan.server_cpus).start()
                moto_pool = workloads.create_pool(moto.url, self.target(moto.port), "bench")
                workloads.check_moto(self.target(moto.port), moto_pool)
                log(f"moto_server on {moto.url}")
            ret = workloads.returning_file(
                self.workdir / "returning.tsv", b_target, pool, plan.returning_users
            )
            self.wrk(broker.url, 32, plan.warmup, returning=ret)  # warm-up, not recorded
            if moto is not None:
                m_ret = workloads.returning_file(
                    self.workdir / "moto.tsv",
                    self.target(moto.port),
                    moto_pool,
                    plan.returning_users,
                )
                self.wrk(moto.url, 32, plan.warmup, returning=m_ret)
            self.token_runs(results, broker, pool, redis, moto, moto_pool)
            if plan.profile:
                self.profile_run(results, broker, pool, redis)
            broker.stop()
            broker = None
            if moto is not None:
                moto.stop()
                moto = None
            if plan.backend:
                self.backend_runs(results, redis)
            else:
                results.backend = {"skipped": "--no-backend"}
            self.memory_run(results, redis)
        finally:
            for server in (moto, broker):
                if server is not None:
                    server.stop()
            redis.stop()


def render(path: Path) -> int:
    """Rewrite the .md and .png beside a saved .json from its figures (no run)."""
    data = json.loads(path.read_text())
    saved = dict(data["plan"])
    saved.update(
        out_prefix=path.with_suffix(""),
        venv=Path(saved["venv"]),
        levels=tuple(saved["levels"]),
        moto_levels=tuple(saved["moto_levels"]),
        backend_levels=tuple(saved["backend_levels"]),
    )
    plan = Plan(**saved)
    names = {f.name for f in dataclasses.fields(Results)} - {"runs"}
    results = Results(
        **{k: v for k, v in data.items() if k in names},
        runs=[Run(**r) for r in data["runs"]],
    )
    paths = report.write(results, plan)
    print(report.table(results))
    log(f"rewrote {', '.join(str(p) for p in paths)} from {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--compare"]:
        from bench import compare

        return compare.main(args[1:])
    if args[:1] == ["--topologies"]:
        from bench import topology

        return topology.main(args[1:])
    if args[:1] == ["--render"]:
        if len(args) != 2:
            sys.exit("usage: bench/run --render docs/benchmarks.json")
        return render(Path(args[1]))
    plan = parse(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, _abort)
    # Ctrl-C raises KeyboardInterrupt even when started in the background (where a shell
    # leaves SIGINT ignored and Python keeps it so).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.alarm(plan.max_seconds)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="identity-broker-bench-"))
    results = Results(
        plan={k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(plan).items()},
        started=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        machine=report.machine_facts(plan),
        commands=[" ".join(["bench/run", *(sys.argv[1:] if argv is None else argv)])],
    )
    preflight(plan)
    ok = False
    try:
        Bench(plan, workdir).run(results)
        ok = True
    except (KeyboardInterrupt, Abort) as exc:
        results.failure = f"interrupted: {str(exc) or 'Ctrl-C'}"
        log(results.failure)
    except Exception as exc:
        results.failure = f"{type(exc).__name__}: {exc}"
        log("failed:\n" + traceback.format_exc())
    finally:
        signal.alarm(0)
        procs.stop_all()
        results.seconds = time.monotonic() - started
    if results.runs or ok:
        if not ok:  # keep the last complete figures in docs/: a partial run goes elsewhere
            plan = dataclasses.replace(plan, out_prefix=workdir / "benchmarks-partial")
        paths = report.write(results, plan)
        print(report.table(results))
        log(f"wrote {', '.join(str(p) for p in paths)} in {results.seconds:.0f} s")
    if ok:
        shutil.rmtree(workdir, ignore_errors=True)
        return 0
    log(f"logs kept in {workdir}")
    return 1


def preflight(plan: Plan) -> None:
    missing = [tool for tool in ("wrk", "taskset", "redis-server") if shutil.which(tool) is None]
    for exe in ("gunicorn", "moto_server", "py-spy"):
        if not (plan.venv / "bin" / exe).exists():
            missing.append(str(plan.venv / "bin" / exe))
    if missing:
        sys.exit(f"bench: missing {', '.join(missing)}: run bench/run, which installs them")
    cpus = procs.expand_cpus(plan.server_cpus) + procs.expand_cpus(plan.generator_cpus)
    try:
        subprocess.run(["taskset", "-c", ",".join(map(str, cpus)), "true"], check=True, timeout=5)
    except subprocess.CalledProcessError:
        sys.exit(f"bench: CPUs {cpus} are not all available here")
