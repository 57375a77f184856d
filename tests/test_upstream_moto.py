"""Upstream mode against moto_server, a third-party implementation of the Cognito Identity
API. Its tokens are opaque strings (no JWT), so the broker takes their lifetime from
TokenDuration; it also answers with a new IdentityId unless one is given, which shows that
the broker passes the remembered IdentityId when it renews a token. Calls are counted from
moto's own request recorder.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from support.backend import API_KEY, TRUSTED, Clock, door_client, token_for
from support.processes import RedisServer
from support.upstream import (
    UPSTREAM_PROVIDER,
    MotoServer,
    aws_environment,
    cognito_client,
    create_pool,
    upstream_environment,
)

pytestmark = pytest.mark.slow  # servers or subprocesses of its own: not the fast lane

MOTO_KEY = "AKIDMOTOTESTING"  # moto accepts any credentials
MOTO_SECRET = "moto-accepts-any-secret"


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def door(
    redis_server: RedisServer,
    broker_credentials: dict[str, str],
    moto: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., FlaskClient]:
    for name, value in aws_environment(MOTO_KEY, MOTO_SECRET).items():
        monkeypatch.setenv(name, value)
    admin = cognito_client(moto.url, MOTO_KEY, MOTO_SECRET)
    pool_id = create_pool(admin, f"moto_{uuid.uuid4().hex}")
    admin.close()

    def make(clock: Callable[[], float] = time.time) -> FlaskClient:
        upstream_env = upstream_environment(endpoint=moto.url, pool_id=pool_id, api_key=API_KEY)
        return door_client(redis_server.url, broker_credentials, upstream_env, clock)

    return make


def calls_for(moto: MotoServer, user: str) -> list[dict[str, Any]]:
    return [call for call in moto.calls() if call["Logins"] == {UPSTREAM_PROVIDER: user}]


def test_moto_tokens_are_cached_for_their_token_duration(
    door: Callable[..., FlaskClient], moto: MotoServer
) -> None:
    clock = Clock()
    client = door(clock)
    user = f"moto-{uuid.uuid4().hex}"
    first = token_for(client, user, token_duration=1000)
    for _ in range(10):
        assert token_for(client, user, token_duration=1000)["token"] == first["token"]

    assert len(calls_for(moto, user)) == 1
    assert first["identity_id"].startswith("us-east-1:")
    expires = time.strptime(first["expires_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(time.mktime(expires) - time.mktime(time.gmtime(clock.now)) - 1000) <= 1


def test_renewal_passes_the_remembered_identity(
    door: Callable[..., FlaskClient], moto: MotoServer
) -> None:
    clock = Clock()
    client = door(clock)
    user = f"moto-{uuid.uuid4().hex}"
    first = token_for(client, user)
    clock.advance(451)  # past half of 900 s
    renewed = token_for(client, user)

    calls = calls_for(moto, user)
    assert len(calls) == 2
    assert "IdentityId" not in calls[0]
    assert calls[1]["IdentityId"] == first["identity_id"]
    assert renewed["identity_id"] == first["identity_id"]
    assert renewed["token"] != first["token"] and renewed["cached"] is False


def test_credentials_come_from_upstream_with_the_user_s_upstream_token(
    door: Callable[..., FlaskClient], moto: MotoServer
) -> None:
    """Cognito's enhanced flow for developer identities: the user's upstream token (from the
    token cache), then GetCredentialsForIdentity with it as the cognito-identity login."""
    client = door()
    user = f"moto-{uuid.uuid4().hex}"
    token = token_for(client, user)
    response = client.post("/v1/credentials", headers=TRUSTED, json={"user_id": user})

    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    data = response.json["data"]
    assert data["identity_id"] == token["identity_id"]
    assert set(data["credentials"]) == {
        "access_key_id",
        "secret_key",
        "session_token",
        "expires_at",
    }
    assert all(data["credentials"].values())
    [call] = [
        call
        for call in moto.calls("GetCredentialsForIdentity")
        if call["IdentityId"] == token["identity_id"]
    ]
    assert call["Logins"] == {"cognito-identity.amazonaws.com": token["token"]}
    assert len(calls_for(moto, user)) == 1  # the token came from the cache
