"""Upstream mode against a real upstream: a second broker in local mode (full Cognito
semantics, real RS512 tokens), rate-limited to 50 requests/s per access key as AWS limits
GetOpenIdTokenForDeveloperIdentity. Upstream calls are counted on the upstream broker's own
``/metrics``, so every count below is what the upstream saw, not what the broker believes.
"""

from __future__ import annotations

import calendar
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
import requests
from flask.testing import FlaskClient
from support.backend import API_KEY, TRUSTED, Clock, door_client, token_for, tokens_at_once
from support.processes import BrokerServer
from support.topologies import Topology, connector_for
from support.upstream import (
    UPSTREAM_PROVIDER,
    aws_environment,
    cognito_client,
    create_pool,
    local_upstream,
    run_pass,
    upstream_environment,
    upstream_token_calls,
)

from broker.upstream.guard import Quota
from broker.upstream.guard_store import RedisQuota

pytestmark = [pytest.mark.every_topology, pytest.mark.slow]

UPSTREAM_KEY_ID = "AKIDUPSTREAM"
UPSTREAM_SECRET = secrets.token_urlsafe(30)
OTHER_CREDENTIAL_SOURCES = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerServer]:
    """The upstream: a broker in local mode on its own Redis, 50 requests/s per key."""
    with local_upstream(
        UPSTREAM_KEY_ID,
        UPSTREAM_SECRET,
        tmp_path_factory.mktemp("upstream") / "gunicorn.log",
        {"BROKER_RATE_LIMIT_PER_ACCESS_KEY": "50"},
    ) as server:
        yield server


@pytest.fixture(scope="module")
def admin(upstream: BrokerServer) -> Iterator[Any]:
    client = cognito_client(upstream.url, UPSTREAM_KEY_ID, UPSTREAM_SECRET)
    yield client
    client.close()


