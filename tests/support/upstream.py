"""Helpers for upstream mode's tests and benchmark (docs/upstream.md): the two real
upstreams (a second broker in local mode, and moto_server), counting the calls they get,
and the downstream broker's settings.

Upstream calls are counted where they land: on the upstream broker through its own
``/metrics`` (``broker_requests_total{door="aws",operation="GetOpenIdTokenForDeveloperIdentity"}``,
summed over outcomes and workers), and on moto_server through its request recorder.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from support.clients import cognito_at, create_developer_pool
from support.processes import (
    BrokerServer,
    ManagedProcess,
    ProcessStartError,
    RedisServer,
    broker_env,
    end_process,
    free_port,
    http_ok,
    log_tail,
    refuse_in_fast_lane,
    spawn,
    wait_until,
)

TOKEN_OPERATION = "GetOpenIdTokenForDeveloperIdentity"
UPSTREAM_PROVIDER = "login.upstream.test"
REGION = "us-east-1"
MOTO_START_TIMEOUT = 20.0
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metric_total(base_url: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``, from ``/metrics``."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match["name"] != name:
            continue
        found = dict(_LABEL.findall(match["labels"] or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(match["value"])
    return total


def upstream_token_calls(base_url: str, outcome: str | None = None) -> int:
    """GetOpenIdTokenForDeveloperIdentity requests the upstream broker answered."""
    labels = {"door": "aws", "operation": TOKEN_OPERATION}
    if outcome is not None:
        labels["outcome"] = outcome
    return int(metric_total(base_url, "broker_requests_total", **labels))


def cognito_client(endpoint: str, key_id: str, secret: str) -> Any:
    """A boto3 client at ``endpoint`` (no retries, no machine configuration read)."""
    return cognito_at(
        endpoint,
        key_id,
        secret,
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=10,
    )


def create_pool(client: Any, name: str, provider: str = UPSTREAM_PROVIDER) -> str:
    """A pool at the upstream with its developer provider (by default the one the
    downstream broker is set up with)."""
    return create_developer_pool(client, name, provider)


@contextmanager
def local_upstream(
    key_id: str, secret: str, log_path: Path, env: dict[str, str]
) -> Iterator[BrokerServer]:
    """An upstream for a test module: a broker in local mode with two workers on a Redis of
    its own, accepting the one key pair ``key_id``:``secret``, ``env`` added to its
    environment (its limits)."""
    with (
        RedisServer() as own_redis,
        BrokerServer(
            redis_url=own_redis.url,
            credentials={key_id: secret},
            workers=2,
            env=env,
            log_path=log_path,
        ) as server,
    ):
        yield server


def aws_environment(key_id: str, secret: str) -> dict[str, str]:
    """What boto3's standard credential chain reads, and nothing from this machine."""
    return {
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def upstream_environment(
    *,
    endpoint: str,
    pool_id: str,
    api_key: str,
    provider: str = UPSTREAM_PROVIDER,
    **extra: str,
) -> dict[str, str]:
    """The BROKER_* variables of a downstream broker in upstream mode (trusted door)."""
    env = {
        "BROKER_UPSTREAM": "aws",
        "BROKER_UPSTREAM_POOL_ID": pool_id,
        "BROKER_UPSTREAM_DEVELOPER_PROVIDER": provider,
        "BROKER_UPSTREAM_ENDPOINT_URL": endpoint,
        "BROKER_BACKEND_AUTH": "api_key",
        "BROKER_BACKEND_API_KEYS": api_key,
    }
    env.update(extra)
    return env


class MotoServer(ManagedProcess):
    """``moto_server`` on 127.0.0.1 and a free port, recording every request it gets."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="moto-test-"))
        self.recording = self.dir / "recording.jsonl"
        self.log_path = self.dir / "moto.log"
        self.port = free_port()
        self.executable = Path(sys.prefix) / "bin" / "moto_server"
        self._proc: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        return http_ok(f"{self.url}/moto-api/")

    def start(self) -> Self:
        refuse_in_fast_lane("moto_server")
        if not self.executable.exists():
            raise ProcessStartError(f"{self.executable} not found (pip install 'moto[server]')")
        env = {key: value for key, value in broker_env().items() if not key.startswith("MOTO_")}
        env.update(
            {
                "MOTO_ENABLE_RECORDING": "true",
                "MOTO_RECORDER_FILEPATH": str(self.recording),
                "PYTHONUNBUFFERED": "1",
            }
        )
        args = [str(self.executable), "-H", "127.0.0.1", "-p", str(self.port)]
        with self.log_path.open("ab") as log:
            self._proc = spawn(args, log=log, env=env, cwd=self.dir)
        reason = wait_until(self.ready, self._proc, MOTO_START_TIMEOUT)
        if reason:
            tail = log_tail(self.log_path)
            self.stop()
            raise ProcessStartError(f"moto_server on {self.url} {reason}; log:\n{tail}")
        return self

    def calls(self, operation: str = TOKEN_OPERATION) -> list[dict[str, Any]]:
        """The recorded requests for ``operation``, each with its JSON body decoded."""
        if not self.recording.exists():
            return []
        found = []
        for line in self.recording.read_text().splitlines():
            entry = json.loads(line)
            headers = {key.lower(): value for key, value in entry["headers"].items()}
            if headers.get("x-amz-target", "").endswith(f".{operation}"):
                body = entry["body"]
                raw = base64.b64decode(body) if entry.get("body_encoded") else body.encode()
                found.append(json.loads(raw or b"{}"))
        return found

    def stop(self) -> None:
        if self._proc is not None:
            end_process(self._proc, 10.0, signal.SIGTERM)
        shutil.rmtree(self.dir, ignore_errors=True)


# --- load: passes of many users against the backend door --------------------------------
@dataclass
class PassResult:
    """One pass: every user asked once, ``connections`` requests in flight at a time."""

    requests: int = 0
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)  # "ok", "cached" or the error code
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return sum(n for outcome, n in self.outcomes.items() if outcome not in ("ok", "cached"))

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def ask_token(port: int, api_key: str, user: str, timeout: float = 30.0) -> tuple[str, float]:
    """One POST /v1/token on a fresh connection (gunicorn's sync workers close each one)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        body = json.dumps({"user_id": user})
        conn.request(
            "POST",
            "/v1/token",
            body,
            {"Content-Type": "application/json", "X-Api-Key": api_key},
        )
        response = conn.getresponse()
        answer = json.loads(response.read() or b"{}")
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return type(exc).__name__, time.perf_counter() - started
    finally:
        conn.close()
    elapsed = time.perf_counter() - started
    if response.status == 200:
        return ("cached" if answer["data"]["cached"] else "ok"), elapsed
    return str(answer.get("error", {}).get("code", response.status)), elapsed


def run_pass(
    port: int, api_key: str, users: Sequence[str], connections: int, stop_at: float | None = None
) -> PassResult:
    """Ask for every user's token once (or, with ``stop_at``, cycle until then)."""
    result = PassResult()
    lock = threading.Lock()
    position = iter(range(10**9))

    def worker() -> None:
        while True:
            with lock:
                n = next(position)
            if stop_at is None and n >= len(users):
                return
            if stop_at is not None and time.monotonic() >= stop_at:
                return
            outcome, seconds = ask_token(port, api_key, users[n % len(users)])
            with lock:
                result.requests += 1
                result.outcomes[outcome] += 1
                result.latencies.append(seconds)

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    result.seconds = time.monotonic() - started
    return result


# --- a Cognito that answers slowly --------------------------------------------------------
class SlowCognito:
    """GetOpenIdTokenForDeveloperIdentity on 127.0.0.1, answered after ``delay`` seconds,
    its body sent at once or (``trickle``) a byte every ``trickle`` seconds: what a slow or
    misbehaving upstream does. One identity per login; the token is a JWT-shaped string
    (upstream mode reads its ``iat``/``exp`` without verifying it). Counts its calls; the
    signature of the request is not checked."""

    def __init__(self, delay: float, *, trickle: float = 0.0, lifetime: int = 3600) -> None:
        self.delay = delay
        self.trickle = trickle
        self.lifetime = lifetime
        self.calls = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        cognito = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # kept-alive connections, as AWS serves them

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)))
                with cognito._lock:
                    cognito.calls += 1
                login = next(iter(body.get("Logins", {}).values()), "")
                answer = json.dumps(cognito.answer(body["IdentityPoolId"], login)).encode()
                if cognito._stop.wait(cognito.delay):
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                if not cognito.trickle:
                    self.wfile.write(answer)
                    return
                for byte in answer:
                    if cognito._stop.wait(cognito.trickle):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def answer(self, pool_id: str, login: str) -> dict[str, str]:
        identity = f"{pool_id.partition(':')[0]}:{uuid.uuid5(uuid.NAMESPACE_URL, login)}"
        now = int(time.time())
        claims = {"sub": identity, "aud": pool_id, "iat": now, "exp": now + self.lifetime}
        parts = [{"alg": "RS512", "typ": "JWS"}, claims]
        encoded = [base64.urlsafe_b64encode(json.dumps(p).encode()).rstrip(b"=") for p in parts]
        return {"IdentityId": identity, "Token": b".".join([*encoded, b"c2ln"]).decode()}

    @contextmanager
    def running(self) -> Iterator[SlowCognito]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
