"""Helpers for the backend door's tests: apps configured per translator, a movable clock,
test keys, a JWKS served from a local thread, session makers (PyJWT for JWTs, a real
Flask app's session interface for cookies), and POST /v1/token with the test API key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner
from jwt.algorithms import RSAAlgorithm

from broker.app.factory import create_app
from config.settings import Settings

HS_SECRET = "backend-test-hmac-secret-of-more-than-32-bytes"
COOKIE_SECRET = "backend-flask-secret-key-for-tests"
API_KEY = "test-api-key-0123456789abcdef0123456789"
JWT_ISSUER = "https://backend.example.test"
JWT_AUDIENCE = "identity-broker-tests"
TRUSTED = {"X-Api-Key": API_KEY}
#: The backend door's settings for HS256 JWTs (HS_SECRET) from JWT_ISSUER for JWT_AUDIENCE.
HS_JWT_ENV = {
    "BROKER_BACKEND_AUTH": "jwt",
    "BROKER_BACKEND_JWT_HS_SECRET": HS_SECRET,
    "BROKER_BACKEND_JWT_ISSUER": JWT_ISSUER,
    "BROKER_BACKEND_JWT_AUDIENCE": JWT_AUDIENCE,
}


class Clock:
    """A clock the test moves: ``create_app(settings, clock=clock)``. It starts on a whole
    second, as the tokens' iat and exp are whole seconds."""

    def __init__(self, start: float | None = None) -> None:
        self.now = float(int(time.time())) if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- an in-process broker and its backend door ------------------------------------------
def door_client(
    redis: str | Mapping[str, str],
    credentials: Mapping[str, str],
    env: Mapping[str, str],
    clock: Callable[[], float] = time.time,
) -> FlaskClient:
    """A test client of the app in-process on ``redis`` (a standalone URL, or a topology's
    REDIS_* variables) with these AWS key pairs, set up further by ``env`` (BROKER_*
    variables, which win), its clock injectable."""
    settings = Settings.from_env(
        {
            **({"REDIS_URL": redis} if isinstance(redis, str) else redis),
            "BROKER_CREDENTIALS": ",".join(f"{k}:{v}" for k, v in credentials.items()),
            **env,
        }
    )
    app = create_app(settings, clock=clock)
    app.testing = True
    return app.test_client()


def give_door_pool_a_role(
    client: FlaskClient, headers: Mapping[str, str], body: Mapping[str, Any], role: str
) -> str:
    """The id of an in-process door's pool, made by a first ``POST /v1/token`` (``headers``
    and ``body`` prove a user), now with ``role`` as its authenticated role (set through the
    app's store: no AWS door client is needed). ``/v1/credentials`` can then get credentials."""
    from broker.identity.models import PoolRoles
    from broker.services import EXTENSION

    answer = client.post("/v1/token", headers=dict(headers), json=dict(body))
    assert answer.status_code == 200, answer.json
    claims = jwt.decode(answer.json["data"]["token"], options={"verify_signature": False})
    pool_id: str = claims["aud"]
    services = client.application.extensions[EXTENSION]
    services.store.set_pool_roles(pool_id, PoolRoles(roles={"authenticated": role}))
    return pool_id


def token_for(client: FlaskClient, user: str, **body: Any) -> dict[str, Any]:
    """POST /v1/token for ``user`` with the test API key; asserts a 200, returns its data."""
    response = client.post("/v1/token", headers=TRUSTED, json={"user_id": user, **body})
    assert response.status_code == 200, response.json
    data: dict[str, Any] = response.json["data"]
    return data


def tokens_at_once(
    base_url: str, user: str, callers: int = 50
) -> tuple[list[dict[str, Any]], list[BaseException]]:
    """``callers`` threads POST /v1/token for ``user`` to a live broker at the same moment
    (a barrier), each on its own connection: the answers' bodies and the exceptions raised."""
    barrier = threading.Barrier(callers)
    answers: list[dict[str, Any]] = []
    failures: list[BaseException] = []

    def call() -> None:
        with requests.Session() as http:
            barrier.wait()
            try:
                response = http.post(
                    f"{base_url}/v1/token",
                    headers=TRUSTED,
                    json={"user_id": user},
                    timeout=30,
                )
                answers.append(response.json())
            except Exception as exc:
                failures.append(exc)

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers, failures


# --- keys --------------------------------------------------------------------------------
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


# --- sessions ----------------------------------------------------------------------------
def claims_for(user: str, *, lifetime: int = 300, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": user,
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "iat": now,
        "exp": now + lifetime,
    }
    claims.update(extra)
    return claims


def hs_jwt(claims: Mapping[str, Any], secret: str | bytes = HS_SECRET) -> str:
    return jwt.encode(dict(claims), secret, algorithm="HS256")


def rs_jwt(claims: Mapping[str, Any], key: rsa.RSAPrivateKey, kid: str | None = None) -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(dict(claims), key, algorithm="RS256", headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade_jwt(
    header: Mapping[str, Any], claims: Mapping[str, Any], hmac_key: bytes | None
) -> str:
    """A JWS no library would make: ``alg: none`` (empty signature) or HS256 keyed with
    whatever bytes are given (for example an RSA public key's PEM, RFC 8725 section 2.1)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = (
        b""
        if hmac_key is None
        else hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    )
    return f"{signing_input}.{_b64(signature)}"


def flask_cookie(
    session: Mapping[str, Any],
    secret: str = COOKIE_SECRET,
    salt: str = "cookie-session",
    clock: Callable[[], float] | None = None,
) -> str:
    """The cookie a real Flask app with this SECRET_KEY (and session salt) sets; signed at
    ``clock()`` when given (the broker's injected clock), so the two never disagree."""

    class SaltedInterface(SecureCookieSessionInterface):
        pass

    SaltedInterface.salt = salt
    app = Flask("backend-under-test")
    app.secret_key = secret
    app.session_interface = SaltedInterface()
    serializer = app.session_interface.get_signing_serializer(app)
    assert serializer is not None
    if clock is not None:
        tick = clock
        serializer.signer = type(
            "ClockedTimestampSigner",
            (TimestampSigner,),
            {"get_timestamp": lambda self: int(tick())},
        )
    value: str = serializer.dumps(dict(session))
    return value


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- a JWKS on 127.0.0.1 -----------------------------------------------------------------
class JwksServer:
    """Serves ``document`` at ``/jwks.json`` from a thread; counts the GETs. With
    ``redirect`` set, answers every GET with a 302 to that URL instead."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.hits = 0
        self.redirect: str | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.hits += 1
                if server.redirect is not None:
                    self.send_response(302)
                    self.send_header("Location", server.redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps(server.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/jwks.json"

    @contextmanager
    def running(self) -> Iterator[JwksServer]:
        self._thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
