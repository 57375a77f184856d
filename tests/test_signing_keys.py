"""Signing keys: one generated key shared by every process on a Redis, or a PEM file."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask.testing import FlaskClient
from support.processes import BrokerServer, RedisServer

from broker.app.factory import create_app
from broker.store.connection import RedisConnector
from broker.store.signing_keys import RedisSigningKeys
from broker.tokens.keys import RedisKeySource
from config.settings import Settings


def b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def rfc7638_thumbprint(public: rsa.RSAPublicKey) -> str:
    numbers = public.public_numbers()
    members = {"e": b64(numbers.e), "kty": "RSA", "n": b64(numbers.n)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def jwks(url: str) -> dict[str, Any]:
    document: dict[str, Any] = requests.get(f"{url}/.well-known/jwks_uri", timeout=5).json()
    return document


def test_concurrent_first_loads_on_a_new_redis_create_one_key() -> None:
    """Eight processes' worth of key sources racing on an empty Redis agree on one key."""
    with RedisServer() as redis_server:
        kids: list[str] = []

        def load() -> None:
            connector = RedisConnector.from_url(redis_server.url, 2.0)
            kids.append(RedisKeySource(RedisSigningKeys(connector)).load().current.kid)

        threads = [threading.Thread(target=load) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(kids) == 8
        assert len(set(kids)) == 1
        assert redis_server.client().hlen("ib:{signing}:keys") == 1


def test_two_broker_processes_on_one_redis_publish_the_same_key(
    broker_server: BrokerServer, redis_server: RedisServer, broker_credentials: dict[str, str]
) -> None:
    with BrokerServer(
        redis_url=redis_server.url, credentials=broker_credentials, workers=2
    ) as second:
        assert jwks(second.url) == jwks(broker_server.url)


def test_a_key_file_is_used_as_is_with_its_rfc7638_kid(
    tmp_path: Path, redis_server: RedisServer, broker_credentials: dict[str, str]
) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_file = tmp_path / "signing.pem"
    key_file.write_bytes(pem)
    settings = Settings.from_env(
        {
            "REDIS_URL": redis_server.url,
            "BROKER_CREDENTIALS": ",".join(f"{k}:{v}" for k, v in broker_credentials.items()),
            "BROKER_SIGNING_KEY_FILE": str(key_file),
        }
    )
    client: FlaskClient = create_app(settings).test_client()
    keys = client.get("/.well-known/jwks.json").get_json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kid"] == rfc7638_thumbprint(private.public_key())
    assert keys[0]["n"] == b64(private.public_key().public_numbers().n)
