"""Optional rate limits, shared by every worker through Redis (issue 5): 429
TooManyRequestsException past the limit per access key and per identity."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

import pytest
from support.processes import BrokerServer
from support.signing import post
from support.topologies import Topology

pytestmark = pytest.mark.every_topology

PROVIDER = "login.limits"


def blast(server: BrokerServer, bodies: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, str]]:
    """Send every (operation, body) at once from many threads; (status, __type) of each."""
    results: list[tuple[int, str]] = []
    barrier = threading.Barrier(len(bodies))

    def send(operation: str, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        barrier.wait()
        response = post(
            server.url,
            raw,
            operation=operation,
            key_id=server.access_key_id,
            secret=server.secret_access_key,
        )
        kind = "" if response.status_code == 200 else response.json()["__type"]
        results.append((response.status_code, kind))

    threads = [threading.Thread(target=send, args=item) for item in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.fixture(scope="module")
def limited(store: Topology, broker_credentials: dict[str, str]) -> Any:
    with BrokerServer(
        redis_env=store.env(),
        credentials=broker_credentials,
        workers=3,
        env={"BROKER_RATE_LIMIT_PER_ACCESS_KEY": "15", "BROKER_RATE_LIMIT_PER_IDENTITY": "3"},
    ) as server:
        yield server


def new_pool(server: BrokerServer) -> str:
    time.sleep(1.1)  # a fresh one-second window for the access key
    body = json.dumps(
        {
            "IdentityPoolName": "limits",
            "AllowUnauthenticatedIdentities": False,
            "DeveloperProviderName": PROVIDER,
        }
    ).encode()
    response = post(
        server.url,
        body,
        operation="CreateIdentityPool",
        key_id=server.access_key_id,
        secret=server.secret_access_key,
    )
    assert response.status_code == 200, response.text
    time.sleep(1.1)
    return str(response.json()["IdentityPoolId"])


def test_past_the_access_key_limit_requests_get_429(limited: BrokerServer) -> None:
    pool = new_pool(limited)
    bodies = [
        (
            "GetOpenIdTokenForDeveloperIdentity",
            {"IdentityPoolId": pool, "Logins": {PROVIDER: f"u{i}"}},
        )
        for i in range(40)
    ]
    outcomes = Counter(blast(limited, bodies))
    assert set(outcomes) <= {(200, ""), (429, "TooManyRequestsException")}
    assert outcomes[(429, "TooManyRequestsException")] >= 1
    assert outcomes[(200, "")] <= 2 * 15  # the burst may straddle two one-second windows


def test_past_the_identity_limit_tokens_get_429(limited: BrokerServer) -> None:
    pool = new_pool(limited)
    bodies = [
        (
            "GetOpenIdTokenForDeveloperIdentity",
            {"IdentityPoolId": pool, "Logins": {PROVIDER: "same"}},
        )
        for _ in range(10)
    ]
    outcomes = Counter(blast(limited, bodies))
    assert set(outcomes) <= {(200, ""), (429, "TooManyRequestsException")}
    assert outcomes[(429, "TooManyRequestsException")] >= 1
    assert outcomes[(200, "")] <= 2 * 3


def test_limits_are_off_by_default(broker_server: BrokerServer, pool: dict[str, Any]) -> None:
    bodies = [
        (
            "GetOpenIdTokenForDeveloperIdentity",
            {"IdentityPoolId": pool["IdentityPoolId"], "Logins": {"login.example.dev": "same"}},
        )
        for _ in range(40)
    ]
    assert Counter(blast(broker_server, bodies)) == {(200, ""): 40}


def test_the_backend_door_answers_rate_limited_past_the_identity_limit(
    store: Topology,
) -> None:
    from support.backend import API_KEY, Clock

    from broker.factory import create_app
    from config.settings import Settings

    clock = Clock()
    settings = Settings.from_env(
        {
            **store.env(),
            "BROKER_CREDENTIALS": "AKIDLIMITS:limits-test-secret-0123456789",
            "BROKER_BACKEND_AUTH": "api_key",
            "BROKER_BACKEND_API_KEYS": API_KEY,
            "BROKER_BACKEND_POOL_NAME": "rate limited backend",
            "BROKER_BACKEND_DEVELOPER_PROVIDER": "login.limits",
            "BROKER_RATE_LIMIT_PER_IDENTITY": "2",
        }
    )
    client = create_app(settings, clock=clock).test_client()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    statuses = [
        client.post("/v1/token", json={"user_id": "busy-user"}, headers=headers) for _ in range(4)
    ]
    assert [r.status_code for r in statuses] == [200, 200, 429, 429]
    error = statuses[2].get_json()
    assert error["success"] is False
    assert error["error"]["code"] == "RATE_LIMITED"
    assert "at most 2 tokens per second" in error["error"]["message"]
    clock.advance(1)  # the next second is a new window
    assert (
        client.post("/v1/token", json={"user_id": "busy-user"}, headers=headers).status_code == 200
    )
