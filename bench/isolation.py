"""Slow calls and slow clients, before and after: ``.venv/bin/python bench/isolation.py``
(issue 14 items 2 and 4; figures in docs/reliability.md).

REV (``--compare``, default ``main``) is exported with ``git archive`` into a temporary
directory and served from there beside this checkout (same venv); each measurement runs
on both, alternating (REV, this, this, REV, ... for ``--rounds``), so the drift of this
shared machine reaches both alike. Everything listens on 127.0.0.1 (and 127.0.0.2).

1. **upstream**: 3 workers in upstream mode, before an upstream Cognito that answers in
   300 ms (``tests/support/upstream.py``, ``SlowCognito``). wrk asks for 200 cached users'
   tokens at 32 connections for ``--seconds``: alone, then beside 6 clients asking for new
   users (each an upstream call, on a new connection each time, so on every worker).
   Reported: the hits' rate, p50, p99 and max (wrk's), and the misses answered.
2. **jwks**: 1 worker, bearer JWTs checked with a JWKS URL that declares 100,000 bytes and
   sends one every 50 ms; a token starts the first fetch, and ``GET /healthz`` is asked
   every 50 ms for 4 s (1 s timeout each) on the same (only) worker.
3. **slow clients**: 3 workers with the default settings; 5,000 sockets from 127.0.0.2
   each trickling a partial request (reopened when closed); a new client on 127.0.0.1 asks
   for ``/healthz`` every 0.2 s (5 s timeout), 20 times at most or for 20 s.

Every process it starts is stopped when it ends, fails or is interrupted. About 4 minutes
with the defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

from support.backend import (  # noqa: E402
    JWT_AUDIENCE,
    JWT_ISSUER,
    bearer,
    claims_for,
    rs_jwt,
    rsa_key,
)
from support.processes import BrokerServer, RedisServer  # noqa: E402
from support.slow_http import ScriptedServer, json_head  # noqa: E402
from support.trickle import Trickler, healthz  # noqa: E402
from support.upstream import SlowCognito, aws_environment, upstream_environment  # noqa: E402

API_KEY = secrets.token_urlsafe(32)
CREDENTIALS = {"AKIDBENCHISOLATION": secrets.token_urlsafe(30)}
WRK_LUA = """
local prefix = os.getenv("BENCH_PREFIX")
local users = tonumber(os.getenv("BENCH_USERS"))
local key = os.getenv("BENCH_API_KEY")
local n = 0
request = function()
  n = n + 1
  local body = '{"user_id":"' .. prefix .. (n % users) .. '"}'
  return wrk.format("POST", "/v1/token",
    {["Content-Type"] = "application/json", ["X-Api-Key"] = key}, body)
end
"""
HIT_USERS = 200
MISS_CONNECTIONS = 6


def milliseconds(text: str) -> float:
    """wrk's latency text (``850.00us``, ``12.31ms``, ``1.20s``) in ms."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        return float("nan")
    return float(match[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match[2]]


def wrk(port: int, prefix: str, connections: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "hits.lua"
        script.write_text(WRK_LUA)
        env = {**os.environ, "BENCH_PREFIX": prefix, "BENCH_USERS": str(HIT_USERS),
               "BENCH_API_KEY": API_KEY}  # fmt: skip
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "--timeout",
             "10s", "-s", str(script), f"http://127.0.0.1:{port}/v1/token"],
            capture_output=True, text=True, env=env, timeout=seconds + 30, check=True,
        ).stdout  # fmt: skip
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)\s*$", out, re.M)  # "1.24s " ends with a space
    p99 = re.search(r"^\s+99%\s+(\S+)\s*$", out, re.M)
    latency = re.search(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)", out, re.M)
    return {
        "rate": float(rate[1]) if rate else 0.0,
        "p50_ms": milliseconds(p50[1]) if p50 else float("nan"),
        "p99_ms": milliseconds(p99[1]) if p99 else float("nan"),
        "max_ms": milliseconds(latency[3]) if latency else float("nan"),
        "non_2xx": int(non_2xx[1]) if non_2xx else 0,
        "socket_errors": errors[1] if errors else "none",
    }


