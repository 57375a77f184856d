"""The backend door's envelope: every error code with its status, the body rules, and the
door's behaviour when it is not configured or Redis is away."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from support.backend import API_KEY, TRUSTED, door_client
from support.identities import temporary_pool
from support.processes import RedisServer, free_port

from broker import errors
from broker.app.factory import create_app
from broker.backend.envelope import CODE_OF, STATUS_OF, code_of, iso8601, render_error
from broker.backend.errors import (
    BackendNotConfigured,
    SessionRejected,
    SessionSourceUnavailable,
    TagRefused,
)
from config.settings import Settings

MakeClient = Callable[..., FlaskClient]


@pytest.fixture
def make_client(redis_server: RedisServer, broker_credentials: dict[str, str]) -> MakeClient:
    def make(**env: str) -> FlaskClient:
        return door_client(redis_server.url, broker_credentials, env)

    return make


@pytest.fixture
def trusted(make_client: MakeClient, pool: dict[str, Any]) -> FlaskClient:
    return make_client(
        BROKER_BACKEND_AUTH="api_key",
        BROKER_BACKEND_API_KEYS=API_KEY,
        BROKER_BACKEND_POOL_ID=pool["IdentityPoolId"],
        BROKER_MAX_BODY_BYTES="4096",
    )


def error_of(response: Any) -> tuple[int, str]:
    body = response.json
    assert set(body) == {"success", "error"} and body["success"] is False
    assert set(body["error"]) == {"code", "message"}
    assert response.content_type == "application/json"
    return response.status_code, body["error"]["code"]


@pytest.mark.parametrize(
    ("err", "status", "code"),
    [
        (errors.ValidationException("x"), 400, "VALIDATION_ERROR"),
        (errors.SerializationException("x"), 400, "VALIDATION_ERROR"),
        (errors.RequestTooLargeException("x"), 400, "VALIDATION_ERROR"),
        (errors.InvalidParameterException("x"), 400, "VALIDATION_ERROR"),
        (SessionRejected("x"), 401, "UNAUTHENTICATED"),
        (errors.NotAuthorizedException("x"), 403, "FORBIDDEN"),
        (TagRefused("x"), 403, "FORBIDDEN"),
        (errors.ResourceNotFoundException("x"), 404, "NOT_FOUND"),
        (errors.ResourceConflictException("x"), 409, "CONFLICT"),
        (errors.DeveloperUserAlreadyRegisteredException("x"), 409, "CONFLICT"),
        (errors.ConcurrentModificationException("x"), 409, "CONFLICT"),
        (errors.TooManyRequestsException("x"), 429, "RATE_LIMITED"),
        (errors.InternalErrorException("x"), 500, "INTERNAL_ERROR"),
        (errors.StoreUnavailable("x"), 503, "UNAVAILABLE"),
        (BackendNotConfigured("x"), 503, "UNAVAILABLE"),
        (SessionSourceUnavailable("x"), 503, "UNAVAILABLE"),
        (errors.LimitExceededException("x"), 503, "UNAVAILABLE"),
    ],
)
def test_every_error_class_has_its_code_and_status(
    err: errors.BrokerError, status: int, code: str
) -> None:
    reply, outcome = render_error(err)
    assert (reply.status, json.loads(reply.body)["error"]["code"], outcome) == (status, code, code)
    assert STATUS_OF[code] == status


def test_an_unmapped_error_is_internal_and_hides_its_text() -> None:
    class Odd(errors.BrokerError):
        error_type = "Odd"

    assert code_of(Odd("secret detail")) == "INTERNAL_ERROR"
    body = json.loads(render_error(Odd("secret detail"))[0].body)
    assert "secret" not in body["error"]["message"]
    assert set(CODE_OF.values()) <= set(STATUS_OF)


def test_iso8601_is_utc_with_z() -> None:
    assert iso8601(0) == "1970-01-01T00:00:00Z"
    assert iso8601(1700000000.9) == "2023-11-14T22:13:20Z"


def test_not_configured_answers_unavailable_and_the_broker_still_serves(
    make_client: MakeClient,
) -> None:
    client = make_client(BROKER_BACKEND_AUTH="off")  # on loopback, unset is the dev default
    response = client.post("/v1/token", json={})
    assert error_of(response) == (503, "UNAVAILABLE")
    assert "BROKER_BACKEND_AUTH" in response.json["error"]["message"]
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/.well-known/jwks.json").status_code == 200


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"user_id": "u", "token_duration": 0}, "token_duration"),
        ({"user_id": "u", "token_duration": 86401}, "token_duration"),
        ({"user_id": "u", "token_duration": "900"}, "token_duration"),
        ({"user_id": "u", "token_duration": 1.5}, "token_duration"),
        ({"user_id": "u", "token_duration": True}, "token_duration"),
        ({"user_id": "u", "principal_tags": {f"k{i}": "v" for i in range(51)}}, "principal_tags"),
        ({"user_id": "u", "principal_tags": {"k" * 129: "v"}}, "principal_tags"),
        ({"user_id": "u", "principal_tags": {"k": "v" * 257}}, "principal_tags"),
        ({"user_id": "u", "principal_tags": {"k": ""}}, "principal_tags"),
        ({"user_id": "u", "principal_tags": {"k": 1}}, "principal_tags"),
        ({"user_id": "u", "principal_tags": ["k"]}, "principal_tags"),
        ({"user_id": "u", "surprise": 1}, "surprise"),
        ({}, "user_id"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "u" * 1025}, "user_id"),
        ({"user_id": 42}, "user_id"),
    ],
)
def test_invalid_bodies_are_validation_errors(
    trusted: FlaskClient, body: dict[str, Any], fragment: str
) -> None:
    response = trusted.post("/v1/token", headers=TRUSTED, json=body)
    assert error_of(response) == (400, "VALIDATION_ERROR")
    assert fragment in response.json["error"]["message"]


@pytest.mark.parametrize(
    ("data", "content_type", "fragment"),
    [
        (b"[]", "application/json", "JSON object"),
        (b'"text"', "application/json", "JSON object"),
        (b"{not json", "application/json", "not valid UTF-8 JSON"),
        (b'{"user_id": NaN}', "application/json", "not valid UTF-8 JSON"),
        (b"\xff\xfe", "application/json", "not valid UTF-8 JSON"),
        (b" ", "application/json", "not valid UTF-8 JSON"),
        (b'{"user_id": "\\ud800"}', "application/json", "surrogate"),
        (b'{"user_id": "u"}', "text/plain", "Content-Type"),
        (b"{" + b" " * 5000 + b"}", "application/json", "exceeds the limit of 4096"),
    ],
)
def test_unreadable_bodies_are_validation_errors(
    trusted: FlaskClient, data: bytes, content_type: str, fragment: str
) -> None:
    response = trusted.post("/v1/token", headers=TRUSTED, data=data, content_type=content_type)
    assert error_of(response) == (400, "VALIDATION_ERROR")
    assert fragment in response.json["error"]["message"]


@pytest.mark.parametrize(
    ("data", "member"),
    [
        (b'{"user_id": "a", "user_id": "b"}', "user_id"),
        (b'{"user_id": "a", "user_id": "a"}', "user_id"),  # even with the same value
        (b'{"token_duration": 60, "user_id": "a", "token_duration": 900}', "token_duration"),
        (b'{"user_id": "a", "principal_tags": {"team": "x", "team": "y"}}', "team"),
        (b'{"user_id": "a", "' + b"k" * 60 + b'": 1, "' + b"k" * 60 + b'": 2}', "k" * 40 + "..."),
    ],
)
def test_a_member_named_twice_is_a_validation_error(
    trusted: FlaskClient, data: bytes, member: str
) -> None:
    """Issue 14 item 8: a proxy in front may read the first of two members and Python's
    json the last, so the door refuses the body rather than pick one."""
    response = trusted.post(
        "/v1/token", headers=TRUSTED, data=data, content_type="application/json"
    )
    assert error_of(response) == (400, "VALIDATION_ERROR")
    assert response.json["error"]["message"] == (
        f"The request body names the member '{member}' more than once."
    )


def test_limits_themselves_are_accepted(trusted: FlaskClient) -> None:
    tags = {f"{i:03d}" + "k" * 125: "v" * 256 for i in range(50)}
    for body in (
        {"user_id": "u" * 1024, "token_duration": 1},
        {"user_id": "edge", "token_duration": 86400},
        {"user_id": "edge", "token_duration": 900.0},
        {"user_id": "edge", "principal_tags": dict(list(tags.items())[:10])},
    ):
        response = trusted.post("/v1/token", headers=TRUSTED, json=body)
        assert response.status_code == 200, response.json


def test_fifty_tags_at_full_length_fit(make_client: MakeClient, pool: dict[str, Any]) -> None:
    client = make_client(
        BROKER_BACKEND_AUTH="api_key",
        BROKER_BACKEND_API_KEYS=API_KEY,
        BROKER_BACKEND_POOL_ID=pool["IdentityPoolId"],
    )
    tags = {f"{i:03d}" + "k" * 125: "v" * 256 for i in range(50)}
    response = client.post(
        "/v1/token", headers=TRUSTED, json={"user_id": "t", "principal_tags": tags}
    )
    assert response.status_code == 200, response.json


def test_user_id_in_the_body_is_refused_when_a_session_names_the_user(
    make_client: MakeClient, pool: dict[str, Any]
) -> None:
    from support.backend import HS_JWT_ENV, bearer, claims_for, hs_jwt

    client = make_client(**HS_JWT_ENV, BROKER_BACKEND_POOL_ID=pool["IdentityPoolId"])
    response = client.post(
        "/v1/token", headers=bearer(hs_jwt(claims_for("real"))), json={"user_id": "someone-else"}
    )
    assert error_of(response) == (400, "VALIDATION_ERROR")
    assert "api_key" in response.json["error"]["message"]


def test_unknown_pool_is_not_found(make_client: MakeClient) -> None:
    client = make_client(
        BROKER_BACKEND_AUTH="api_key",
        BROKER_BACKEND_API_KEYS=API_KEY,
        BROKER_BACKEND_POOL_ID=f"us-east-1:{uuid.uuid4()}",
    )
    response = client.post("/v1/token", headers=TRUSTED, json={"user_id": "u"})
    assert error_of(response) == (404, "NOT_FOUND")


def test_pool_without_developer_provider_is_unavailable(
    make_client: MakeClient, cognito: Any
) -> None:
    with temporary_pool(
        cognito, IdentityPoolName=f"nodev_{uuid.uuid4().hex}", AllowUnauthenticatedIdentities=True
    ) as pool_id:
        client = make_client(
            BROKER_BACKEND_AUTH="api_key",
            BROKER_BACKEND_API_KEYS=API_KEY,
            BROKER_BACKEND_POOL_ID=pool_id,
        )
        response = client.post("/v1/token", headers=TRUSTED, json={"user_id": "u"})
        assert error_of(response) == (503, "UNAVAILABLE")
        assert "DeveloperProviderName" in response.json["error"]["message"]


def test_a_deleted_named_pool_is_created_again(make_client: MakeClient, cognito: Any) -> None:
    name = f"recreated {uuid.uuid4().hex[:8]}"
    client = make_client(
        BROKER_BACKEND_AUTH="api_key",
        BROKER_BACKEND_API_KEYS=API_KEY,
        BROKER_BACKEND_POOL_NAME=name,
        BROKER_BACKEND_DEVELOPER_PROVIDER="login.recreated",
    )
    first = client.post("/v1/token", headers=TRUSTED, json={"user_id": "u"}).json["data"]
    import jwt

    pool_id = jwt.decode(first["token"], options={"verify_signature": False})["aud"]
    cognito.delete_identity_pool(IdentityPoolId=pool_id)
    second = client.post("/v1/token", headers=TRUSTED, json={"user_id": "u"})
    assert second.status_code == 200, second.json
    new_pool = jwt.decode(second.json["data"]["token"], options={"verify_signature": False})["aud"]
    assert new_pool != pool_id
    cognito.delete_identity_pool(IdentityPoolId=new_pool)


def test_named_pool_with_another_provider_is_unavailable(
    make_client: MakeClient, cognito: Any
) -> None:
    name = f"clash {uuid.uuid4().hex[:8]}"
    first = make_client(
        BROKER_BACKEND_AUTH="api_key",
        BROKER_BACKEND_API_KEYS=API_KEY,
        BROKER_BACKEND_POOL_NAME=name,
        BROKER_BACKEND_DEVELOPER_PROVIDER="login.first",
    )
    assert first.post("/v1/token", headers=TRUSTED, json={"user_id": "u"}).status_code == 200
    second = make_client(
        BROKER_BACKEND_AUTH="api_key",
        BROKER_BACKEND_API_KEYS=API_KEY,
        BROKER_BACKEND_POOL_NAME=name,
        BROKER_BACKEND_DEVELOPER_PROVIDER="login.second",
    )
    response = second.post("/v1/token", headers=TRUSTED, json={"user_id": "u"})
    assert error_of(response) == (503, "UNAVAILABLE")
    assert "login.first" in response.json["error"]["message"]


def test_redis_away_is_unavailable_quickly(broker_credentials: dict[str, str]) -> None:
    settings = Settings.from_env(
        {
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "BROKER_CREDENTIALS": ",".join(f"{k}:{v}" for k, v in broker_credentials.items()),
            "BROKER_BACKEND_AUTH": "api_key",
            "BROKER_BACKEND_API_KEYS": API_KEY,
            "BROKER_BACKEND_POOL_NAME": "no redis",
            "BROKER_BACKEND_DEVELOPER_PROVIDER": "login.none",
        }
    )
    client = create_app(settings).test_client()  # starts although the pool cannot be made
    started = time.monotonic()
    response = client.post("/v1/token", headers=TRUSTED, json={"user_id": "u"})
    assert time.monotonic() - started < 3
    assert error_of(response) == (503, "UNAVAILABLE")
    assert "redis" not in response.get_data(as_text=True).lower()


def test_a_success_is_not_cacheable(trusted: FlaskClient) -> None:
    response = trusted.post("/v1/token", headers=TRUSTED, json={"user_id": "nostore"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert set(response.json) == {"success", "data"}
    assert set(response.json["data"]) == {
        "identity_id",
        "token",
        "expires_at",
        "created_at",
        "cached",
    }


def test_merged_users_share_one_identity_through_the_door(
    trusted: FlaskClient, pool: dict[str, Any], cognito: Any
) -> None:
    """After MergeDeveloperIdentities the source user gets the destination's identity (the
    cache key holds the identity, so no stale token of the old identity comes back)."""
    source = trusted.post("/v1/token", headers=TRUSTED, json={"user_id": "src"}).json["data"]
    dest = trusted.post("/v1/token", headers=TRUSTED, json={"user_id": "dst"}).json["data"]
    cognito.merge_developer_identities(
        SourceUserIdentifier="src",
        DestinationUserIdentifier="dst",
        DeveloperProviderName="login.example.dev",
        IdentityPoolId=pool["IdentityPoolId"],
    )
    after = trusted.post("/v1/token", headers=TRUSTED, json={"user_id": "src"}).json["data"]
    assert source["identity_id"] != dest["identity_id"]
    assert after["identity_id"] == dest["identity_id"]


def test_metrics_count_signatures_hits_and_outcomes(trusted: FlaskClient) -> None:
    from prometheus_client import REGISTRY

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    def snapshot() -> tuple[float, ...]:
        return (
            sample("broker_tokens_issued_total", door="backend"),
            sample("broker_token_cache_hits_total", door="backend"),
            sample(
                "broker_requests_total", door="backend", operation="issueToken", outcome="success"
            ),
            sample(
                "broker_requests_total",
                door="backend",
                operation="issueToken",
                outcome="UNAUTHENTICATED",
            ),
        )

    before = snapshot()
    user = f"metered-{uuid.uuid4().hex}"
    for _ in range(2):
        assert trusted.post("/v1/token", headers=TRUSTED, json={"user_id": user}).status_code == 200
    assert trusted.post("/v1/token", json={"user_id": user}).status_code == 401
    after = snapshot()
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 2, 1]


def test_no_credential_reaches_a_log_line(make_client: MakeClient, pool: dict[str, Any]) -> None:
    import logging

    from support.backend import HS_JWT_ENV, HS_SECRET, bearer, claims_for, hs_jwt

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(level=logging.DEBUG)
    logger = logging.getLogger("broker")
    logger.addHandler(handler)
    try:
        client = make_client(**HS_JWT_ENV, BROKER_BACKEND_POOL_ID=pool["IdentityPoolId"])
        good = hs_jwt(claims_for("logged-user"))
        bad = hs_jwt(claims_for("logged-user"), "wrong-secret-wrong-secret-wrong-secret!")
        issued = client.post("/v1/token", headers=bearer(good)).json["data"]["token"]
        client.post("/v1/token", headers=bearer(bad))
        client.post(
            "/v1/token", headers=bearer(good), data=b"{broken", content_type="application/json"
        )
    finally:
        logger.removeHandler(handler)
    text = "\n".join(lines)
    for secret in (HS_SECRET, good, bad, issued, good.split(".")[2], issued.split(".")[2]):
        assert secret not in text
