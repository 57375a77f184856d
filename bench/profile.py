"""Where a token request's time goes, three ways.

1. ``summarize``: py-spy's raw stacks of every gunicorn worker during a returning-users run
   (wall clock: waiting for Redis, for the client and for the CPU included).
2. ``in_process``: pyinstrument on the WSGI app called in a loop in this process, on one
   core, with the benchmark's Redis (no gunicorn, no HTTP): the request's own cost.
3. ``components``: each step of the token path timed alone (µs per call).

Samples of 1 and 2 are charged the same way: to the first frame, from the leaf up, that
belongs to a known package (a stdlib or C frame, such as json, hashlib or a socket call, is
charged to its caller), with a few leaves named for what they wait on.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from bench import presign, workloads
from bench.procs import REPO_ROOT

Frame = tuple[str, str]  # (function, file)
PY_SPY_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")

IDLE = "idle: waiting for a connection"
WHOLE = "whole request: the WSGI app called directly"
RSA = "RSA-2048 private-key operation (OpenSSL via cryptography)"
KNOWN = (
    "broker", "config", "gunicorn", "flask", "werkzeug", "redis", "joserfc", "cryptography",
    "marshmallow", "prometheus_client", "jinja2", "itsdangerous", "click", "blinker",
)  # fmt: skip
BY_PACKAGE = {
    "joserfc": "JWT assembly around the RSA operation (joserfc)",
    "cryptography": RSA,
    "marshmallow": "request validation (marshmallow + broker/awsjson/validation.py)",
    "redis": "Redis: redis-py client code",
    "gunicorn": "gunicorn: HTTP parsing, worker loop, other",
    "flask": "Flask + werkzeug",
    "werkzeug": "Flask + werkzeug",
    "prometheus_client": "metrics (prometheus_client)",
    "broker": "broker code, other",
    "config": "broker code, other",
}
# (package, file suffix, function) of the first known frame -> a more telling category
SPECIAL: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("gunicorn", "workers/sync.py", ("wait", "accept", "run_for_one", "run_for_multiple"), IDLE),
    ("broker", "server/worker.py", ("_turn",), IDLE),  # the keep-alive worker's select()
    (
        "gunicorn",
        "util.py",
        ("close_graceful",),
        "gunicorn: waiting for the client to close (sync worker: one connection per request)",
    ),
    ("gunicorn", "util.py", ("write", "write_nonblock"), "gunicorn: writing the response"),
    ("redis", "_parsers/socket.py", ("_read_from_socket",), "Redis: waiting for replies"),
    ("redis", "connection.py", ("send_packed_command",), "Redis: sending commands"),
    ("joserfc", "jws_algs.py", ("sign",), RSA),
    *(
        (
            "broker",
            f"server/{name}.py",
            (),
            "HTTP worker: parsing, environ, response (broker/server)",
        )
        for name in ("worker", "parsing", "wsgi")
    ),
    ("broker", "awsjson/sigv4.py", (), "SigV4 verification (broker/awsjson/sigv4.py)"),
    (
        "broker",
        "awsjson/validation.py",
        (),
        "request validation (marshmallow + broker/awsjson/validation.py)",
    ),
    ("broker", "awsjson/schemas.py", (), BY_PACKAGE["marshmallow"]),
)

# Inclusive shares: a sample counts for every step whose function is on its stack.
STEPS: tuple[tuple[str, str, str], ...] = (
    ("the API doors' WSGI layer: doors.FrontDoors", "__call__", "broker/http/pipeline.py"),
    ("Flask: full_dispatch_request (other routes)", "full_dispatch_request", "flask/"),
    ("SigV4: sigv4.verify_request", "verify_request", "sigv4.py"),
    ("validation: validation.load_request", "load_request", "validation.py"),
    ("identity: resolve_developer_login", "resolve_developer_login", "developer.py"),
    ("  store.get_pool", "get_pool", "store/"),
    (
        "  store.resolve_login (Lua script; the backend door also reads its cache entry)",
        "resolve_login",
        "store/",
    ),
    ("    its round trip (ScriptRunner._evalsha)", "_evalsha", "store/script_runner.py"),
    ("sign: TokenSigner.sign", "sign", "tokens/signer.py"),
    ("  the RSA operation", "sign", "jws_algs.py"),
    ("render: render.success", "success", "awsjson/render.py"),
    ("other Redis commands (redis-py execute_command)", "execute_command", "redis/client.py"),
    ("logging (any logging frame)", "", "logging/"),
)


def _relative(file: str) -> str:
    """'…/site-packages/redis/x.py' or '/work/main/broker/x.py' -> 'redis/x.py'."""
    if "site-packages/" in file:
        return file.rsplit("site-packages/", 1)[1]
    root = str(REPO_ROOT) + "/"
    if file.startswith(root):
        return file[len(root) :]
    return file


def _package(file: str) -> str | None:
    head = file.split("/", 1)[0]
    return head if head in KNOWN and "/" in file else None


def charge(frames: Sequence[Frame]) -> str:
    """The category of one sample (frames root first, files relative)."""
    logging_seen = False
    for func, file in reversed(frames):
        if (
            file.startswith("logging/")
            or "glogging" in file
            or file.endswith("broker/observability/logs.py")
        ):
            logging_seen = True
        package = _package(file)
        if package is None:
            continue
        if logging_seen:
            return "logging (access log, JSON log lines)"
        name = func.rsplit(".", 1)[-1]
        for pkg, suffix, funcs, category in SPECIAL:
            if package == pkg and file.endswith(suffix) and (not funcs or name in funcs):
                return category
        return BY_PACKAGE.get(package, f"other packages ({package})")
    return "logging (access log, JSON log lines)" if logging_seen else "interpreter / stdlib"


def _steps(frames: Sequence[Frame]) -> Iterable[str]:
    for label, func_name, file_part in STEPS:
        if any(
            file_part in file and (not func_name or func.rsplit(".", 1)[-1] == func_name)
            for func, file in frames
        ):
            yield label


def _tally(samples: Iterable[tuple[Sequence[Frame], float]]) -> dict[str, Any]:
    cats: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    idle = 0.0
    for frames, weight in samples:
        category = charge(frames)
        if category == IDLE:
            idle += weight
            continue
        cats[category] += weight
        for label in _steps(frames):
            steps[label] += weight
        func, file = next(
            ((f, fl) for f, fl in reversed(frames) if _package(fl)),
            frames[-1] if frames else ("?", "?"),
        )
        leaves[f"{func} ({file})"] += weight
    busy = sum(cats.values())

    def share(counter: Counter[str], keys: Iterable[str] | None = None) -> list[list[Any]]:
        items = counter.most_common() if keys is None else [(k, counter[k]) for k in keys]
        return [[k, v, 100.0 * v / busy if busy else 0.0] for k, v in items]

    return {
        "busy": busy,
        "idle": idle,
        "categories": share(cats),
        "steps": share(steps, [label for label, _, _ in STEPS]),
        "top_frames": share(Counter(dict(leaves.most_common(12)))),
    }


# --- 1. py-spy on the workers ----------------------------------------------------------------
def _py_spy_samples(path: Path) -> Iterable[tuple[list[Frame], float]]:
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        parts = stack.split(";")
        processes = sum(1 for p in parts if p.startswith("process "))
        if processes < 2:
            continue  # the master (arbiter), not a worker
        frames = []
        for raw in parts[processes:]:
            m = PY_SPY_FRAME.match(raw.strip())
            frames.append((m["func"], _relative(m["file"])) if m else (raw.strip(), ""))
        yield frames, float(count)


def summarize(path: Path) -> dict[str, Any]:
    result = _tally(_py_spy_samples(path))
    result["kind"] = "py-spy"
    return result


# --- 2. pyinstrument in-process --------------------------------------------------------------
def _settings(redis_url: str, broker_url: str, target: presign.Target, **extra: str) -> Any:
    from config.settings import Settings

    return Settings.from_env(
        {
            "REDIS_URL": redis_url,
            "BROKER_BIND": target.host,
            "BROKER_ISSUER": broker_url,
            "BROKER_CREDENTIALS": f"{target.key_id}:{target.secret}",
            **extra,
        }
    )


def _wsgi_call(settings: Any, pool_id: str, target: presign.Target) -> Callable[[], bytes]:
    """A returning user's signed GetOpenIdTokenForDeveloperIdentity, sent to a new app."""
    body = presign.token_body(pool_id, workloads.PROVIDER, "ret-1")
    headers = presign.sign(target, workloads.OPERATION, body)
    return _app_call(settings, "/", f"http://{target.host}", headers, body)


