"""The backend door's development default (issue 16 item 1): with no BROKER_BACKEND_AUTH,
while the service listens on loopback, ``POST /v1/token`` works on the documented key
``broker-development-api-key-loopback-only`` (``X-Api-Key``), on a broker-owned pool named
``default`` with developer provider ``login.broker.dev``; off loopback it does not.

The live test starts gunicorn with nothing but a Redis and a loopback port (no
BROKER_CREDENTIALS, no BROKER_ISSUER, no BROKER_BACKEND_*), sends the README's first curl
and verifies the token with PyJWT against the broker's own discovery and JWKS.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import jwt
import pytest
from support.processes import BrokerServer, RedisServer

from config.backend import DEV_API_KEY, DEV_DEVELOPER_PROVIDER, DEV_POOL_NAME
from config.settings import ConfigError, Settings

OFF_LOOPBACK = {"BROKER_BIND": "0.0.0.0:8000", "BROKER_CREDENTIALS": "AKIDOWNKEY0001:" + "s" * 40}
POOL_ID = "us-east-1:00000000-0000-4000-8000-000000000000"
KEYS = {"BROKER_BACKEND_API_KEYS": "k" * 40}


def test_no_configuration_on_loopback_is_the_development_door() -> None:
    backend = Settings.from_env({}).backend
    assert backend.development_key is True
    assert (backend.auth, backend.api_keys) == ("api_key", (DEV_API_KEY,))
    assert (backend.pool_name, backend.developer_provider) == (DEV_POOL_NAME, "login.broker.dev")


@pytest.mark.parametrize(
    ("pool", "named"),
    [
        ({"BROKER_BACKEND_POOL_ID": POOL_ID}, "BROKER_BACKEND_POOL_ID"),
        (
            {"BROKER_BACKEND_POOL_NAME": "mine", "BROKER_BACKEND_DEVELOPER_PROVIDER": "login.x"},
            "BROKER_BACKEND_POOL_NAME",
        ),
    ],
)
@pytest.mark.parametrize("bind", [{}, OFF_LOOPBACK])
def test_a_pool_named_without_an_auth_mode_is_refused_not_served_on_the_public_key(
    pool: dict[str, str], named: str, bind: dict[str, str]
) -> None:
    """The development door trusts a public key: it keeps to its own pool. A pool the
    operator names is production's, so naming one without BROKER_BACKEND_AUTH is a mistake
    said at start (before, on loopback the public key served it)."""
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({**bind, **pool})
    assert str(refused.value).startswith(f"{named} is set but BROKER_BACKEND_AUTH is not")
    served = Settings.from_env({**pool, "BROKER_BACKEND_AUTH": "api_key", **KEYS}).backend
    assert served.development_key is False and served.api_keys == (KEYS["BROKER_BACKEND_API_KEYS"],)


def test_off_loopback_there_is_no_development_door() -> None:
    backend = Settings.from_env(OFF_LOOPBACK).backend
    assert (backend.auth, backend.development_key, backend.api_keys) == (None, False, ())


def test_the_development_key_named_off_loopback_is_refused() -> None:
    env = {
        **OFF_LOOPBACK,
        "BROKER_BACKEND_AUTH": "api_key",
        "BROKER_BACKEND_API_KEYS": DEV_API_KEY,
        "BROKER_BACKEND_POOL_NAME": "p",
        "BROKER_BACKEND_DEVELOPER_PROVIDER": "login.p",
    }
    with pytest.raises(ConfigError, match="works on loopback only"):
        Settings.from_env(env)
    on_loopback = {k: v for k, v in env.items() if k not in OFF_LOOPBACK}
    assert Settings.from_env(on_loopback).backend.api_keys == (DEV_API_KEY,)


def test_auth_off_turns_the_door_off_on_loopback_too() -> None:
    backend = Settings.from_env({"BROKER_BACKEND_AUTH": "off"}).backend
    assert (backend.auth, backend.development_key) == (None, False)


def _post(url: str, key: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["X-Api-Key"] = key
    request = urllib.request.Request(
        f"{url}/v1/token", data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.slow
def test_a_broker_with_no_configuration_answers_the_first_curl(tmp_path: Any) -> None:
    with RedisServer() as redis_server:
        server = BrokerServer(  # BROKER_BIND and REDIS_URL, nothing else of the broker's
            redis_url=redis_server.url,
            credentials=None,
            workers=None,
            issuer=None,
            log_path=tmp_path / "broker.log",
        )
        assert {k for k in server.env() if k.startswith("BROKER_")} == {"BROKER_BIND"}
        with server:
            status, first = _post(server.url, DEV_API_KEY, {"user_id": "alice"})
            assert status == 200, first
            again = _post(server.url, DEV_API_KEY, {"user_id": "alice"})[1]
            assert again["data"]["identity_id"] == first["data"]["identity_id"]
            token = first["data"]["token"]
            issuer = f"http://127.0.0.1:{server.port}"  # derived from BROKER_BIND
            with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration") as r:
                jwks_uri = json.loads(r.read())["jwks_uri"]
            key = jwt.PyJWKClient(jwks_uri).get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token, key.key, algorithms=["RS512"], issuer=issuer, options={"verify_aud": False}
            )
            assert claims["sub"] == first["data"]["identity_id"]
            assert f"{DEV_DEVELOPER_PROVIDER}:" in " ".join(claims["amr"])
            assert _post(server.url, "x" * 40, {"user_id": "alice"})[0] == 401
            assert _post(server.url, None, {"user_id": "alice"})[0] == 401
        log = (tmp_path / "broker.log").read_text()
        warnings = [line for line in log.splitlines() if "BROKER_BACKEND_AUTH is not set" in line]
        assert len(warnings) == 1, warnings  # one worker, one warning
        assert DEV_API_KEY in warnings[0] and "loopback" in warnings[0]