def ask(port: int, user: str, timeout: float = 30.0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        body = json.dumps({"user_id": user})
        headers = {"Content-Type": "application/json", "X-Api-Key": API_KEY}
        conn.request("POST", "/v1/token", body, headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@contextlib.contextmanager
def misses(port: int, connections: int) -> Iterator[list[float]]:
    """``connections`` clients asking for new users (each an upstream call) meanwhile, a
    new connection each time, so that the misses reach every worker (kept-alive
    connections would stay on the workers they first landed on)."""
    stop = threading.Event()
    latencies: list[float] = []

    def run() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            with contextlib.suppress(OSError, http.client.HTTPException):
                if ask(port, uuid.uuid4().hex) == 200:
                    latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    try:
        yield latencies
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=35)


def upstream(root: Path, cognito: SlowCognito, seconds: float) -> dict[str, Any]:
    pool = f"us-east-1:{uuid.uuid4()}"
    prefix = f"hit-{uuid.uuid4().hex[:8]}-"
    env = {
        **upstream_environment(endpoint=cognito.url, pool_id=pool, api_key=API_KEY),
        **aws_environment("AKIDSLOWCOGNITO", "slow-cognito-secret-key"),
        "BROKER_ACCESS_LOG": "off",
    }
    with (
        RedisServer() as redis,
        BrokerServer(
            redis_url=redis.url, credentials=CREDENTIALS, workers=3, env=env, root=root
        ) as broker,
    ):
        warm = [threading.Thread(target=ask, args=(broker.port, f"{prefix}{n}"))
                for n in range(HIT_USERS)]  # fmt: skip
        for start in range(0, HIT_USERS, 20):  # 20 at a time: under the upstream quota
            for thread in warm[start : start + 20]:
                thread.start()
            for thread in warm[start : start + 20]:
                thread.join(timeout=60)
        alone = wrk(broker.port, prefix, 32, seconds)
        with misses(broker.port, MISS_CONNECTIONS) as answered:
            beside = wrk(broker.port, prefix, 32, seconds)
        return {
            "hits_alone": alone,
            "hits_beside_misses": beside,
            "misses_answered": len(answered),
            "miss_median_ms": round(statistics.median(answered) * 1000, 1) if answered else None,
        }


def jwks(root: Path) -> dict[str, Any]:
    key = rsa_key()
    with (
        ScriptedServer(json_head(100_000), b" " * 100_000, every=0.05).running() as trickling,
        RedisServer() as redis,
    ):
        env = {
            "BROKER_BACKEND_AUTH": "jwt",
            "BROKER_BACKEND_JWT_ISSUER": JWT_ISSUER,
            "BROKER_BACKEND_JWT_AUDIENCE": JWT_AUDIENCE,
            "BROKER_BACKEND_JWT_JWKS_URL": trickling.url,
            "BROKER_BACKEND_POOL_NAME": "isolation",
            "BROKER_BACKEND_DEVELOPER_PROVIDER": "login.isolation",
            "BROKER_ACCESS_LOG": "off",
        }
        with BrokerServer(
            redis_url=redis.url, credentials=CREDENTIALS, workers=1, env=env, root=root
        ) as broker:
            token = {
                **bearer(rs_jwt(claims_for("u"), key, "k")),
                "Content-Type": "application/json",
            }

            def first_token() -> None:
                conn = http.client.HTTPConnection("127.0.0.1", broker.port, timeout=60)
                with contextlib.suppress(OSError, http.client.HTTPException):
                    conn.request("POST", "/v1/token", "{}", token)
                    conn.getresponse().read()
                conn.close()

            threading.Thread(target=first_token, daemon=True).start()
            while trickling.open == 0:
                time.sleep(0.01)
            answered: list[float] = []
            timed_out = 0
            until = time.monotonic() + 4.0
            while time.monotonic() < until:
                try:
                    answered.append(healthz(broker.port, timeout=1.0))
                except (OSError, AssertionError):
                    timed_out += 1
                time.sleep(0.05)
            trickling.stop()  # before the fix, the worker was held until the trickle ended
    return {
        "healthz_answered": len(answered),
        "healthz_timed_out": timed_out,
        "healthz_max_ms": round(max(answered) * 1000, 1) if answered else None,
    }


def slow_clients(root: Path) -> dict[str, Any]:
    with (
        RedisServer() as redis,
        BrokerServer(
            redis_url=redis.url,
            credentials=CREDENTIALS,
            workers=3,
            env={"BROKER_ACCESS_LOG": "off"},
            root=root,
        ) as broker,
        Trickler(broker.port, "127.0.0.2", 5000) as attack,
    ):
        deadline = time.monotonic() + 10
        while attack.opened < 5000 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        answered: list[float] = []
        timed_out = 0
        until = time.monotonic() + 20
        while len(answered) + timed_out < 20 and time.monotonic() < until:
            try:
                answered.append(healthz(broker.port, timeout=5.0))
            except (OSError, AssertionError):
                timed_out += 1
            time.sleep(0.2)
        figures = {
            "attacker_sockets_opened": attack.opened,
            "attacker_closed_by_server": attack.closed_by_server,
        }
    return {
        **figures,
        "new_clients_answered": len(answered),
        "new_clients_timed_out": timed_out,
        "new_client_median_ms": round(statistics.median(answered) * 1000, 1) if answered else None,
        "new_client_max_ms": round(max(answered) * 1000, 1) if answered else None,
    }


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def export(rev: str, into: Path) -> Path:
    tree = into / "tree"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "archive", rev], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", default="main", help="the revision before (default main)")
    parser.add_argument("--rounds", type=int, default=1, help="pairs of runs of each part")
    parser.add_argument("--seconds", type=float, default=8.0, help="each wrk run")
    parser.add_argument("--only", choices=("upstream", "jwks", "slow_clients"), action="append")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 20000)), hard))
    revision = git("rev-parse", "--short", args.compare)
    here = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain")
    report: dict[str, Any] = {
        "before": revision,
        "after": here + ("+changes" if dirty else ""),
        "cpus": os.cpu_count(),
        "runs": [],
    }
    parts: dict[str, Callable[[Path], dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="isolation-") as tmp:
        before = export(args.compare, Path(tmp))
        with SlowCognito(delay=0.3).running() as cognito:
            parts = {
                "upstream": lambda root: upstream(root, cognito, args.seconds),
                "jwks": jwks,
                "slow_clients": slow_clients,
            }
            for name, measure in parts.items():
                if args.only and name not in args.only:
                    continue
                order = [("before", before), ("after", REPO_ROOT)]
                for round_ in range(args.rounds):
                    for side, root in order if round_ % 2 == 0 else order[::-1]:
                        started = time.monotonic()
                        figures = measure(root)
                        run = {"part": name, "side": side, "round": round_ + 1, **figures,
                               "seconds": round(time.monotonic() - started, 1)}  # fmt: skip
                        print(json.dumps(run), flush=True)
                        report["runs"].append(run)
    print(json.dumps(report, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
