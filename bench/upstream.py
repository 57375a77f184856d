"""Upstream mode under AWS's quota: ``.venv/bin/python bench/upstream.py`` (docs/upstream.md).

Starts, on 127.0.0.1 only, an upstream broker in local mode limited to 50 requests/s per
access key (``BROKER_RATE_LIMIT_PER_ACCESS_KEY=50``: TooManyRequestsException past it, as AWS
limits GetOpenIdTokenForDeveloperIdentity), and a downstream broker in upstream mode in front
of it, each on its own redis-server. Then 2,000 distinct users ask the downstream's
``POST /v1/token`` for a token:

1. the first pass: every user once (each is an upstream call, at most 50/s);
2. a second full pass, and then more passes for ``--seconds`` (cache hits): any throttling
   error here fails the run;

and reports the sustained request rate of the repeated passes, the upstream calls and the
429s the upstream answered. Bounded: under 2 minutes with the defaults; every process it
starts is stopped when it ends, fails or is interrupted. Exit status 1 when a request after
the first pass failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

from support.processes import BrokerServer, RedisServer  # noqa: E402
from support.upstream import (  # noqa: E402
    PassResult,
    aws_environment,
    cognito_client,
    create_pool,
    run_pass,
    upstream_environment,
    upstream_token_calls,
)

API_KEY = secrets.token_urlsafe(32)
KEY_ID = "AKIDBENCHUPSTREAM"
SECRET = secrets.token_urlsafe(30)
UPSTREAM_LIMIT = 50
MAX_RUN_SECONDS = 115.0
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


def describe(name: str, result: PassResult) -> dict[str, Any]:
    return {
        "pass": name,
        "requests": result.requests,
        "seconds": round(result.seconds, 2),
        "rate": round(result.rate, 1),
        "outcomes": dict(result.outcomes),
        "p50_ms": round(result.percentile(0.5) * 1000, 1),
        "p99_ms": round(result.percentile(0.99) * 1000, 1),
    }


def run_wrk(port: int, prefix: str, users: int, connections: int, seconds: float) -> dict[str, Any]:
    """The same repeated requests from wrk (a C load generator: far less client CPU than
    Python threads on the same cores). Non-2xx answers are counted by wrk itself."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "upstream.lua"
        script.write_text(WRK_LUA)
        env = {**os.environ, "BENCH_PREFIX": prefix, "BENCH_USERS": str(users),
               "BENCH_API_KEY": API_KEY}  # fmt: skip
        threads = min(2, connections)
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", "--latency",
             "-s", str(script), f"http://127.0.0.1:{port}/v1/token"],
            capture_output=True, text=True, env=env, timeout=seconds + 30, check=True,
        ).stdout  # fmt: skip
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    p50 = re.search(r"50%\s+(\S+)", out)
    p99 = re.search(r"99%\s+(\S+)", out)
    return {
        "pass": "wrk",
        "requests": int(total[1]) if total else 0,
        "rate": float(rate[1]) if rate else 0.0,
        "non_2xx": int(non_2xx[1]) if non_2xx else 0,
        "socket_errors": errors[1] if errors else "none",
        "p50": p50[1] if p50 else "",
        "p99": p99[1] if p99 else "",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=15.0, help="repeated passes, after two")
    parser.add_argument("--no-wrk", action="store_true", help="skip the wrk run (also when absent)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) + 1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    started = time.monotonic()
    prefix = f"bench-{uuid.uuid4().hex[:12]}-"
    users = [f"{prefix}{n}" for n in range(args.users)]
    report: dict[str, Any] = {
        "users": args.users,
        "connections": args.connections,
        "downstream_workers": args.workers,
        "upstream_limit_per_second": UPSTREAM_LIMIT,
        "cpus": os.cpu_count(),
    }
    with RedisServer() as up_redis, RedisServer() as down_redis:
        upstream = BrokerServer(
            redis_url=up_redis.url,
            credentials={KEY_ID: SECRET},
            workers=2,
            env={
                "BROKER_RATE_LIMIT_PER_ACCESS_KEY": str(UPSTREAM_LIMIT),
                "BROKER_ACCESS_LOG": "off",
            },
        )
        with upstream:
            admin = cognito_client(upstream.url, KEY_ID, SECRET)
            pool_id = create_pool(admin, f"bench_{uuid.uuid4().hex}")
            admin.close()
            downstream = BrokerServer(
                redis_url=down_redis.url,
                credentials={"AKIDBENCHDOWNSTREAM": secrets.token_urlsafe(30)},
                workers=args.workers,
                env={
                    **upstream_environment(endpoint=upstream.url, pool_id=pool_id, api_key=API_KEY),
                    **aws_environment(KEY_ID, SECRET),
                    "BROKER_ACCESS_LOG": "off",
                },
            )
            with downstream:
                calls_before = upstream_token_calls(upstream.url)
                first = run_pass(downstream.port, API_KEY, users, args.connections)
                print(json.dumps(describe("first", first)), flush=True)
                second = run_pass(downstream.port, API_KEY, users, args.connections)
                print(json.dumps(describe("second", second)), flush=True)
                budget = MAX_RUN_SECONDS - (time.monotonic() - started)
                seconds = max(1.0, min(args.seconds, budget))
                repeated = run_pass(
                    downstream.port,
                    API_KEY,
                    users,
                    args.connections,
                    stop_at=time.monotonic() + seconds,
                )
                print(json.dumps(describe("repeated", repeated)), flush=True)
                use_wrk = not args.no_wrk and shutil.which("wrk") is not None
                budget = MAX_RUN_SECONDS - (time.monotonic() - started) - 5
                wrk = None
                if use_wrk and budget >= 3:
                    wrk = run_wrk(
                        downstream.port, prefix, args.users, args.connections,
                        min(args.seconds, budget),
                    )  # fmt: skip
                    print(json.dumps(wrk), flush=True)
                    report["wrk"] = wrk
                report["passes"] = [describe(n, r) for n, r in (("first", first),
                                    ("second", second), ("repeated", repeated))]  # fmt: skip
                report["upstream_calls"] = upstream_token_calls(upstream.url) - calls_before
                report["upstream_throttled"] = upstream_token_calls(
                    upstream.url, outcome="TooManyRequestsException"
                )
    after_first = second.errors + repeated.errors + (wrk["non_2xx"] if wrk else 0)
    report["errors_after_first_pass"] = after_first
    report["sustained_rate"] = round(repeated.rate, 1)
    report["run_seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(report, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if after_first else 0


if __name__ == "__main__":
    sys.exit(main())
