"""Upstream mode when the upstream throttles or goes away: cached users keep their tokens,
new users get UNAVAILABLE within the deadline (then at once, the breaker open), and service
resumes by itself when the upstream returns. The upstream is a real broker in local mode,
stopped and started again on the same port; it limits each identity to one token per second,
which is how its throttling (429 TooManyRequestsException, as AWS answers) is provoked.
"""

from __future__ import annotations

import calendar
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from support.backend import API_KEY, TRUSTED, Clock, door_client, token_for
from support.processes import BrokerServer, RedisServer
from support.upstream import (
    aws_environment,
    cognito_client,
    create_pool,
    local_upstream,
    upstream_environment,
    upstream_token_calls,
)

pytestmark = pytest.mark.slow  # servers or subprocesses of its own: not the fast lane

KEY_ID = "AKIDOUTAGE"
SECRET = secrets.token_urlsafe(30)
DEADLINE = 1.0
COOLDOWN = 1.0
#: A short budget: connect 0.2 s + read 0.5 s, so a request spends at most 1 s upstream.
TIMING = {
    "BROKER_UPSTREAM_DEADLINE": str(DEADLINE),
    "BROKER_UPSTREAM_CONNECT_TIMEOUT": "0.2",
    "BROKER_UPSTREAM_READ_TIMEOUT": "0.5",
    "BROKER_UPSTREAM_BREAKER_FAILURES": "3",
    "BROKER_UPSTREAM_BREAKER_COOLDOWN": str(COOLDOWN),
}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerServer]:
    with local_upstream(
        KEY_ID,
        SECRET,
        tmp_path_factory.mktemp("outage-upstream") / "gunicorn.log",
        {"BROKER_RATE_LIMIT_PER_IDENTITY": "1"},
    ) as server:
        yield server


@pytest.fixture
def door(
    redis_server: RedisServer,
    broker_credentials: dict[str, str],
    upstream: BrokerServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., FlaskClient]:
    for name, value in aws_environment(KEY_ID, SECRET).items():
        monkeypatch.setenv(name, value)
    admin = cognito_client(upstream.url, KEY_ID, SECRET)
    pool_id = create_pool(admin, f"outage_{uuid.uuid4().hex}")
    admin.close()

    def make(clock: Callable[[], float] = time.time, **env: str) -> FlaskClient:
        upstream_env = upstream_environment(endpoint=upstream.url, pool_id=pool_id, api_key=API_KEY)
        values = {**upstream_env, **TIMING, **env}
        return door_client(redis_server.url, broker_credentials, values, clock)

    return make


def ask(client: FlaskClient, user: str, **body: Any) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    response = client.post("/v1/token", headers=TRUSTED, json={"user_id": user, **body})
    return response.status_code, response.json or {}, time.monotonic() - started


def epoch(iso8601: str) -> float:
    return float(calendar.timegm(time.strptime(iso8601, "%Y-%m-%dT%H:%M:%SZ")))


def start_of_a_second() -> None:
    """Wait (under a second) for the next second to begin: the upstream's limits count
    fixed one-second windows."""
    time.sleep(1.0 - time.time() % 1.0 + 0.01)


def test_throttling_serves_a_valid_cached_token_or_answers_rate_limited(
    door: Callable[..., FlaskClient], upstream: BrokerServer
) -> None:
    """The upstream allows one token per identity per second: a second call for the same
    identity in that second is throttled (429). The scenario must fit in one second of the
    upstream's clock; on a machine too busy for that it is tried again, three times at most."""
    clock = Clock()
    client = door(clock, BROKER_UPSTREAM_DEADLINE="0.9")
    for _ in range(3):
        start_of_a_second()
        clock.now = float(int(time.time()))
        user = f"throttled-{uuid.uuid4().hex[:8]}"
        began = time.time()
        before = upstream_token_calls(upstream.url, outcome="TooManyRequestsException")
        kept = token_for(client, user)  # the identity's one token this second
        clock.advance(500)  # past the reuse threshold: the next request goes upstream
        served = ask(client, user)
        refused = ask(client, user, token_duration=600)  # nothing cached for this duration
        if int(time.time()) == int(began):
            break
    else:
        pytest.fail("three tries, and the scenario never fit in one second")

    status, answer, _ = served
    assert status == 200, answer
    assert answer["data"]["token"] == kept["token"] and answer["data"]["cached"] is True
    status, answer, elapsed = refused
    assert status == 429, answer
    assert answer["error"]["code"] == "RATE_LIMITED"
    assert "throttling" in answer["error"]["message"]
    assert elapsed < 0.9 + 0.3
    assert upstream_token_calls(upstream.url, outcome="TooManyRequestsException") > before


def test_an_outage_keeps_cached_users_served_and_resumes_by_itself(
    door: Callable[..., FlaskClient], upstream: BrokerServer
) -> None:
    clock = Clock()
    client = door(clock)
    users = [f"outage-user-{n}" for n in range(5)]
    kept = {user: token_for(client, user) for user in users}

    upstream.stop()
    try:
        # Cached users: their tokens, without asking the (dead) upstream.
        for user in users:
            assert token_for(client, user)["token"] == kept[user]["token"]

        # A new user: UNAVAILABLE, within the deadline.
        status, answer, elapsed = ask(client, "new-during-outage")
        assert status == 503, answer
        assert answer["error"]["code"] == "UNAVAILABLE"
        assert "Upstream Cognito is unavailable" in answer["error"]["message"]
        assert elapsed < DEADLINE + 0.5

        # The breaker is open now (several failed attempts): refused at once, and it says so.
        status, answer, elapsed = ask(client, "another-new-user")
        assert status == 503 and "circuit breaker is open" in answer["error"]["message"]
        assert elapsed < DEADLINE / 2  # no attempt at all

        # Past the reuse threshold, a still-valid token is served instead of an error...
        clock.advance(500)
        stale = token_for(client, users[0])
        assert stale["token"] == kept[users[0]]["token"] and stale["cached"] is True
        # ...but never one about to expire.
        clock.now = epoch(kept[users[1]]["expires_at"]) - 4  # 4 s of validity left
        status, answer, _ = ask(client, users[1])
        assert status == 503, answer
    finally:
        upstream.start()  # the same port

    clock.now = float(int(time.time()))
    deadline = time.monotonic() + COOLDOWN + 5
    while True:  # bounded: resumes once the cooldown lets a probe through
        status, answer, _ = ask(client, "new-after-outage")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200, answer
    assert token_for(client, users[2])["token"] == kept[users[2]]["token"]
