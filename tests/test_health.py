"""Health endpoints, discovery, and behaviour while Redis is unreachable (in-process app)."""

from __future__ import annotations

import json
import time
from typing import Any

import requests
from flask.testing import FlaskClient
from support.processes import BrokerServer, free_port
from support.signing import signed_headers

from broker.app.factory import create_app
from config.settings import Settings


def test_healthz_and_readyz_answer_on_the_live_server(broker_server: BrokerServer) -> None:
    assert requests.get(f"{broker_server.url}/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(f"{broker_server.url}/readyz", timeout=5)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


def test_discovery_names_the_issuer_and_jwks(broker_server: BrokerServer) -> None:
    document = requests.get(
        f"{broker_server.url}/.well-known/openid-configuration", timeout=5
    ).json()
    assert document["issuer"] == broker_server.url
    assert document["jwks_uri"] == f"{broker_server.url}/.well-known/jwks_uri"
    assert document["id_token_signing_alg_values_supported"] == ["RS512"]
    assert {"subject_types_supported", "response_types_supported", "claims_supported"} <= set(
        document
    )


def unreachable_client(credentials: dict[str, str]) -> FlaskClient:
    settings = Settings.from_env(
        {
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "BROKER_CREDENTIALS": ",".join(f"{k}:{v}" for k, v in credentials.items()),
            "BROKER_REDIS_TIMEOUT": "0.5",
        }
    )
    return create_app(settings).test_client()


def test_readyz_is_503_with_reasons_when_redis_is_unreachable(
    broker_credentials: dict[str, str],
) -> None:
    response = unreachable_client(broker_credentials).get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert any(reason.startswith("redis unreachable") for reason in body["reasons"])
    assert "signing key not loaded" in body["reasons"]
    assert unreachable_client(broker_credentials).get("/healthz").status_code == 200


def test_api_calls_fail_fast_with_internal_error_when_redis_is_unreachable(
    broker_credentials: dict[str, str],
) -> None:
    client = unreachable_client(broker_credentials)
    key_id, secret = next(iter(broker_credentials.items()))
    body = json.dumps({"IdentityPoolId": "us-east-1:abc", "Logins": {"p": "u"}}).encode()
    headers: dict[str, Any] = signed_headers(
        "http://localhost/",
        body,
        operation="GetOpenIdTokenForDeveloperIdentity",
        key_id=key_id,
        secret=secret,
    )
    started = time.monotonic()
    response = client.post("/", data=body, headers=headers)
    elapsed = time.monotonic() - started
    assert response.status_code == 500
    assert json.loads(response.data)["__type"] == "InternalErrorException"
    assert response.headers["x-amzn-ErrorType"] == "InternalErrorException:"
    assert elapsed < 2.0


def test_unknown_paths_answer_json_404(client: FlaskClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.get_json()["error"] == "Not Found"