def _app_call(
    settings: Any, path: str, base_url: str, headers: dict[str, str], body: bytes
) -> Callable[[], bytes]:
    """``POST path`` to an app built from ``settings``, called as WSGI (no server, no
    HTTP); the call raises unless the answer is a 200."""
    from werkzeug.test import EnvironBuilder

    from broker.app.factory import create_app

    app = create_app(settings)
    environ = EnvironBuilder(
        path=path, method="POST", base_url=base_url, headers=headers, data=body
    ).get_environ()

    def call() -> bytes:
        env = dict(environ)
        env["wsgi.input"] = io.BytesIO(body)
        status: list[str] = []
        data = b"".join(app.wsgi_app(env, lambda s, h, e=None: status.append(s)))
        if not status or not status[0].startswith("200"):
            raise RuntimeError(f"{status} {data[:200]!r}")
        return data

    return call


def in_process(
    *, redis_url: str, broker_url: str, pool_id: str, target: presign.Target, seconds: float
) -> dict[str, Any]:
    """pyinstrument over ``seconds`` of WSGI calls, and the plain cost per request."""
    from pyinstrument import Profiler

    call = _wsgi_call(_settings(redis_url, broker_url, target), pool_id, target)
    for _ in range(50):
        call()
    # Without the profiler first: wall and CPU per request.
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds / 2 and n < 20_000:
        call()
        n += 1
    wall_us = 1e6 * (time.perf_counter() - t0) / n
    cpu_us = 1e6 * (time.process_time() - c0) / n
    profiler = Profiler(interval=0.001)
    profiler.start()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        call()
    profiler.stop()
    session = profiler.last_session
    samples: list[tuple[list[Frame], float]] = []
    for stack, weight in session.frame_records if session is not None else []:
        frames = []
        for info in stack:
            parts = info.split("\x00")
            frames.append((parts[0], _relative(parts[1]) if len(parts) > 1 else ""))
        samples.append((frames, weight))
    result = _tally(samples)
    result.update(kind="pyinstrument", wall_us=wall_us, cpu_us=cpu_us, requests=n)
    result["tree"] = profiler.output_text(unicode=False, color=False, show_all=False)
    return result


