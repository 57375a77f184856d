"""Rate limits, shared by every worker through Redis: 429 TooManyRequestsException past
the optional limits per access key and per identity (issue 5), and past the limits of the
unsigned operations per source address and per pool, which are on by default (issue 14
item 5)."""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from support.clients import cognito_client
from support.identities import unsigned_client
from support.processes import BrokerServer, RedisServer
from support.signing import CONTENT_TYPE, TARGET_PREFIX, post
from support.topologies import Topology

from config.limits import DEFAULT_UNSIGNED_PER_ADDRESS
from config.settings import Settings

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


def test_signed_limits_are_off_by_default(
    broker_server: BrokerServer, pool: dict[str, Any]
) -> None:
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

    from broker.app.factory import create_app
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


# --- the unsigned operations: per source address and per pool, on by default ------------
UNSIGNED_BURST = 40
UNSIGNED_LIMIT = 10  # the per-pool test's


def unsigned_broker(redis_url: str, credentials: dict[str, str], **env: str) -> BrokerServer:
    return BrokerServer(redis_url=redis_url, credentials=credentials, workers=3, env=env)


def open_pool(server: BrokerServer) -> str:
    """A pool that allows unauthenticated identities: every GetId writes one."""
    client = cognito_client(server)
    try:
        return str(
            client.create_identity_pool(
                IdentityPoolName="open", AllowUnauthenticatedIdentities=True
            )["IdentityPoolId"]
        )
    finally:
        client.close()


def identities_in(server: BrokerServer, pool_id: str) -> int:
    client = cognito_client(server)
    try:
        found, kwargs = 0, {"IdentityPoolId": pool_id, "MaxResults": 60}
        while True:
            page = client.list_identities(**kwargs)
            found += len(page["Identities"])
            if "NextToken" not in page:
                return found
            kwargs["NextToken"] = page["NextToken"]
    finally:
        client.close()


def burst(server: BrokerServer, calls: list[Callable[[Any], Any]]) -> tuple[Counter[str], int]:
    """Every call at once (boto3, unsigned, no retries) from 127.0.0.1: "ok" or the status,
    error code and message of each, and how many one-second windows the burst can have
    touched (a slow machine may spread it over more than two)."""
    client = unsigned_client(server.url, max_pool_connections=len(calls))
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[Any], Any]) -> str:
        barrier.wait()
        try:
            call(client)
            return "ok"
        except ClientError as exc:
            error = exc.response["Error"]
            status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
            return f"{status} {error['Code']}: {error['Message']}"

    try:
        with ThreadPoolExecutor(len(calls)) as pool:
            started = time.monotonic()
            outcomes = Counter(pool.map(run, calls))
            return outcomes, math.ceil(time.monotonic() - started) + 1
    finally:
        client.close()


def get_id_from(address: str, server: BrokerServer, pool_id: str) -> tuple[int, dict[str, Any]]:
    """One unsigned GetId sent from ``address`` (any of 127.0.0.0/8 binds here)."""
    conn = http.client.HTTPConnection(
        "127.0.0.1", server.port, timeout=10, source_address=(address, 0)
    )
    try:
        conn.request(
            "POST",
            "/",
            body=json.dumps({"IdentityPoolId": pool_id}),
            headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET_PREFIX + "GetId"},
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.slow
def test_unsigned_calls_are_limited_per_source_address_by_default(
    own_redis: RedisServer, broker_credentials: dict[str, str]
) -> None:
    """Issue 14 item 5: 2,000 GetIds in 6 s from one client, each a new identity in Redis.
    With no rate limit configured, one address now gets 50 calls a second and a 429 past
    them, and a refused call writes nothing; another address is served meanwhile."""
    limit = DEFAULT_UNSIGNED_PER_ADDRESS
    with unsigned_broker(own_redis.url, broker_credentials) as server:
        pool_id = open_pool(server)
        outcomes, windows = burst(
            server, [lambda c: c.get_id(IdentityPoolId=pool_id)] * (3 * limit)
        )
        throttled = (
            f"429 TooManyRequestsException: Rate exceeded: at most {limit} unsigned requests "
            "per second from address 127.0.0.1."
        )
        assert set(outcomes) == {"ok", throttled}, outcomes
        assert outcomes["ok"] <= windows * limit
        assert identities_in(server, pool_id) == outcomes["ok"]

        status, answer = get_id_from("127.0.0.2", server, pool_id)
        assert status == 200 and answer["IdentityId"].startswith("us-east-1:")


@pytest.mark.slow
def test_unsigned_calls_are_limited_per_pool(
    own_redis: RedisServer, broker_credentials: dict[str, str]
) -> None:
    """GetId and GetOpenIdToken count together for the pool, from any address; another
    pool is served meanwhile."""
    with unsigned_broker(
        own_redis.url,
        broker_credentials,
        BROKER_RATE_LIMIT_UNSIGNED_PER_ADDRESS="off",
        BROKER_RATE_LIMIT_UNSIGNED_PER_POOL=str(UNSIGNED_LIMIT),
    ) as server:
        busy, quiet = open_pool(server), open_pool(server)
        status, first = get_id_from("127.0.0.2", server, busy)
        assert status == 200
        identity = first["IdentityId"]
        calls: list[Callable[[Any], Any]] = [
            lambda c: c.get_id(IdentityPoolId=busy),
            lambda c: c.get_open_id_token(IdentityId=identity),
        ] * (UNSIGNED_BURST // 2)
        outcomes, windows = burst(server, calls)
        throttled = (
            "429 TooManyRequestsException: Rate exceeded: at most 10 unsigned requests per "
            f"second for pool '{busy}'."
        )
        assert set(outcomes) == {"ok", throttled}, outcomes
        assert outcomes["ok"] <= windows * UNSIGNED_LIMIT

        status, _ = get_id_from("127.0.0.3", server, quiet)
        assert status == 200


def test_unsigned_limits_default_to_50_and_500_and_switch_off() -> None:
    defaults = Settings.from_env({}).limits
    assert (defaults.unsigned_per_address, defaults.unsigned_per_pool) == (50, 500)
    off = Settings.from_env(
        {
            "BROKER_RATE_LIMIT_UNSIGNED_PER_ADDRESS": "off",
            "BROKER_RATE_LIMIT_UNSIGNED_PER_POOL": "OFF",
        }
    ).limits
    assert (off.unsigned_per_address, off.unsigned_per_pool) == (None, None)
