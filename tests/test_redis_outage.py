"""Redis going away under load: fast documented errors during the outage, /readyz 503 with
the reason, and full service again within seconds of Redis returning, with no restart. Both
front doors: the AWS API answers InternalErrorException (500), the backend door
``POST /v1/token`` UNAVAILABLE (503)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

import pytest
import requests
from support.clients import cognito_client, create_developer_pool
from support.faults import record_figures
from support.processes import REDIS_DURABLE_CONFIG, BrokerServer, RedisServer
from support.signing import post

pytestmark = pytest.mark.slow  # servers or subprocesses of its own: not the fast lane

PROVIDER = "login.outage"
OP = "GetOpenIdTokenForDeveloperIdentity"
API_KEY = "outage-test-api-key-0123456789abcdef"
BACKEND_ENV = {
    "BROKER_BACKEND_AUTH": "api_key",
    "BROKER_BACKEND_API_KEYS": API_KEY,
    "BROKER_BACKEND_POOL_NAME": "outage backend",
    "BROKER_BACKEND_DEVELOPER_PROVIDER": "login.outage.backend",
}


def test_redis_stopped_under_load(broker_credentials: dict[str, str]) -> None:
    with (
        RedisServer(REDIS_DURABLE_CONFIG) as redis_server,
        BrokerServer(
            redis_url=redis_server.url, credentials=broker_credentials, workers=3, env=BACKEND_ENV
        ) as server,
    ):
        client: Any = cognito_client(server)
        pool_id = create_developer_pool(client, "outage", PROVIDER)

        results: list[tuple[float, float, int, str]] = []  # (sent, seconds, status, type)
        backend: list[tuple[float, float, int, str]] = []  # the same for POST /v1/token
        stop = threading.Event()

        def load(n: int) -> None:
            deadline = time.monotonic() + 30  # bounded whatever happens
            i = 0
            while not stop.is_set() and time.monotonic() < deadline:
                body = json.dumps(
                    {"IdentityPoolId": pool_id, "Logins": {PROVIDER: f"u{n}-{i % 20}"}}
                )
                sent = time.monotonic()
                try:
                    response = post(
                        server.url,
                        body.encode(),
                        operation=OP,
                        key_id=server.access_key_id,
                        secret=server.secret_access_key,
                    )
                    kind = "" if response.status_code == 200 else response.json()["__type"]
                    results.append((sent, time.monotonic() - sent, response.status_code, kind))
                except requests.RequestException as exc:
                    results.append((sent, time.monotonic() - sent, 0, type(exc).__name__))
                i += 1

        def backend_load() -> None:
            deadline = time.monotonic() + 30
            i = 0
            while not stop.is_set() and time.monotonic() < deadline:
                sent = time.monotonic()
                try:
                    response = requests.post(
                        f"{server.url}/v1/token",
                        json={"user_id": f"b-{i % 20}"},
                        headers={"X-Api-Key": API_KEY},
                        timeout=10,
                    )
                    ok = response.status_code == 200
                    code = "" if ok else response.json()["error"]["code"]
                    backend.append((sent, time.monotonic() - sent, response.status_code, code))
                except requests.RequestException as exc:
                    backend.append((sent, time.monotonic() - sent, 0, type(exc).__name__))
                i += 1

        threads = [threading.Thread(target=load, args=(n,)) for n in range(3)]
        threads.append(threading.Thread(target=backend_load))
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        killed_at = time.monotonic()
        redis_server.kill()
        time.sleep(1.0)
        ready = requests.get(f"{server.url}/readyz", timeout=5)
        time.sleep(1.5)
        redis_server.restart()
        back_at = time.monotonic()
        time.sleep(4.0)
        after = requests.get(f"{server.url}/readyz", timeout=5)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    record_figures(
        "Redis outage under load",
        {
            "faults_injected": 1,
            "aws_requests_sent": len(results),
            "aws_outcomes": dict(
                Counter(f"{status} {kind}".strip() for _, _, status, kind in results)
            ),
            "backend_requests_sent": len(backend),
            "backend_outcomes": dict(
                Counter(f"{status} {code}".strip() for _, _, status, code in backend)
            ),
            "slowest_seconds": round(max((s for _, s, _, _ in results + backend), default=0), 3),
        },
    )
    assert ready.status_code == 503
    assert any(r.startswith("redis unreachable") for r in ready.json()["reasons"])
    assert after.status_code == 200

    assert results, "the load produced no requests"
    slowest = max(seconds for _, seconds, _, _ in results)
    assert slowest < 2.0, f"a request took {slowest:.2f} s"
    outcomes = {(status, kind) for _, _, status, kind in results}
    assert outcomes <= {(200, ""), (500, "InternalErrorException")}, outcomes
    during = [r for r in results if killed_at + 0.2 < r[0] < back_at - 0.2]
    assert during and all(status == 500 for _, _, status, _ in during)
    first_success = min(
        (
            sent + seconds
            for sent, seconds, status, _ in results
            if sent > back_at and status == 200
        ),
        default=None,
    )
    assert first_success is not None, "no request succeeded after Redis came back"
    assert first_success - back_at < 5.0
    before = [r for r in results if r[0] < killed_at - 0.1]
    assert before and all(status == 200 for _, _, status, _ in before)

    # the backend door: UNAVAILABLE at once during the outage, tokens again after it
    assert backend, "the backend load produced no requests"
    assert max(seconds for _, seconds, _, _ in backend) < 2.0
    assert {(status, code) for _, _, status, code in backend} <= {(200, ""), (503, "UNAVAILABLE")}
    during = [r for r in backend if killed_at + 0.2 < r[0] < back_at - 0.2]
    assert during and all(status == 503 for _, _, status, _ in during)
    assert any(sent > back_at and status == 200 for sent, _, status, _ in backend)
    assert all(status == 200 for sent, _, status, _ in backend if sent < killed_at - 0.1)