# --- 3. each step alone ----------------------------------------------------------------------
def _time(
    fn: Callable[[], object], seconds: float = 0.8, max_calls: int = 20_000
) -> tuple[float, float]:
    """(wall µs, CPU µs) per call: CPU time does not count waiting for Redis or for a CPU."""
    fn()
    calls, start, cpu = 0, time.perf_counter(), time.process_time()
    deadline = start + seconds
    while calls < max_calls and time.perf_counter() < deadline:
        fn()
        calls += 1
    n = max(calls, 1)
    return 1e6 * (time.perf_counter() - start) / n, 1e6 * (time.process_time() - cpu) / n


def components(
    *, redis_url: str, broker_url: str, pool_id: str, target: presign.Target
) -> dict[str, Any]:
    """µs per call of each step of the token path in this process (steps whose API changed
    are reported as unavailable)."""
    from datetime import UTC, datetime

    settings = _settings(redis_url, broker_url, target)
    body = presign.token_body(pool_id, workloads.PROVIDER, "ret-1")
    headers = presign.sign(target, workloads.OPERATION, body)
    out: dict[str, Any] = {}
    services: list[Any] = []

    def svc() -> Any:
        if not services:
            from broker.app.wiring import build_services

            services.append(build_services(settings))
        return services[0]

    def step(name: str, make: Callable[[], Callable[[], object]]) -> None:
        try:
            wall, cpu = _time(make())
            out[name] = {"wall_us": round(wall, 1), "cpu_us": round(cpu, 1)}
        except Exception as exc:  # noqa: BLE001 - an API changed under us: say so
            out[name] = {"error": f"{type(exc).__name__}: {str(exc)[:100]}"}

    def sigv4() -> Callable[[], object]:
        from broker.awsjson import sigv4 as mod

        now = datetime.now(UTC)
        creds = {target.key_id: target.secret}
        return lambda: mod.verify_request(
            "POST", "/", "", headers, body, credentials=creds, region=settings.region, now=now
        )

    def validation() -> Callable[[], object]:
        from broker.awsjson import validation as mod

        return lambda: mod.load_request(workloads.OPERATION, body)

    def resolve() -> Callable[[], object]:
        from broker.identity.developer import resolve_developer_login

        s = svc()
        return lambda: resolve_developer_login(
            s.store,
            pool_id=pool_id,
            logins={workloads.PROVIDER: "ret-1"},
            identity_id=None,
            region=settings.region,
            now=time.time(),
        )

    def get_pool() -> Callable[[], object]:
        s = svc()
        return lambda: s.store.get_pool(pool_id)

    def ping() -> Callable[[], object]:
        s = svc()
        return lambda: s.store.redis.ping()

    def signing() -> Callable[[], object]:
        from broker.tokens.claims import developer_claims

        s = svc()
        claims = developer_claims(
            issuer=broker_url,
            pool_id=pool_id,
            pool_arn=s.pool_arn(pool_id),
            identity_id="us-east-1:00000000-0000-4000-8000-000000000000",
            provider=workloads.PROVIDER,
            user_id="ret-1",
            issued_at=int(time.time()),
            duration=900,
        )
        return lambda: s.signer.sign(claims)

    def backend_hit() -> Callable[[], object]:
        key = "k" * 40
        settings = _settings(
            redis_url,
            broker_url,
            target,
            BROKER_BACKEND_AUTH="api_key",
            BROKER_BACKEND_API_KEYS=key,
            BROKER_BACKEND_POOL_NAME="bench-inprocess",
            BROKER_BACKEND_DEVELOPER_PROVIDER="login.inprocess",
        )
        headers = {"Content-Type": "application/json", "X-Api-Key": key}
        call = _app_call(
            settings, "/v1/token", f"http://{target.host}", headers, b'{"user_id":"user-1"}'
        )
        call()  # the first one signs and fills the cache
        return call

    step(WHOLE, lambda: _wsgi_call(settings, pool_id, target))
    step("sigv4.verify_request", sigv4)
    step("validation.load_request", validation)
    step("resolve_developer_login (get_pool + the Lua script)", resolve)
    step("  store.get_pool alone", get_pool)
    step("  a bare Redis PING, for scale", ping)
    step("TokenSigner.sign (RS512 JWT)", signing)
    import logging

    broker_log = logging.getLogger("broker")
    level = broker_log.level
    broker_log.setLevel(logging.WARNING)  # the in-process app's start-up lines
    try:
        step("POST /v1/token, cache hit: the WSGI app called directly", backend_hit)
    finally:
        broker_log.setLevel(level)
    return out


