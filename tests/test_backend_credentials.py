"""``POST /v1/credentials`` on the backend door (docs/credentials.md): the session's
identity, and AWS credentials for it from STS, in the envelope.

The gunicorn tests run a live broker whose STS is the recording stand-in (``support.sts``):
it verifies the token the broker signed with PyJWT against the broker's JWKS, as STS does
for an IAM OpenID Connect provider, and echoes the role it was asked for. One broker per
translator (api_key, jwt, cookie); the error and validation cases run on the api_key one,
the door's refusals before any STS call also in-process. The role rules themselves are
tests/test_roles.py's and tests/test_credentials.py's.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from support.backend import (
    API_KEY,
    COOKIE_SECRET,
    HS_JWT_ENV,
    TRUSTED,
    bearer,
    claims_for,
    door_client,
    flask_cookie,
    give_door_pool_a_role,
    hs_jwt,
)
from support.clients import cognito_client
from support.processes import BrokerServer, RedisServer, broker_on_own_redis, free_port
from support.sts import StsStandIn

from config.backend import DEV_API_KEY

ROLE = "arn:aws:iam::123456789012:role/{}"
AUTH, UNAUTH, OTHER = ROLE.format("backend-auth"), ROLE.format("backend-unauth"), ROLE.format("x")
PROVIDER = "login.backend.test"
DEADLINE = 1.5  # BROKER_STS_DEADLINE of the brokers here
TAGS_CLAIM = "https://aws.amazon.com/tags"
COOKIE_ENV = {"BROKER_BACKEND_AUTH": "cookie", "BROKER_BACKEND_COOKIE_SECRET": COOKIE_SECRET}
API_KEY_ENV = {"BROKER_BACKEND_AUTH": "api_key", "BROKER_BACKEND_API_KEYS": API_KEY}


def pool_env(name: str) -> dict[str, str]:
    return {"BROKER_BACKEND_POOL_NAME": name, "BROKER_BACKEND_DEVELOPER_PROVIDER": PROVIDER}


@pytest.fixture(scope="module")
def sts() -> Iterator[StsStandIn]:
    with StsStandIn() as stand_in:
        yield stand_in


class Door:
    """A live broker's backend door, its pool (found by name, given roles) and how a
    request of its translator proves the user."""

    def __init__(self, broker: BrokerServer, auth: str, pool_id: str) -> None:
        self.broker, self.auth, self.pool_id = broker, auth, pool_id

    def proof(self, user: str) -> tuple[dict[str, str], dict[str, Any]]:
        """The headers and body members that name ``user`` to this door."""
        if self.auth == "api_key":
            return TRUSTED, {"user_id": user}
        if self.auth == "jwt":
            return bearer(hs_jwt(claims_for(user))), {}
        return {"Cookie": f"session={flask_cookie({'user_id': user})}"}, {}

    def post(self, path: str, user: str, **body: Any) -> requests.Response:
        headers, named = self.proof(user)
        return requests.post(
            f"{self.broker.url}{path}", headers=headers, json={**named, **body}, timeout=30
        )

    def set_roles(self, roles: dict[str, str]) -> None:
        admin = cognito_client(self.broker)
        try:
            admin.set_identity_pool_roles(IdentityPoolId=self.pool_id, Roles=roles)
        finally:
            admin.close()


def pool_named(broker: BrokerServer, name: str) -> str:
    admin = cognito_client(broker)
    try:
        pools = admin.list_identity_pools(MaxResults=60)["IdentityPools"]
    finally:
        admin.close()
    [pool_id] = [pool["IdentityPoolId"] for pool in pools if pool["IdentityPoolName"] == name]
    return str(pool_id)


@pytest.fixture(scope="module", params=["api_key", "jwt", "cookie"])
def door(
    request: pytest.FixtureRequest,
    sts: StsStandIn,
    broker_credentials: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Door]:
    auth: str = request.param
    name = f"backend_{auth}_{uuid.uuid4().hex[:8]}"
    translator = {"api_key": API_KEY_ENV, "jwt": HS_JWT_ENV, "cookie": COOKIE_ENV}[auth]
    env = {
        **translator,
        **pool_env(name),
        "BROKER_STS_ENDPOINT_URL": sts.url,
        "BROKER_STS_DEADLINE": str(DEADLINE),
    }
    log_path = tmp_path_factory.mktemp(f"credentials-{auth}") / "gunicorn.log"
    with broker_on_own_redis(credentials=broker_credentials, env=env, log_path=log_path) as own:
        sts.issuer = own.broker.url
        live = Door(own.broker, auth, pool_named(own.broker, name))
        live.set_roles({"authenticated": AUTH, "unauthenticated": UNAUTH})
        sts.reset()
        sts.audiences = {live.pool_id}
        yield live


#: A test on the api_key broker only (its cases do not depend on the translator).
API_KEY_ONLY = pytest.mark.parametrize("door", ["api_key"], indirect=True)


@pytest.fixture
def trusted(door: Door, sts: StsStandIn) -> Iterator[Door]:
    """The api_key door (tests marked API_KEY_ONLY), STS answering again."""
    assert door.auth == "api_key"
    sts.reset()
    yield door
    sts.reset()


def user() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


# --- through each translator ------------------------------------------------------------
@pytest.mark.slow
def test_each_translator_gets_the_user_s_identity_and_credentials(
    door: Door, sts: StsStandIn
) -> None:
    sts.reset()
    name = user()
    response = door.post("/v1/credentials", name)

    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["success"] is True
    data, issued = body["data"], sts.issued[-1]
    assert data["credentials"] == {
        "access_key_id": issued.access_key_id,
        "secret_key": issued.secret_key,
        "session_token": issued.session_token,
        "expires_at": issued.expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    [call] = sts.calls
    assert call.params["RoleArn"] == AUTH
    assert call.claims is not None  # verified with PyJWT against the broker's JWKS
    assert call.claims["sub"] == data["identity_id"]
    assert call.claims["aud"] == door.pool_id
    assert call.claims["amr"][:2] == ["authenticated", PROVIDER]
    # the same identity /v1/token gives the user, found, not made anew
    token = door.post("/v1/token", name).json()["data"]
    assert token["identity_id"] == data["identity_id"]


@pytest.mark.slow
@API_KEY_ONLY
def test_a_second_request_asks_sts_again_and_keeps_the_identity(
    trusted: Door, sts: StsStandIn
) -> None:
    name = user()
    first = trusted.post("/v1/credentials", name).json()["data"]
    second = trusted.post("/v1/credentials", name).json()["data"]

    assert second["identity_id"] == first["identity_id"]
    assert len(sts.calls) == 2  # never cached
    assert second["credentials"]["secret_key"] != first["credentials"]["secret_key"]


@pytest.mark.slow
@API_KEY_ONLY
def test_principal_tags_reach_sts_in_the_token(trusted: Door, sts: StsStandIn) -> None:
    response = trusted.post("/v1/credentials", user(), principal_tags={"team": "blue"})

    assert response.status_code == 200, response.text
    [call] = sts.calls
    assert call.claims is not None
    assert call.claims[TAGS_CLAIM] == {"principal_tags": {"team": ["blue"]}}


@pytest.mark.slow
@API_KEY_ONLY
def test_custom_role_arn_is_allowed_only_for_the_pool_s_role(
    trusted: Door, sts: StsStandIn
) -> None:
    allowed = trusted.post("/v1/credentials", user(), custom_role_arn=AUTH)
    assert allowed.status_code == 200, allowed.text
    assert [call.params["RoleArn"] for call in sts.calls] == [AUTH]

    refused = trusted.post("/v1/credentials", user(), custom_role_arn=OTHER)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "FORBIDDEN"
    assert len(sts.calls) == 1  # refused before STS was asked


@pytest.mark.slow
@API_KEY_ONLY
def test_a_pool_without_roles_is_unavailable_without_asking_sts(
    trusted: Door, sts: StsStandIn
) -> None:
    trusted.set_roles({})
    try:
        response = trusted.post("/v1/credentials", user())
    finally:
        trusted.set_roles({"authenticated": AUTH, "unauthenticated": UNAUTH})

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "UNAVAILABLE"
    assert "role" in error["message"].lower()
    assert sts.calls == []


# --- what STS's answers become, in time ------------------------------------------------
@pytest.mark.slow
@API_KEY_ONLY
@pytest.mark.parametrize(
    ("mode", "status", "code", "answered"),
    [
        ("throttle", 429, "RATE_LIMITED", "Throttling"),
        ("AccessDenied", 403, "FORBIDDEN", "AccessDenied"),  # the role's trust policy
        ("InvalidIdentityToken", 503, "UNAVAILABLE", "InvalidIdentityToken"),  # setup fault
        ("500", 503, "UNAVAILABLE", "InternalFailure"),
        ("hang", 503, "UNAVAILABLE", "hang"),  # answered after the deadline
    ],
)
def test_sts_failures_are_mapped_within_the_deadline(
    trusted: Door, sts: StsStandIn, mode: str, status: int, code: str, answered: str
) -> None:
    sts.hang_seconds = DEADLINE + 2
    sts.reset(mode)
    started = time.monotonic()
    response = trusted.post("/v1/credentials", user())
    elapsed = time.monotonic() - started

    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert "STS" in error["message"]
    assert elapsed < DEADLINE + 1.0
    if mode == "hang":  # its late answer lands here, not in the next test's calls
        give_up = time.monotonic() + sts.hang_seconds + 2
        while not sts.calls and time.monotonic() < give_up:
            time.sleep(0.05)
    assert sts.calls, "STS was asked"
    assert sts.calls[-1].answer == answered


@pytest.mark.slow
@API_KEY_ONLY
def test_throttling_once_is_retried_to_success(trusted: Door, sts: StsStandIn) -> None:
    sts.reset("throttle-once")
    response = trusted.post("/v1/credentials", user())

    assert response.status_code == 200, response.text
    assert [call.answer for call in sts.calls] == ["Throttling", "credentials"]


@pytest.mark.slow
@API_KEY_ONLY
def test_bad_bodies_are_validation_errors_without_sts(trusted: Door, sts: StsStandIn) -> None:
    for body in (
        {"user_id": user(), "role": AUTH},  # unknown member
        {"user_id": user(), "custom_role_arn": "arn:short"},  # below the ARN's length
        {"user_id": user(), "token_duration": 900},  # /v1/token's member, not this path's
        {},  # trusted mode names the user in the body
    ):
        response = requests.post(
            f"{trusted.broker.url}/v1/credentials", headers=TRUSTED, json=body, timeout=30
        )
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert sts.calls == []


@pytest.mark.slow
@pytest.mark.parametrize("door", ["jwt", "cookie"], indirect=True)
def test_a_session_door_refuses_a_user_id_in_the_body(door: Door, sts: StsStandIn) -> None:
    sts.reset()
    headers, _ = door.proof(user())
    response = requests.post(
        f"{door.broker.url}/v1/credentials", headers=headers, json={"user_id": "x"}, timeout=30
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert sts.calls == []


@pytest.mark.slow
def test_no_session_is_unauthenticated(door: Door, sts: StsStandIn) -> None:
    sts.reset()
    response = requests.post(f"{door.broker.url}/v1/credentials", json={}, timeout=30)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"
    assert sts.calls == []


@pytest.mark.slow
def test_the_log_holds_no_secret_key_session_token_or_token(door: Door, sts: StsStandIn) -> None:
    """Last for each broker: every answer the stand-in gave is looked for in its log."""
    time.sleep(0.3)  # the workers' last lines
    log = door.broker.log_path.read_text(errors="replace")
    assert "/v1/credentials" in log  # the calls were logged (access lines), without secrets
    sts.assert_no_secret_in(log)


# --- in-process: what the door refuses before STS ---------------------------------------
def test_sts_down_is_unavailable_at_once(
    redis_server: RedisServer, broker_credentials: dict[str, str]
) -> None:
    name = f"backend_down_{uuid.uuid4().hex[:8]}"
    env = {
        **API_KEY_ENV,
        **pool_env(name),
        "BROKER_STS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens
        "BROKER_STS_DEADLINE": "5",
    }
    client = door_client(redis_server.url, broker_credentials, env)
    give_door_pool_a_role(client, TRUSTED, {"user_id": "u"}, AUTH)
    started = time.monotonic()
    response = client.post("/v1/credentials", headers=TRUSTED, json={"user_id": "u"})
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json["error"]["code"] == "UNAVAILABLE"
    assert elapsed < 3.0  # a refused connection is not waited out to the deadline


def test_the_development_door_needs_roles_on_its_pool(
    redis_server: RedisServer, broker_credentials: dict[str, str]
) -> None:
    """No configuration on loopback: the development door serves /v1/credentials too, and
    says what is missing until pool 'default' has roles (docs/credentials.md)."""
    client = door_client(redis_server.url, broker_credentials, {})
    response = client.post(
        "/v1/credentials", headers={"X-Api-Key": DEV_API_KEY}, json={"user_id": "dev-user"}
    )
    assert response.status_code == 503
    error = response.json["error"]
    assert error["code"] == "UNAVAILABLE"
    assert "role" in error["message"].lower()


def test_not_json_is_a_validation_error(
    redis_server: RedisServer, broker_credentials: dict[str, str]
) -> None:
    env = {**API_KEY_ENV, **pool_env(f"backend_nj_{uuid.uuid4().hex[:8]}")}
    client = door_client(redis_server.url, broker_credentials, env)
    response = client.post(
        "/v1/credentials", headers=TRUSTED, data="user_id=u", content_type="text/plain"
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "VALIDATION_ERROR"


def test_a_new_identity_is_counted_once(
    redis_server: RedisServer, broker_credentials: dict[str, str]
) -> None:
    """In-process, so the stand-in reads the token unchecked (no server publishes the JWKS)."""
    from prometheus_client import REGISTRY

    def created() -> float:
        labels = {"kind": "developer"}
        return REGISTRY.get_sample_value("broker_identities_created_total", labels) or 0.0

    with StsStandIn(verify=False) as sts:
        env = {
            **API_KEY_ENV,
            **pool_env(f"backend_count_{uuid.uuid4().hex[:8]}"),
            "BROKER_STS_ENDPOINT_URL": sts.url,
        }
        client = door_client(redis_server.url, broker_credentials, env)
        give_door_pool_a_role(client, TRUSTED, {"user_id": "first"}, AUTH)
        before = created()
        for _ in range(2):
            answer = client.post("/v1/credentials", headers=TRUSTED, json={"user_id": "second"})
            assert answer.status_code == 200, answer.json
        assert created() == before + 1
        assert [call.params["RoleArn"] for call in sts.calls] == [AUTH, AUTH]
