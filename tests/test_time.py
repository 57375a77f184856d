"""Time (docs/reliability.md): requests signed 6 minutes in the past or the future are
refused; presented tokens (GetOpenIdToken) and the backend door's cached tokens expire at
the right second of an injected clock; a broker whose clock is a little behind the one
that issued a token still accepts it."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.backend import API_KEY, Clock
from support.processes import BrokerServer, RedisServer
from support.signing import post, signed_headers

from broker.app.factory import create_app
from config.settings import Settings

PROVIDER = "login.time"
COGNITO = "cognito-identity.amazonaws.com"
TOKEN_OP = "GetOpenIdTokenForDeveloperIdentity"
CACHE_EXAMPLES = 600 if os.environ.get("BROKER_SOAK") == "1" else 60


# --- SigV4: 6 minutes off either way, live ----------------------------------------------
@pytest.mark.parametrize(
    ("offset", "accepted", "message"),
    [
        (dt.timedelta(minutes=-6), False, "Signature expired: "),
        (dt.timedelta(minutes=6), False, "Signature not yet current: "),
        (dt.timedelta(minutes=-4), True, ""),
        (dt.timedelta(minutes=4), True, ""),
    ],
    ids=["6-min-past", "6-min-future", "4-min-past", "4-min-future"],
)
def test_requests_signed_six_minutes_off_are_refused(
    broker_server: BrokerServer,
    pool: dict[str, Any],
    offset: dt.timedelta,
    accepted: bool,
    message: str,
) -> None:
    body = json.dumps(
        {"IdentityPoolId": pool["IdentityPoolId"], "Logins": {"login.example.dev": "clocked"}}
    ).encode()
    response = post(
        broker_server.url,
        body,
        operation=TOKEN_OP,
        key_id=broker_server.access_key_id,
        secret=broker_server.secret_access_key,
        when=dt.datetime.now(dt.UTC) + offset,
    )
    if accepted:
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 400
    assert response.json()["__type"] == "InvalidSignatureException"
    assert response.headers["x-amzn-ErrorType"] == "InvalidSignatureException:"
    assert response.json()["message"].startswith(message)


# --- an in-process broker on an injected clock ------------------------------------------
class Broker:
    """The app on the session's Redis with its own clock; ``call`` signs at that clock."""

    def __init__(
        self, redis_url: str, credentials: dict[str, str], clock: Clock, **env: str
    ) -> None:
        settings = Settings.from_env(
            {
                "REDIS_URL": redis_url,
                "BROKER_CREDENTIALS": ",".join(f"{k}:{v}" for k, v in credentials.items()),
                "BROKER_ISSUER": "http://broker.time.test",
                **env,
            }
        )
        self.key_id, self.secret = next(iter(credentials.items()))
        self.clock = clock
        self.client: FlaskClient = create_app(settings, clock=clock).test_client()

    def call(self, operation: str, body: dict[str, Any], *, sign: bool = True) -> Any:
        raw = json.dumps(body).encode()
        headers = {
            "X-Amz-Target": f"AWSCognitoIdentityService.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
        }
        if sign:
            when = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
            headers = signed_headers(
                "http://localhost/",
                raw,
                operation=operation,
                key_id=self.key_id,
                secret=self.secret,
                when=when,
            )
        response = self.client.post("/", data=raw, headers=headers)
        return response.status_code, json.loads(response.data)


@pytest.fixture
def issuer(redis_server: RedisServer, broker_credentials: dict[str, str]) -> Broker:
    return Broker(redis_server.url, broker_credentials, Clock())


