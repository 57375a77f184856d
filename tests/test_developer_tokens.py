"""GetOpenIdTokenForDeveloperIdentity end to end: boto3 and the AWS CLI against a live
gunicorn (3 workers) and a real redis-server; tokens verified by PyJWT from discovery."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import uuid
from typing import Any

import boto3
import botocore.config
import pytest
from conftest import DEVELOPER_PROVIDER, REGION
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import RSAKey
from support import oidc
from support.processes import BrokerServer
from support.topologies import Topology

pytestmark = pytest.mark.every_topology

POOL_ARN_CLAIM = "https://cognito-identity.amazonaws.com/identity-pool-arn"
TAGS_CLAIM = "https://aws.amazon.com/tags"


def developer_token(cognito: Any, pool_id: str, user: str, **extra: Any) -> dict[str, Any]:
    response: dict[str, Any] = cognito.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: user}, **extra
    )
    return response


def identity_count(store: Topology, pool_id: str) -> int:
    """How many identities the pool holds, read straight from Redis."""
    with store.client() as client:
        return int(client.hlen(f"ib:{{{pool_id}}}:identities"))


def test_first_call_creates_an_identity_and_the_next_returns_it(
    cognito: Any, pool: dict[str, Any], store: Topology
) -> None:
    pool_id = pool["IdentityPoolId"]
    first = developer_token(cognito, pool_id, "user-1")
    second = developer_token(cognito, pool_id, "user-1")
    other = developer_token(cognito, pool_id, "user-2")

    assert first["IdentityId"].startswith(f"{REGION}:")
    assert second["IdentityId"] == first["IdentityId"]
    assert other["IdentityId"] != first["IdentityId"]
    assert identity_count(store, pool_id) == 2


def test_fifty_concurrent_first_calls_create_exactly_one_identity(
    broker_server: BrokerServer, pool: dict[str, Any], store: Topology
) -> None:
    pool_id = pool["IdentityPoolId"]
    session = boto3.session.Session(
        aws_access_key_id=broker_server.access_key_id,
        aws_secret_access_key=broker_server.secret_access_key,
        region_name=REGION,
    )
    config = botocore.config.Config(retries={"max_attempts": 1}, max_pool_connections=60)
    clients = [
        session.client("cognito-identity", endpoint_url=broker_server.url, config=config)
        for _ in range(50)
    ]
    barrier = threading.Barrier(50)
    ids: list[str] = []
    errors: list[BaseException] = []

    def call(client: Any) -> None:
        barrier.wait()
        try:
            ids.append(developer_token(client, pool_id, "racing-user")["IdentityId"])
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(ids) == 50
    assert len(set(ids)) == 1
    assert identity_count(store, pool_id) == 1


def test_token_verifies_from_discovery_with_the_contract_header_and_claims(
    cognito: Any, pool: dict[str, Any], broker_server: BrokerServer
) -> None:
    pool_id = pool["IdentityPoolId"]
    response = developer_token(cognito, pool_id, "alice")

    header, claims = oidc.verify(broker_server.url, response["Token"], audience=pool_id)

    jwks = oidc.discover(broker_server.url)["jwks_uri"]
    assert jwks == f"{broker_server.url}/.well-known/jwks_uri"
    assert header == {"kid": header["kid"], "typ": "JWS", "alg": "RS512"}
    raw_header = response["Token"].split(".")[0]
    header_json = base64.urlsafe_b64decode(raw_header + "=" * (-len(raw_header) % 4))
    assert list(json.loads(header_json)) == ["kid", "typ", "alg"]  # AWS's order, exactly
    assert set(claims) == {"sub", "aud", "amr", "iss", POOL_ARN_CLAIM, "iat", "exp"}
    assert claims["sub"] == response["IdentityId"]
    assert claims["aud"] == pool_id
    assert claims["iss"] == broker_server.url
    assert claims["amr"] == [
        "authenticated",
        DEVELOPER_PROVIDER,
        f"{DEVELOPER_PROVIDER}:{pool_id}:alice",
    ]
    assert claims[POOL_ARN_CLAIM] == (
        f"arn:aws:cognito-identity:{REGION}:000000000000:identitypool/{pool_id}"
    )
    assert claims["exp"] - claims["iat"] == 900


def test_token_duration_and_principal_tags(
    cognito: Any, pool: dict[str, Any], broker_server: BrokerServer
) -> None:
    pool_id = pool["IdentityPoolId"]
    tags = {"team": "blue", "tier": "gold"}
    response = developer_token(cognito, pool_id, "bob", TokenDuration=86400, PrincipalTags=tags)

    _, claims = oidc.verify(broker_server.url, response["Token"], audience=pool_id)

    assert claims["exp"] - claims["iat"] == 86400
    assert claims[TAGS_CLAIM] == {"principal_tags": {"team": ["blue"], "tier": ["gold"]}}


def test_jwks_documents_agree_and_keys_are_rs512(broker_server: BrokerServer) -> None:
    import requests

    a = requests.get(f"{broker_server.url}/.well-known/jwks_uri", timeout=5).json()
    b = requests.get(f"{broker_server.url}/.well-known/jwks.json", timeout=5).json()
    assert a == b
    assert len(a["keys"]) == 1
    assert set(a["keys"][0]) == {"kty", "alg", "use", "kid", "n", "e"}
    assert a["keys"][0]["alg"] == "RS512"


def test_tokens_from_every_worker_verify_against_one_jwks(
    broker_server: BrokerServer, pool: dict[str, Any]
) -> None:
    """Many concurrent requests on fresh connections spread over the three workers; the
    access log's pid field proves that several workers answered."""
    pool_id = pool["IdentityPoolId"]
    session = boto3.session.Session(
        aws_access_key_id=broker_server.access_key_id,
        aws_secret_access_key=broker_server.secret_access_key,
        region_name=REGION,
    )
    tokens: list[str] = []

    def call(n: int) -> None:
        client = session.client(
            "cognito-identity",
            endpoint_url=broker_server.url,
            config=botocore.config.Config(retries={"max_attempts": 1}),
        )
        for i in range(5):
            tokens.append(developer_token(client, pool_id, f"worker-user-{n}-{i}")["Token"])

    threads = [threading.Thread(target=call, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(tokens) == 60
    kids = {oidc.verify(broker_server.url, t, audience=pool_id)[0]["kid"] for t in tokens}
    assert len(kids) == 1
    assert len(broker_server.worker_pids()) == 3


def test_aws_cli_gets_a_token(
    aws_cli_env: dict[str, str], pool: dict[str, Any], broker_server: BrokerServer
) -> None:
    pool_id = pool["IdentityPoolId"]
    result = subprocess.run(
        [
            "aws",
            "cognito-identity",
            "get-open-id-token-for-developer-identity",
            "--endpoint-url",
            broker_server.url,
            "--identity-pool-id",
            pool_id,
            "--logins",
            f"{DEVELOPER_PROVIDER}=cli-user",
            "--token-duration",
            "1200",
        ],
        env=aws_cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    _, claims = oidc.verify(broker_server.url, output["Token"], audience=pool_id)
    assert claims["sub"] == output["IdentityId"]
    assert claims["exp"] - claims["iat"] == 1200


@pytest.mark.parametrize("user", ["ünïcödé-user", "a" * 1024, "user with spaces", "x:y:z"])
def test_any_developer_user_id_round_trips(
    cognito: Any, pool: dict[str, Any], broker_server: BrokerServer, user: str
) -> None:
    pool_id = pool["IdentityPoolId"]
    first = developer_token(cognito, pool_id, user)
    again = developer_token(cognito, pool_id, user)
    _, claims = oidc.verify(broker_server.url, first["Token"], audience=pool_id)
    assert again["IdentityId"] == first["IdentityId"]
    assert claims["amr"][2] == f"{DEVELOPER_PROVIDER}:{pool_id}:{user}"


def test_new_identity_ids_are_region_and_uuid4(cognito: Any, pool: dict[str, Any]) -> None:
    identity_id = developer_token(cognito, pool["IdentityPoolId"], str(uuid.uuid4()))["IdentityId"]
    region, _, rest = identity_id.partition(":")
    assert region == REGION
    assert uuid.UUID(rest).version == 4
    assert rest == rest.lower()


@given(
    claims=st.dictionaries(
        st.text(min_size=1, max_size=12),
        st.one_of(st.integers(), st.text(max_size=40), st.lists(st.text(max_size=8), max_size=3)),
        max_size=8,
    )
)
@settings(max_examples=40, deadline=None)
def test_the_token_signer_makes_exactly_what_joserfc_jwt_encode_makes(
    claims: dict[str, Any],
) -> None:
    """broker/tokens/signer.py assembles the JWS from joserfc's parts (the header segment
    encoded once per key); the bytes must equal joserfc's own jwt.encode, for any claims,
    non-ASCII text included (PKCS#1 v1.5 signing is deterministic)."""
    from joserfc import jwt

    from broker.tokens.keys import KeyRing, KeySet, SigningKey
    from broker.tokens.signer import TokenSigner

    key = SigningKey(kid="kid-equivalence", key=_EQUIVALENCE_KEY)
    ring = KeyRing(_StaticKeys(KeySet(current=key, published=(key,))))
    header = {"kid": key.kid, "typ": "JWS", "alg": "RS512"}
    expected = jwt.encode(header, dict(claims), key.key, algorithms=["RS512"], default_type=None)
    assert TokenSigner(ring).sign(claims) == expected


class _StaticKeys:
    def __init__(self, keys: Any) -> None:
        self._keys = keys

    def load(self) -> Any:
        return self._keys


_EQUIVALENCE_KEY = RSAKey.generate_key(2048, private=True)