def pinned(cpu: int, fn: Callable[[], Any]) -> Any:
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        return fn()
    finally:
        os.sched_setaffinity(0, previous)


# --- report ------------------------------------------------------------------------------------
def _share_table(title: str, rows: list[list[Any]], unit: str) -> list[str]:
    out = [f"| {title} | {unit} | share |", "|---|---|---|"]
    out += [
        f"| {k} | {v:,.2f} | {p:.1f} % |" if unit == "s" else f"| {k} | {v:,.0f} | {p:.1f} % |"
        for k, v, p in rows
    ]
    return out


def markdown(profile: dict[str, Any]) -> list[str]:
    out = ["## Profile of the token path", ""]
    spy = profile.get("py_spy") or {}
    if "error" in spy:
        out += [f"py-spy failed: {spy['error']}", ""]
    elif spy:
        busy, idle = spy["busy"], spy["idle"]
        total = busy + idle
        out += [
            "### 1. py-spy on the gunicorn workers under load (wall clock)",
            "",
            "`py-spy record --subprocesses --idle --nonblocking --rate 200` on every worker "
            f"during {profile.get('seconds', 0):g} s of returning users at 32 connections "
            f"({profile.get('rps_while_profiling', 0):,.0f} req/s meanwhile). {total:,.0f} "
            f"samples, {100 * idle / total if total else 0:.0f} % idle (waiting for a "
            "connection); shares below are of the other samples, so they include waiting "
            "for Redis, for the client and for a CPU (a worker preempted inside a socket call "
            "is sampled there).",
            "",
        ]
        out += _share_table(
            "where (first known frame from the leaf up)", spy["categories"], "samples"
        )
        out += ["", "Inclusive (a sample counts for every step on its stack):", ""]
        out += _share_table("step", spy["steps"], "samples")
        out.append("")
    proc = profile.get("in_process") or {}
    if "error" in proc:
        out += [f"In-process profile failed: {proc['error']}", ""]
    elif proc:
        out += [
            "### 2. pyinstrument in-process (the request's own cost)",
            "",
            "The WSGI app called directly in a loop on one core (no gunicorn, no HTTP), "
            f"returning users against the same Redis: **{proc['wall_us']:,.0f} µs per "
            f"request wall, {proc['cpu_us']:,.0f} µs CPU** without the profiler "
            f"({proc['requests']:,} requests). Then pyinstrument (1 ms interval), charged the "
            "same way:",
            "",
        ]
        out += _share_table("where", proc["categories"], "s")
        out += ["", "Inclusive:", ""]
        out += _share_table("step", proc["steps"], "s")
        out += [
            "",
            "<details><summary>pyinstrument call tree</summary>",
            "",
            "```",
            *proc.get("tree", "").strip().splitlines()[:80],
            "```",
            "",
            "</details>",
            "",
        ]
    comps = profile.get("components") or {}
    if comps:
        whole = comps.get(WHOLE, {}).get("cpu_us")
        out += [
            "### 3. Each step alone, in-process, one core (wall and CPU µs per call)",
            "",
            "CPU time leaves out waiting for Redis and for a CPU, so it is the steadiest "
            "figure on a shared machine; *share* is of the whole request's CPU.",
            "",
            "| step | wall µs | CPU µs | share of the request's CPU |",
            "|---|---|---|---|",
        ]
        for name, v in comps.items():
            if "error" in v:
                out.append(f"| {name} | unavailable: {v['error']} | | |")
                continue
            share = (
                f"{100 * v['cpu_us'] / whole:.0f} %" if whole and "/v1/token" not in name else ""
            )
            out.append(f"| {name} | {v['wall_us']:,.0f} | {v['cpu_us']:,.0f} | {share} |")
        out.append("")
    return out