@pytest.fixture
def developer_token(issuer: Broker) -> Iterator[tuple[str, str, int]]:
    """(identity id, token, iat) of a 60 s developer token issued at the issuer's clock;
    the pool is deleted afterwards (the session's Redis is shared)."""
    status, created = issuer.call(
        "CreateIdentityPool",
        {
            "IdentityPoolName": f"time_{uuid.uuid4().hex}",
            "AllowUnauthenticatedIdentities": False,
            "DeveloperProviderName": PROVIDER,
        },
    )
    assert status == 200, created
    status, issued = issuer.call(
        TOKEN_OP,
        {
            "IdentityPoolId": created["IdentityPoolId"],
            "Logins": {PROVIDER: "ticking"},
            "TokenDuration": 60,
        },
    )
    assert status == 200, issued
    claims = jwt.decode(issued["Token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 60
    yield issued["IdentityId"], issued["Token"], int(claims["iat"])
    status, _ = issuer.call("DeleteIdentityPool", {"IdentityPoolId": created["IdentityPoolId"]})
    assert status == 200


def present(broker: Broker, identity_id: str, token: str) -> tuple[int, Any]:
    return broker.call(  # type: ignore[no-any-return]
        "GetOpenIdToken", {"IdentityId": identity_id, "Logins": {COGNITO: token}}, sign=False
    )


def test_a_presented_token_is_good_until_the_second_of_its_exp(
    issuer: Broker, developer_token: tuple[str, str, int]
) -> None:
    identity_id, token, iat = developer_token
    issuer.clock.now = iat + 59.999  # the last instant before exp
    status, fresh = present(issuer, identity_id, token)
    assert status == 200, fresh
    # the token GetOpenIdToken gives back lasts 600 s from the clock's second
    claims = jwt.decode(fresh["Token"], options={"verify_signature": False})
    assert (claims["iat"], claims["exp"]) == (iat + 59, iat + 59 + 600)

    issuer.clock.now = iat + 60  # exp itself: RFC 7519 4.1.4, "on or after"
    status, refused = present(issuer, identity_id, token)
    assert status == 400
    assert refused == {
        "__type": "NotAuthorizedException",
        "message": "Invalid login token. The token has expired.",
    }

    issuer.clock.now = iat + 59 + 600  # the fresh one expires in turn
    status, refused = present(issuer, identity_id, fresh["Token"])
    assert status == 400 and refused["message"].endswith("The token has expired.")


@pytest.mark.parametrize("behind", [0.001, 1, 60, 300])
def test_a_broker_whose_clock_is_behind_the_issuers_accepts_its_fresh_token(
    redis_server: RedisServer,
    broker_credentials: dict[str, str],
    developer_token: tuple[str, str, int],
    behind: float,
) -> None:
    """Two brokers on one Redis, the second one's clock ``behind`` seconds late (up to the
    5 minutes of skew SigV4 and key retention allow): the token the first just issued is
    not "issued in the future" to the second."""
    identity_id, token, iat = developer_token
    late = Broker(redis_server.url, broker_credentials, Clock(iat - behind))
    status, answer = present(late, identity_id, token)
    assert status == 200, answer


def test_a_token_issued_more_than_five_minutes_ahead_is_refused(
    redis_server: RedisServer,
    broker_credentials: dict[str, str],
    developer_token: tuple[str, str, int],
) -> None:
    identity_id, token, iat = developer_token
    late = Broker(redis_server.url, broker_credentials, Clock(iat - 302))
    status, answer = present(late, identity_id, token)
    assert status == 400
    assert answer["__type"] == "NotAuthorizedException"


# --- the backend door's token cache -----------------------------------------------------
@pytest.fixture(scope="module")
def backend_doors(
    redis_server: RedisServer, broker_credentials: dict[str, str]
) -> Iterator[dict[float, Broker]]:
    """One in-process backend door per share of lifetime a cached token must have left,
    all on one pool the door creates by name, each with its own clock."""
    name = f"time {uuid.uuid4().hex[:12]}"
    doors = {
        share: Broker(
            redis_server.url,
            broker_credentials,
            Clock(),
            BROKER_BACKEND_AUTH="api_key",
            BROKER_BACKEND_API_KEYS=API_KEY,
            BROKER_BACKEND_POOL_NAME=name,
            BROKER_BACKEND_DEVELOPER_PROVIDER=PROVIDER,
            BROKER_BACKEND_CACHE_MIN_REMAINING=str(share),
        )
        for share in (0.001, 0.5, 0.9)
    }
    yield doors
    # the session's Redis is shared: delete the pool the doors made (its id is the aud)
    token = backend_token(doors[0.5], "cleanup", 60)["token"]
    pool_id = jwt.decode(token, options={"verify_signature": False})["aud"]
    status, _ = doors[0.5].call("DeleteIdentityPool", {"IdentityPoolId": pool_id})
    assert status == 200


def backend_token(door: Broker, user: str, duration: int) -> dict[str, Any]:
    response = door.client.post(
        "/v1/token",
        headers={"X-Api-Key": API_KEY},
        json={"user_id": user, "token_duration": duration},
    )
    assert response.status_code == 200, response.json
    data: dict[str, Any] = response.json["data"]
    return data


@settings(max_examples=CACHE_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    share=st.sampled_from([0.001, 0.5, 0.9]),
    duration=st.integers(1, 3600),
    steps=st.lists(st.floats(0, 1.2, allow_nan=False), min_size=1, max_size=12),
)
@pytest.mark.slow
def test_a_cached_token_is_never_served_stale(
    backend_doors: dict[float, Broker], share: float, duration: int, steps: list[float]
) -> None:
    """Whatever the clock does (moving forward by up to 1.2 lifetimes at a time), the door
    hands out the cached token only while more than ``share`` of its lifetime is left at
    that clock, and otherwise a new one issued at that clock's second: never a stale one."""
    door = backend_doors[share]
    user = f"cached-{uuid.uuid4().hex}"
    previous: dict[str, Any] | None = None
    for step in [0.0, *steps]:
        door.clock.advance(step * duration)
        now = door.clock()
        data = backend_token(door, user, duration)
        claims = jwt.decode(data["token"], options={"verify_signature": False})
        expires = dt.datetime.fromisoformat(data["expires_at"]).timestamp()
        assert expires == claims["exp"] == claims["iat"] + duration
        if data["cached"]:
            assert previous is not None and data["token"] == previous["token"]
            assert claims["exp"] - now > share * duration, (now, claims)
        else:
            assert claims["iat"] == int(now) and claims["exp"] > now
        previous = data