@pytest.fixture
def upstream_pool(admin: Any) -> str:
    """A fresh pool per test: the cache, quota and breaker keys are per pool."""
    return create_pool(admin, f"up_{uuid.uuid4().hex}")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3's standard chain finds the upstream's key pair in the environment."""
    for name, value in aws_environment(UPSTREAM_KEY_ID, UPSTREAM_SECRET).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def door(
    store: Topology,
    broker_credentials: dict[str, str],
    upstream: BrokerServer,
    upstream_pool: str,
    aws_env: None,
) -> Callable[..., FlaskClient]:
    """The downstream broker in-process (its clock injectable), in upstream mode."""

    def make(clock: Callable[[], float] = time.time, **env: str) -> FlaskClient:
        upstream_env = upstream_environment(
            endpoint=upstream.url, pool_id=upstream_pool, api_key=API_KEY
        )
        return door_client(store.env(), broker_credentials, {**upstream_env, **env}, clock)

    return make


def epoch(iso8601: str) -> float:
    return float(calendar.timegm(time.strptime(iso8601, "%Y-%m-%dT%H:%M:%SZ")))


def ask(client: FlaskClient, user: str, **body: Any) -> tuple[int, dict[str, Any]]:
    response = client.post("/v1/token", headers=TRUSTED, json={"user_id": user, **body})
    return response.status_code, response.json or {}


def test_the_token_is_the_upstreams_and_verifies_there(
    door: Callable[..., FlaskClient], upstream: BrokerServer, upstream_pool: str, admin: Any
) -> None:
    client = door()
    first = token_for(client, "alice", token_duration=1200)
    again = token_for(client, "alice", token_duration=1200)

    jwks = jwt.PyJWKClient(f"{upstream.url}/.well-known/jwks_uri")
    claims = jwt.decode(
        first["token"],
        jwks.get_signing_key_from_jwt(first["token"]).key,
        algorithms=["RS512"],
        audience=upstream_pool,
        issuer=upstream.url,
    )
    looked_up = admin.lookup_developer_identity(
        IdentityPoolId=upstream_pool, DeveloperUserIdentifier="alice"
    )
    assert claims["sub"] == first["identity_id"] == looked_up["IdentityId"]
    assert claims["amr"][1] == UPSTREAM_PROVIDER
    assert claims["exp"] - claims["iat"] == 1200
    assert first["expires_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["exp"]))
    assert first["cached"] is False
    assert again["cached"] is True and again["token"] == first["token"]
    assert again["created_at"] == first["created_at"]  # when this broker first saw alice


def test_many_requests_in_the_reuse_window_make_one_upstream_call(
    door: Callable[..., FlaskClient], upstream: BrokerServer
) -> None:
    client = door()
    before = upstream_token_calls(upstream.url)
    tokens = {token_for(client, "steady-user")["token"] for _ in range(25)}
    assert len(tokens) == 1
    assert upstream_token_calls(upstream.url) - before == 1


def test_tags_and_duration_are_separate_tokens_of_one_identity(
    door: Callable[..., FlaskClient], upstream: BrokerServer
) -> None:
    client = door()
    before = upstream_token_calls(upstream.url)
    plain = token_for(client, "tagged-user")
    tagged = token_for(client, "tagged-user", principal_tags={"team": "blue"})
    longer = token_for(client, "tagged-user", token_duration=3600)
    for _ in range(3):
        assert token_for(client, "tagged-user", principal_tags={"team": "blue"})["cached"]

    assert upstream_token_calls(upstream.url) - before == 3
    assert len({plain["token"], tagged["token"], longer["token"]}) == 3
    assert len({plain["identity_id"], tagged["identity_id"], longer["identity_id"]}) == 1
    tags = jwt.decode(tagged["token"], options={"verify_signature": False})
    assert tags["https://aws.amazon.com/tags"] == {"principal_tags": {"team": ["blue"]}}


def test_past_the_threshold_the_token_is_renewed_for_the_same_identity(
    door: Callable[..., FlaskClient], upstream: BrokerServer
) -> None:
    clock = Clock()
    client = door(clock)
    first = token_for(client, "renewing-user", token_duration=900)
    clock.now = epoch(first["expires_at"]) - 451  # 451 s of 900 left: reused
    assert token_for(client, "renewing-user", token_duration=900)["token"] == first["token"]
    before = upstream_token_calls(upstream.url)
    clock.now += 2  # 449 s left: renewed upstream
    renewed = token_for(client, "renewing-user", token_duration=900)

    assert upstream_token_calls(upstream.url) - before == 1
    assert renewed["cached"] is False  # (the same bytes when upstream signs in the same second)
    assert renewed["identity_id"] == first["identity_id"]
    assert renewed["created_at"] == first["created_at"]


def test_an_identity_merged_upstream_is_followed_on_renewal(
    door: Callable[..., FlaskClient], upstream: BrokerServer, upstream_pool: str, admin: Any
) -> None:
    """The remembered IdentityId was disabled by a merge at the upstream: the broker
    forgets it and asks again by login, which finds the destination identity."""
    clock = Clock()
    client = door(clock)
    source = token_for(client, "merge-source")
    destination = token_for(client, "merge-destination")
    admin.merge_developer_identities(
        SourceUserIdentifier="merge-source",
        DestinationUserIdentifier="merge-destination",
        DeveloperProviderName=UPSTREAM_PROVIDER,
        IdentityPoolId=upstream_pool,
    )
    cached = token_for(client, "merge-source")  # still in its reuse window: served as is
    assert cached["identity_id"] == source["identity_id"] and cached["cached"] is True

    clock.now = epoch(source["expires_at"]) - 449  # past the reuse threshold
    before = upstream_token_calls(upstream.url)
    renewed = token_for(client, "merge-source")
    assert renewed["identity_id"] == destination["identity_id"]
    assert upstream_token_calls(upstream.url) - before == 2  # refused, then by login


@pytest.mark.parametrize(
    ("env", "status", "code", "words"),
    [
        (
            {"BROKER_UPSTREAM_POOL_ID": f"us-east-1:{uuid.UUID(int=7)}"},
            404,
            "NOT_FOUND",
            "Upstream Cognito: ",
        ),
        (
            {"BROKER_UPSTREAM_DEVELOPER_PROVIDER": "login.someone.else"},
            403,
            "FORBIDDEN",
            "not from a supported provider",
        ),
    ],
)
def test_upstream_refusals_map_to_the_envelope(
    door: Callable[..., FlaskClient], env: dict[str, str], status: int, code: str, words: str
) -> None:
    got, answer = ask(door(**env), "refused-user")
    assert got == status, answer
    assert answer["error"]["code"] == code
    assert words in answer["error"]["message"]


@pytest.mark.parametrize(
    ("key_id", "secret", "aws_code"),
    [
        (UPSTREAM_KEY_ID, "a-wrong-secret-of-enough-length", "InvalidSignatureException"),
        ("AKIDUNKNOWN", UPSTREAM_SECRET, "UnrecognizedClientException"),
    ],
)
def test_refused_credentials_are_unavailable_and_named(
    door: Callable[..., FlaskClient],
    monkeypatch: pytest.MonkeyPatch,
    key_id: str,
    secret: str,
    aws_code: str,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    got, answer = ask(door(), "any-user")
    assert got == 503, answer
    assert answer["error"]["code"] == "UNAVAILABLE"
    assert aws_code in answer["error"]["message"]
    assert "credentials" in answer["error"]["message"]
    assert secret not in answer["error"]["message"]


def test_no_credentials_in_the_chain_is_unavailable_and_says_so(
    door: Callable[..., FlaskClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    for name in OTHER_CREDENTIAL_SOURCES:
        monkeypatch.delenv(name, raising=False)
    got, answer = ask(door(), "any-user")
    assert got == 503, answer
    assert answer["error"]["code"] == "UNAVAILABLE"
    assert "found no AWS credentials (NoCredentialsError)" in answer["error"]["message"]


def test_a_renewal_counts_once_against_the_per_identity_limit(
    door: Callable[..., FlaskClient],
) -> None:
    """A known user whose token is renewed from upstream is one request for
    BROKER_RATE_LIMIT_PER_IDENTITY, as in local mode (it was counted twice, so with a limit
    of one token a second every renewal was refused)."""
    clock = Clock()
    client = door(
        clock,
        BROKER_RATE_LIMIT_PER_IDENTITY="1",
        BROKER_BACKEND_CACHE_MIN_REMAINING="1",  # no reuse: every request renews
        # A slow upstream would serve the stale token instead of renewing it (CI is loaded).
        BROKER_UPSTREAM_DEADLINE="30",
        BROKER_UPSTREAM_READ_TIMEOUT="20",
        # nor may the shared call schedule or the breaker (other tests' calls) refuse it
        BROKER_UPSTREAM_MAX_RATE="10000",
        BROKER_UPSTREAM_BREAKER_FAILURES="1000",
    )
    first = token_for(client, "renewed-once")  # unknown until now: not counted
    # A second past the upstream token's iat (upstream's real clock, which may have passed
    # the test clock's start while the first call ran): from here it is due for renewal.
    clock.now = max(clock.now, float(int(time.time()))) + 1
    renewed = token_for(client, "renewed-once")  # one count in this second
    assert renewed["identity_id"] == first["identity_id"]
    assert renewed["cached"] is False
    got, answer = ask(client, "renewed-once")  # a second request in the same second
    assert got == 429 and answer["error"]["code"] == "RATE_LIMITED", answer


def test_the_quota_answers_rate_limited_at_once_and_a_valid_token_is_served(
    door: Callable[..., FlaskClient], store: Topology, upstream_pool: str
) -> None:
    """When the shared call schedule is booked beyond a request's deadline (here by another
    process reserving ten slots at one call per second), a new user is refused at once, and
    a cached user past the reuse threshold gets their still-valid token instead."""
    clock = Clock()
    client = door(clock, BROKER_UPSTREAM_MAX_RATE="1")
    kept = token_for(client, "quota-cached")
    other_process = Quota(RedisQuota(connector_for(store)), upstream_pool, 1)
    for _ in range(10):
        other_process.reserve(max_wait=60.0)

    started = time.monotonic()
    got, answer = ask(client, "quota-new")
    assert got == 429, answer
    assert answer["error"]["code"] == "RATE_LIMITED"
    assert "BROKER_UPSTREAM_MAX_RATE" in answer["error"]["message"]
    assert time.monotonic() - started < 1.0  # no wait: the slot is beyond the deadline

    clock.advance(500)  # past the threshold, 400 s of validity left
    stale = token_for(client, "quota-cached")
    assert stale["token"] == kept["token"] and stale["cached"] is True


# --- a downstream gunicorn with several workers -----------------------------------------
@pytest.fixture(scope="module")
def downstream(
    store: Topology,
    broker_credentials: dict[str, str],
    upstream: BrokerServer,
    admin: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[BrokerServer]:
    pool_id = create_pool(admin, f"up_gunicorn_{uuid.uuid4().hex}")
    server = BrokerServer(
        redis_env=store.env(),
        credentials=broker_credentials,
        workers=4,
        env={
            **upstream_environment(endpoint=upstream.url, pool_id=pool_id, api_key=API_KEY),
            **aws_environment(UPSTREAM_KEY_ID, UPSTREAM_SECRET),
        },
        log_path=tmp_path_factory.mktemp("downstream") / "gunicorn.log",
    )
    with server:
        yield server


def test_fifty_concurrent_first_requests_make_one_upstream_call(
    downstream: BrokerServer, upstream: BrokerServer
) -> None:
    user = f"burst-{uuid.uuid4().hex}"
    before = upstream_token_calls(upstream.url)
    answers, failures = tokens_at_once(downstream.url, user)

    assert failures == []
    assert len(answers) == 50
    assert all(answer["success"] for answer in answers), answers[0]
    assert len({answer["data"]["identity_id"] for answer in answers}) == 1
    assert len({answer["data"]["token"] for answer in answers}) == 1
    assert sum(1 for answer in answers if not answer["data"]["cached"]) == 1
    assert upstream_token_calls(upstream.url) - before == 1


def test_repeated_requests_across_workers_make_one_upstream_call(
    downstream: BrokerServer, upstream: BrokerServer
) -> None:
    before = upstream_token_calls(upstream.url)
    with requests.Session() as http:
        answers = [
            http.post(
                f"{downstream.url}/v1/token",
                headers=TRUSTED,
                json={"user_id": "gunicorn-steady"},
                timeout=10,
            ).json()
            for _ in range(40)
        ]
    assert all(answer["success"] for answer in answers)
    assert len({answer["data"]["token"] for answer in answers}) == 1
    assert upstream_token_calls(upstream.url) - before == 1


@pytest.mark.slow
def test_benchmark_no_throttling_after_the_first_pass(
    downstream: BrokerServer, upstream: BrokerServer
) -> None:
    """bench/upstream.py in small (120 users instead of 2,000): the first pass is paced
    under the upstream's 50 requests/s by the shared quota, the next passes are cache hits,
    and nothing after the first pass is throttled."""
    users = [f"bench-{uuid.uuid4().hex[:8]}-{n}" for n in range(120)]
    calls = upstream_token_calls(upstream.url)
    throttled = upstream_token_calls(upstream.url, outcome="TooManyRequestsException")

    first = run_pass(downstream.port, API_KEY, users, connections=8)
    second = run_pass(downstream.port, API_KEY, users, connections=8)
    repeated = run_pass(
        downstream.port, API_KEY, users, connections=8, stop_at=time.monotonic() + 2.0
    )
    print(
        f"\nfirst pass {first.rate:.0f}/s {dict(first.outcomes)}; "
        f"repeated {repeated.rate:.0f}/s {dict(repeated.outcomes)}"
    )
    assert first.errors == 0, first.outcomes  # paced, not throttled
    assert first.rate < 50
    assert second.outcomes == {"cached": len(users)}
    assert repeated.errors == 0 and repeated.requests > len(users)
    assert upstream_token_calls(upstream.url) - calls == len(users)
    assert upstream_token_calls(upstream.url, outcome="TooManyRequestsException") == throttled
