"""POST /v1/token per session translator: a valid session gets the identity and token the
AWS API gives for that user; every forged, expired or misdirected session gets
UNAUTHENTICATED and never a token.

The door runs in-process (its clock injectable) against the session's real Redis and signs
with the same keys as the live gunicorn broker, whose issuer it shares, so PyJWT verifies
its tokens from the broker's discovery document and boto3 asks the AWS door for the same
user's identity.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import DEVELOPER_PROVIDER
from cryptography.hazmat.primitives.asymmetric import rsa
from flask.testing import FlaskClient
from support import oidc
from support.backend import (
    API_KEY,
    COOKIE_SECRET,
    HS_SECRET,
    JWT_AUDIENCE,
    JWT_ISSUER,
    Clock,
    JwksServer,
    bearer,
    claims_for,
    flask_cookie,
    handmade_jwt,
    hs_jwt,
    public_jwk,
    public_pem,
    rs_jwt,
    rsa_key,
)
from support.processes import BrokerServer, RedisServer

from broker.app.factory import create_app
from config.settings import Settings

Request = dict[str, Any]  # keyword arguments of FlaskClient.post
MakeDoor = Callable[..., FlaskClient]
MODES = ["jwt-hs", "jwt-pem", "jwt-jwks", "cookie", "api_key"]
KID = "backend-key-1"


@pytest.fixture(scope="module")
def backend_key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture(scope="module")
def stranger_key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture(scope="module")
def pem_file(backend_key: rsa.RSAPrivateKey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("backend-keys") / "backend-public.pem"
    path.write_bytes(public_pem(backend_key))
    return path


@pytest.fixture(scope="module")
def jwks(backend_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    with JwksServer({"keys": [public_jwk(backend_key, KID)]}).running() as server:
        yield server


def build_door(
    redis_url: str,
    issuer: str,
    credentials: dict[str, str],
    env: dict[str, str],
    clock: Callable[[], float] = time.time,
) -> FlaskClient:
    settings = Settings.from_env(
        {
            "REDIS_URL": redis_url,
            "BROKER_CREDENTIALS": ",".join(f"{k}:{v}" for k, v in credentials.items()),
            "BROKER_ISSUER": issuer,
            **env,
        }
    )
    app = create_app(settings, clock=clock)
    app.testing = True
    return app.test_client(use_cookies=False)  # the Cookie header is sent as given


@pytest.fixture
def make_door(
    redis_server: RedisServer, broker_server: BrokerServer, broker_credentials: dict[str, str]
) -> MakeDoor:
    """An in-process app with the given BROKER_BACKEND_* variables, issuer = the live broker."""

    def make(env: dict[str, str], clock: Callable[[], float] = time.time) -> FlaskClient:
        return build_door(redis_server.url, broker_server.url, broker_credentials, env, clock)

    return make


def mode_env(mode: str, pem_file: Path, jwks_url: str) -> dict[str, str]:
    jwt_common = {
        "BROKER_BACKEND_AUTH": "jwt",
        "BROKER_BACKEND_JWT_ISSUER": JWT_ISSUER,
        "BROKER_BACKEND_JWT_AUDIENCE": JWT_AUDIENCE,
    }
    table = {
        "jwt-hs": {**jwt_common, "BROKER_BACKEND_JWT_HS_SECRET": HS_SECRET},
        "jwt-pem": {**jwt_common, "BROKER_BACKEND_JWT_PUBLIC_KEY_FILE": str(pem_file)},
        "jwt-jwks": {
            **jwt_common,
            "BROKER_BACKEND_JWT_JWKS_URL": jwks_url,
            "BROKER_BACKEND_JWT_JWKS_MIN_REFETCH_SECONDS": "0",
        },
        "cookie": {"BROKER_BACKEND_AUTH": "cookie", "BROKER_BACKEND_COOKIE_SECRET": COOKIE_SECRET},
        "api_key": {"BROKER_BACKEND_AUTH": "api_key", "BROKER_BACKEND_API_KEYS": API_KEY},
    }
    return table[mode]


@dataclass
class Door:
    mode: str
    client: FlaskClient
    pool_id: str
    valid: Callable[[str], Request]  # user -> request kwargs carrying a valid session

    def post(self, request: Request) -> Any:
        return self.client.post("/v1/token", **request)


@pytest.fixture(params=MODES)
def door(
    request: pytest.FixtureRequest,
    make_door: MakeDoor,
    pool: dict[str, Any],
    pem_file: Path,
    jwks: JwksServer,
    backend_key: rsa.RSAPrivateKey,
) -> Door:
    mode: str = request.param
    pool_id = pool["IdentityPoolId"]
    client = make_door({**mode_env(mode, pem_file, jwks.url), "BROKER_BACKEND_POOL_ID": pool_id})
    valid: dict[str, Callable[[str], Request]] = {
        "jwt-hs": lambda user: {"headers": bearer(hs_jwt(claims_for(user)))},
        "jwt-pem": lambda user: {"headers": bearer(rs_jwt(claims_for(user), backend_key))},
        "jwt-jwks": lambda user: {"headers": bearer(rs_jwt(claims_for(user), backend_key, KID))},
        "cookie": lambda user: {
            "headers": {"Cookie": f"session={flask_cookie({'user_id': user})}"}
        },
        "api_key": lambda user: {"headers": {"X-Api-Key": API_KEY}, "json": {"user_id": user}},
    }
    return Door(mode, client, pool_id, valid[mode])


def comparable(claims: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k not in ("iat", "exp")}


def test_valid_session_gets_the_identity_the_aws_api_gives(
    door: Door, cognito: Any, broker_server: BrokerServer
) -> None:
    user = f"user-{uuid.uuid4().hex}"
    response = door.post(door.valid(user))
    assert response.status_code == 200, response.json
    data = response.json["data"]
    _, claims = oidc.verify(broker_server.url, data["token"], audience=door.pool_id)

    aws = cognito.get_open_id_token_for_developer_identity(
        IdentityPoolId=door.pool_id, Logins={DEVELOPER_PROVIDER: user}
    )
    _, aws_claims = oidc.verify(broker_server.url, aws["Token"], audience=door.pool_id)

    assert claims["sub"] == aws["IdentityId"] == data["identity_id"]
    assert comparable(claims) == comparable(aws_claims)
    assert claims["exp"] - claims["iat"] == 900
    assert data["expires_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["exp"]))
    assert data["cached"] is False
    created = time.mktime(time.strptime(data["created_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert abs(created - time.time()) < 60


def test_aws_api_first_then_the_door_finds_the_same_identity(door: Door, cognito: Any) -> None:
    user = f"user-{uuid.uuid4().hex}"
    aws = cognito.get_open_id_token_for_developer_identity(
        IdentityPoolId=door.pool_id, Logins={DEVELOPER_PROVIDER: user}
    )
    response = door.post(door.valid(user))
    assert response.status_code == 200, response.json
    assert response.json["data"]["identity_id"] == aws["IdentityId"]


# --- rejections: each one 401 UNAUTHENTICATED, and no token ------------------------------
@dataclass(frozen=True)
class Keys:
    backend: rsa.RSAPrivateKey  # the key the door trusts (PEM file, JWKS)
    stranger: rsa.RSAPrivateKey  # a key it does not


U = "mallory"
UNUSED_POOL = "us-east-1:00000000-0000-4000-8000-000000000000"
NONE_HEADER = {"alg": "none", "typ": "JWT"}
CONFUSED_HEADER = {"alg": "HS256", "typ": "JWT", "kid": KID}
OTHER_SECRET = "another-hmac-secret-that-is-long-enough-too"


def _late() -> dict[str, Any]:
    now = int(time.time())
    return claims_for(U, exp=now - 3600, iat=now - 7200)


def _cookie(value: str) -> Request:
    return {"headers": {"Cookie": f"session={value}"}}


def _tampered_signature() -> Request:
    """One character in the middle of the signature changed (the last base64 character may
    carry only padding bits, so changing it can leave the signature's bytes as they were)."""
    cookie = flask_cookie({"user_id": U})
    signed, signature = cookie.rsplit(".", 1)
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return _cookie(f"{signed}.{signature[:middle]}{flipped}{signature[middle + 1 :]}")


def _tampered_payload() -> Request:
    cookie = flask_cookie({"user_id": U})
    _, rest = cookie.split(".", 1)
    return _cookie(flask_cookie({"user_id": "admin"}).split(".", 1)[0] + "." + rest)


def _trusted(headers: dict[str, str]) -> Request:
    return {"headers": headers, "json": {"user_id": U}}


#: mode -> case -> the request (given the test keys).
REJECTIONS: dict[str, dict[str, Callable[[Keys], Request]]] = {
    "jwt-hs": {
        "no token": lambda k: {},
        "invalid signature": lambda k: {"headers": bearer(hs_jwt(claims_for(U), OTHER_SECRET))},
        "expired": lambda k: {"headers": bearer(hs_jwt(_late()))},
        "wrong issuer": lambda k: {"headers": bearer(hs_jwt(claims_for(U, iss="https://evil")))},
        "wrong audience": lambda k: {"headers": bearer(hs_jwt(claims_for(U, aud="someone")))},
        "alg none": lambda k: {"headers": bearer(handmade_jwt(NONE_HEADER, claims_for(U), None))},
        "no exp": lambda k: {
            "headers": bearer(hs_jwt({"sub": U, "iss": JWT_ISSUER, "aud": JWT_AUDIENCE}))
        },
        "not yet valid": lambda k: {
            "headers": bearer(hs_jwt(claims_for(U, nbf=int(time.time()) + 3600)))
        },
        "garbage": lambda k: {"headers": bearer("not-a.jwt.at-all")},
        "basic scheme": lambda k: {"headers": {"Authorization": "Basic dXNlcjpwYXNz"}},
        "RS256 token": lambda k: {"headers": bearer(rs_jwt(claims_for(U), k.backend))},
    },
    "jwt-pem": {
        "invalid signature": lambda k: {"headers": bearer(rs_jwt(claims_for(U), k.stranger))},
        "HS256 keyed with the public key": lambda k: {
            "headers": bearer(handmade_jwt(CONFUSED_HEADER, claims_for(U), public_pem(k.backend)))
        },
        "alg none": lambda k: {"headers": bearer(handmade_jwt(NONE_HEADER, claims_for(U), None))},
        "expired": lambda k: {"headers": bearer(rs_jwt(_late(), k.backend))},
        "wrong audience": lambda k: {"headers": bearer(rs_jwt(claims_for(U, aud="x"), k.backend))},
    },
    "jwt-jwks": {
        "unknown kid": lambda k: {"headers": bearer(rs_jwt(claims_for(U), k.stranger, "nope"))},
        "known kid, other key": lambda k: {
            "headers": bearer(rs_jwt(claims_for(U), k.stranger, KID))
        },
        "HS256 keyed with the public key": lambda k: {
            "headers": bearer(handmade_jwt(CONFUSED_HEADER, claims_for(U), public_pem(k.backend)))
        },
        "alg none": lambda k: {"headers": bearer(handmade_jwt(NONE_HEADER, claims_for(U), None))},
        "wrong issuer": lambda k: {
            "headers": bearer(rs_jwt(claims_for(U, iss="x"), k.backend, KID))
        },
    },
    "cookie": {
        "no cookie": lambda k: {},
        "tampered signature": lambda k: _tampered_signature(),
        "tampered payload": lambda k: _tampered_payload(),
        "other secret": lambda k: _cookie(flask_cookie({"user_id": U}, "not-the-backend-key!")),
        "no user in session": lambda k: _cookie(flask_cookie({"theme": "dark"})),
        "bearer instead": lambda k: {"headers": bearer(hs_jwt(claims_for(U)))},
    },
    "api_key": {
        "no key": lambda k: _trusted({}),
        "wrong key": lambda k: _trusted({"X-Api-Key": API_KEY[:-1] + "x"}),
        "wrong bearer key": lambda k: _trusted(bearer("x" * 40)),
        "prefix of the key": lambda k: _trusted({"X-Api-Key": API_KEY[:20]}),
        "two different keys": lambda k: _trusted({"X-Api-Key": API_KEY, **bearer("y" * 40)}),
    },
}


#: The rejection messages each mode may give (any other means a check ran out of order).
EXPECTED_MESSAGES = {
    "jwt-hs": {
        "Missing bearer token: send 'Authorization: Bearer <JWT>'.",
        "The bearer token's signature does not verify.",
        "The bearer token has expired.",
        "The bearer token was issued by another issuer.",
        "The bearer token is meant for another audience.",
        "The bearer token's algorithm is not allowed.",
        "The bearer token lacks a required claim (exp, iss, aud).",
        "The bearer token is not valid yet.",
        "The bearer token is not a well-formed JWS compact JWT.",
    },
    "cookie": {
        "Missing session cookie 'session': forward the user's Cookie header.",
        "The session cookie's signature does not verify.",
        "The session holds no user ('user_id' is missing).",
    },
    "api_key": {
        "Missing API key: send 'X-Api-Key: <key>' or 'Authorization: Bearer <key>'.",
        "The API key is not valid.",
        "Send the API key once: X-Api-Key and Authorization disagree.",
    },
}
EXPECTED_MESSAGES["jwt-pem"] = EXPECTED_MESSAGES["jwt-hs"]
EXPECTED_MESSAGES["jwt-jwks"] = EXPECTED_MESSAGES["jwt-hs"] | {
    "The bearer token names a key the issuer does not publish."
}


@pytest.fixture(scope="module")
def keys(backend_key: rsa.RSAPrivateKey, stranger_key: rsa.RSAPrivateKey) -> Keys:
    return Keys(backend_key, stranger_key)


@pytest.fixture(scope="module")
def doors(
    redis_server: RedisServer,
    broker_credentials: dict[str, str],
    pem_file: Path,
    jwks: JwksServer,
) -> dict[str, FlaskClient]:
    """One door per mode; a rejected session never reaches the pool, so none is made."""
    env = {"BROKER_BACKEND_POOL_ID": UNUSED_POOL}
    return {
        mode: build_door(
            redis_server.url,
            "http://localhost",
            broker_credentials,
            {**mode_env(mode, pem_file, jwks.url), **env},
        )
        for mode in MODES
    }


@pytest.mark.parametrize(
    ("mode", "case"), [(mode, case) for mode, cases in REJECTIONS.items() for case in cases]
)
def test_rejected_sessions_get_unauthenticated_and_no_token(
    doors: dict[str, FlaskClient], keys: Keys, mode: str, case: str
) -> None:
    response = doors[mode].post("/v1/token", **REJECTIONS[mode][case](keys))

    assert response.status_code == 401, response.json
    assert response.json == {
        "success": False,
        "error": {"code": "UNAUTHENTICATED", "message": response.json["error"]["message"]},
    }
    assert "eyJ" not in response.get_data(as_text=True)  # no JWS anywhere in the answer
    assert response.json["error"]["message"] in EXPECTED_MESSAGES[mode]


# --- details of each translator ------------------------------------------------------------
def test_jwt_expiry_has_leeway(make_door: MakeDoor, pool: dict[str, Any]) -> None:
    """exp 10 s ago passes with the default 30 s leeway (RFC 7519 section 4.1.4); 40 s does not."""
    env = {**mode_env("jwt-hs", Path(), ""), "BROKER_BACKEND_POOL_ID": pool["IdentityPoolId"]}
    client = make_door(env)
    now = int(time.time())
    recent = client.post("/v1/token", headers=bearer(hs_jwt(claims_for("lee", exp=now - 10))))
    older = client.post("/v1/token", headers=bearer(hs_jwt(claims_for("lee", exp=now - 40))))
    assert recent.status_code == 200
    assert older.status_code == 401
    assert older.json["error"]["message"] == "The bearer token has expired."


def test_jwt_rejections_carry_a_bearer_challenge(make_door: MakeDoor, pool: dict[str, Any]) -> None:
    env = {**mode_env("jwt-hs", Path(), ""), "BROKER_BACKEND_POOL_ID": pool["IdentityPoolId"]}
    response = make_door(env).post(
        "/v1/token", headers=bearer(hs_jwt(claims_for("x"), OTHER_SECRET))
    )
    assert (
        response.headers["WWW-Authenticate"]
        == 'Bearer realm="identity-broker", error="invalid_token"'
    )


def test_jwt_user_claim_and_tag_claims(
    make_door: MakeDoor, pool: dict[str, Any], broker_server: BrokerServer, cognito: Any
) -> None:
    pool_id = pool["IdentityPoolId"]
    env = {
        **mode_env("jwt-hs", Path(), ""),
        "BROKER_BACKEND_POOL_ID": pool_id,
        "BROKER_BACKEND_JWT_USER_CLAIM": "email",
        "BROKER_BACKEND_JWT_TAG_CLAIMS": "org:tenant, role:role",
    }
    client = make_door(env)
    session = claims_for("ignored-sub", email="ann@example.test", org="acme", role="admin")
    response = client.post(
        "/v1/token", headers=bearer(hs_jwt(session)), json={"principal_tags": {"env": "prod"}}
    )
    assert response.status_code == 200, response.json
    _, claims = oidc.verify(broker_server.url, response.json["data"]["token"], audience=pool_id)
    assert claims["https://aws.amazon.com/tags"] == {
        "principal_tags": {"tenant": ["acme"], "role": ["admin"], "env": ["prod"]}
    }
    aws = cognito.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: "ann@example.test"}
    )
    assert claims["sub"] == aws["IdentityId"]

    overriding = client.post(
        "/v1/token", headers=bearer(hs_jwt(session)), json={"principal_tags": {"tenant": "evil"}}
    )
    assert overriding.status_code == 403
    assert overriding.json["error"]["code"] == "FORBIDDEN"
    assert "tenant" in overriding.json["error"]["message"]


#: What a session may hold under a tag-sourcing key without carrying a usable tag value.
UNUSABLE_SESSION_VALUES = {
    "absent": ...,
    "empty": "",
    "null": None,
    "list": ["admin"],
    "boolean": True,
    "object": {"r": "admin"},
}


@pytest.mark.parametrize("mode", ["jwt-hs", "cookie"])
@pytest.mark.parametrize("held", list(UNUSABLE_SESSION_VALUES))
def test_a_session_sourced_tag_is_never_taken_from_the_body(
    make_door: MakeDoor, pool: dict[str, Any], mode: str, held: str
) -> None:
    """A tag configured as coming from the session is refused in the body whatever the
    session holds for it: absent, empty, null, a list, a boolean (security review, high)."""
    tag_env = (
        {"BROKER_BACKEND_JWT_TAG_CLAIMS": "role:role"}
        if mode == "jwt-hs"
        else {"BROKER_BACKEND_COOKIE_TAG_KEYS": "role:role"}
    )
    client = make_door(
        {**mode_env(mode, Path(), ""), "BROKER_BACKEND_POOL_ID": pool["IdentityPoolId"], **tag_env}
    )
    value = UNUSABLE_SESSION_VALUES[held]
    extra = {} if value is ... else {"role": value}
    user = f"user-{uuid.uuid4().hex}"
    if mode == "jwt-hs":
        headers = bearer(hs_jwt(claims_for(user, **extra)))
    else:
        headers = {"Cookie": f"session={flask_cookie({'user_id': user, **extra})}"}

    response = client.post("/v1/token", headers=headers, json={"principal_tags": {"role": "admin"}})
    assert response.status_code == 403, response.json
    assert response.json["error"]["code"] == "FORBIDDEN"
    assert "role" in response.json["error"]["message"]
    assert "token" not in response.json.get("data", {})

    other = client.post("/v1/token", headers=headers, json={"principal_tags": {"env": "dev"}})
    assert other.status_code == 200, other.json  # tags not sourced from the session still are


def test_cookie_expires_after_the_backends_session_lifetime(
    make_door: MakeDoor, pool: dict[str, Any]
) -> None:
    clock = Clock()
    env = {
        **mode_env("cookie", Path(), ""),
        "BROKER_BACKEND_POOL_ID": pool["IdentityPoolId"],
        "BROKER_BACKEND_COOKIE_MAX_AGE": "3600",
    }
    client = make_door(env, clock)
    cookie = {"Cookie": f"session={flask_cookie({'user_id': 'carol'}, clock=clock)}"}
    assert client.post("/v1/token", headers=cookie).status_code == 200
    clock.advance(3601 + 1)
    expired = client.post("/v1/token", headers=cookie)
    assert expired.status_code == 401
    assert expired.json["error"]["message"] == "The session cookie has expired."


def test_cookie_name_salt_user_key_and_tags_are_configurable(
    make_door: MakeDoor, pool: dict[str, Any], cognito: Any
) -> None:
    pool_id = pool["IdentityPoolId"]
    env = {
        **mode_env("cookie", Path(), ""),
        "BROKER_BACKEND_POOL_ID": pool_id,
        "BROKER_BACKEND_COOKIE_NAME": "sid",
        "BROKER_BACKEND_COOKIE_SALT": "my-salt",
        "BROKER_BACKEND_COOKIE_USER_KEY": "uid",
        "BROKER_BACKEND_COOKIE_TAG_KEYS": "plan:plan",
    }
    client = make_door(env)
    value = flask_cookie({"uid": 4242, "plan": "gold"}, salt="my-salt")
    response = client.post("/v1/token", headers={"Cookie": f"sid={value}"})
    assert response.status_code == 200, response.json
    aws = cognito.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: "4242"}
    )
    assert response.json["data"]["identity_id"] == aws["IdentityId"]

    default_salt = flask_cookie({"uid": 4242})
    assert client.post("/v1/token", headers={"Cookie": f"sid={default_salt}"}).status_code == 401


def test_jwks_refetched_on_an_unknown_kid(
    make_door: MakeDoor, pool: dict[str, Any], stranger_key: rsa.RSAPrivateKey
) -> None:
    """The issuer rotates: a token with a new kid makes the door fetch the JWKS again."""
    backend = rsa_key()
    with JwksServer({"keys": [public_jwk(backend, "old")]}).running() as server:
        env = {
            **mode_env("jwt-jwks", Path(), server.url),
            "BROKER_BACKEND_POOL_ID": pool["IdentityPoolId"],
        }
        client = make_door(env)
        old = client.post("/v1/token", headers=bearer(rs_jwt(claims_for("dan"), backend, "old")))
        assert old.status_code == 200
        assert server.hits == 1

        server.document = {"keys": [public_jwk(backend, "old"), public_jwk(stranger_key, "new")]}
        new = client.post(
            "/v1/token", headers=bearer(rs_jwt(claims_for("dan"), stranger_key, "new"))
        )
        assert new.status_code == 200, new.json
        assert server.hits == 2
        again = client.post("/v1/token", headers=bearer(rs_jwt(claims_for("dan"), backend, "old")))
        assert again.status_code == 200
        assert server.hits == 2  # cached: no fetch per request


def test_jwks_refetch_is_rate_limited(make_door: MakeDoor, pool: dict[str, Any]) -> None:
    backend = rsa_key()
    with JwksServer({"keys": [public_jwk(backend, "k")]}).running() as server:
        env = {
            **mode_env("jwt-jwks", Path(), server.url),
            "BROKER_BACKEND_POOL_ID": pool["IdentityPoolId"],
            "BROKER_BACKEND_JWT_JWKS_MIN_REFETCH_SECONDS": "60",
        }
        client = make_door(env)
        assert (
            client.post(
                "/v1/token", headers=bearer(rs_jwt(claims_for("e"), backend, "k"))
            ).status_code
            == 200
        )
        for n in range(5):
            forged = bearer(rs_jwt(claims_for("e"), backend, f"forged-{n}"))
            assert client.post("/v1/token", headers=forged).status_code == 401
        assert server.hits == 1


def test_unreachable_jwks_answers_unavailable(make_door: MakeDoor, pool: dict[str, Any]) -> None:
    from support.processes import free_port

    env = {
        **mode_env("jwt-jwks", Path(), f"http://127.0.0.1:{free_port()}/jwks.json"),
        "BROKER_BACKEND_POOL_ID": pool["IdentityPoolId"],
        "BROKER_BACKEND_JWT_JWKS_TIMEOUT": "1",
    }
    response = make_door(env).post(
        "/v1/token", headers=bearer(rs_jwt(claims_for("f"), rsa_key(), "k"))
    )
    assert response.status_code == 503
    assert response.json["error"]["code"] == "UNAVAILABLE"


def test_a_redirecting_jwks_url_is_not_followed(make_door: MakeDoor, pool: dict[str, Any]) -> None:
    """The JWKS comes from the configured URL only: a 302 (to plain http, to another host)
    fails the fetch, and with no keys held the door answers UNAVAILABLE."""
    from broker.outbound import BadStatus
    from broker.providers.jwks import fetch_jwks

    backend = rsa_key()
    with (
        JwksServer({"keys": [public_jwk(backend, "k")]}).running() as target,
        JwksServer({"keys": []}).running() as redirector,
    ):
        redirector.redirect = target.url
        assert fetch_jwks(target.url, 2)[0]["kid"] == "k"
        assert target.hits == 1
        with pytest.raises(BadStatus) as refused:
            fetch_jwks(redirector.url, 2)
        assert refused.value.status == 302

        env = {
            **mode_env("jwt-jwks", Path(), redirector.url),
            "BROKER_BACKEND_POOL_ID": pool["IdentityPoolId"],
        }
        response = make_door(env).post(
            "/v1/token", headers=bearer(rs_jwt(claims_for("r"), backend, "k"))
        )
        assert response.status_code == 503
        assert response.json["error"]["code"] == "UNAVAILABLE"
        assert redirector.hits == 2
        assert target.hits == 1  # never reached through the redirect


def test_jwks_cache_expires_and_keeps_serving_when_a_refetch_fails() -> None:
    """TTL refresh, stale-if-error, and a fetch failure with no keys held: UNAVAILABLE."""
    from broker.backend.errors import SessionSourceUnavailable
    from broker.backend.translators.keys import JwksKeys
    from broker.outbound import Unreachable

    key = rsa_key()
    now = [0.0]
    calls: list[str] = []
    answers: list[Any] = [[public_jwk(key, "a")], Unreachable("down"), [public_jwk(key, "b")]]

    def fetch(url: str, timeout: float) -> list[dict[str, Any]]:
        calls.append(url)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return list(answer)

    keys = JwksKeys(
        "https://idp/jwks",
        timeout=1,
        ttl=300,
        min_refetch=10,
        fetch=fetch,
        monotonic=lambda: now[0],
    )
    assert keys.key_for("a", "RS256") is not None
    now[0] = 301  # expired: refetch fails, the old keys keep serving
    assert keys.key_for("a", "RS256") is not None
    assert len(calls) == 2
    now[0] = 305  # within min_refetch of the failed attempt: no new fetch
    assert keys.key_for("a", "RS256") is not None
    assert len(calls) == 2
    now[0] = 312
    assert keys.key_for("b", "RS256") is not None  # refreshed: "a" rotated out, "b" in
    assert len(calls) == 3

    def failing(url: str, timeout: float) -> list[dict[str, Any]]:
        raise Unreachable("down")

    empty = JwksKeys("https://idp/jwks", timeout=1, ttl=300, min_refetch=10, fetch=failing)
    with pytest.raises(SessionSourceUnavailable):
        empty.key_for("a", "RS256")


def test_jwks_ignores_keys_that_cannot_sign() -> None:
    """An ``oct`` key or a ``use: enc`` key in a JWKS never verifies a token (RFC 8725 3.1)."""
    from broker.backend.errors import SessionRejected
    from broker.backend.translators.keys import JwksKeys

    key = rsa_key()
    documents = [
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"},
        {**public_jwk(key, "enc"), "use": "enc"},
        {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
        public_jwk(key, "sig"),
    ]
    keys = JwksKeys("u", timeout=1, ttl=300, min_refetch=0, fetch=lambda url, timeout: documents)
    assert keys.key_for("sig", "RS256") is not None
    assert keys.key_for(None, "RS256") is not None  # no kid: the one key that fits
    for kid, alg in (("hmac", "HS256"), ("enc", "RS256"), ("broken", "RS256"), ("sig", "ES256")):
        with pytest.raises(SessionRejected):
            keys.key_for(kid, alg)


#: JWKS bodies that are not a usable JWK Set (RFC 7517 section 5), each its own way.
MALFORMED_JWKS: dict[str, bytes] = {
    "nested 100,000 deep": b'{"keys": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
    "opened 100,000 deep": b"[" * 100_000,
    "nested inside a key": b'{"keys": [{"kty": "RSA", "n": ' + b"[" * 5_000 + b"]" * 5_000 + b"}]}",
    "not JSON": b"<html>maintenance</html>",
    "an array": b"[]",
    "keys not an array": b'{"keys": {"kty": "RSA"}}',
    "keys of strings": b'{"keys": ["a", "b"]}',
    "no usable key": b'{"keys": [{"kty": "RSA", "kid": "k", "n": {"x": 1}, "e": []}]}',
    "no key at all": b'{"keys": []}',
    "NaN": b'{"keys": [NaN]}',
    "invalid UTF-8": b'{"keys": ["\xff"]}',
}


@pytest.mark.parametrize("body", MALFORMED_JWKS.values(), ids=MALFORMED_JWKS.keys())
def test_a_malformed_jwks_answers_unavailable_without_a_traceback(
    make_door: MakeDoor, pool: dict[str, Any], body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14 item 3: 100,000 nested brackets made Python's parser raise RecursionError,
    which escaped the fetch: 500 and a traceback in the log. Any document that is not a
    usable JWK Set is a failed fetch: UNAVAILABLE (503), and a one-line warning."""
    from support.slow_http import ScriptedServer, json_answer

    with ScriptedServer(*json_answer(body)).running() as server:
        env = {
            **mode_env("jwt-jwks", Path(), server.url),
            "BROKER_BACKEND_POOL_ID": pool["IdentityPoolId"],
        }
        client = make_door(env)
        for _ in range(2):  # the first fetch, and a token naming another kid
            response = client.post(
                "/v1/token", headers=bearer(rs_jwt(claims_for("m"), rsa_key(), "k"))
            )
            assert response.status_code == 503, response.json
            assert response.json["error"]["code"] == "UNAVAILABLE"
        assert server.hits == 2
    assert not [r for r in caplog.records if r.exc_info or r.levelname in ("ERROR", "CRITICAL")]
    assert any("JWKS fetch failed" in r.getMessage() for r in caplog.records)


def test_keys_held_keep_serving_when_the_jwks_turns_malformed(
    make_door: MakeDoor, pool: dict[str, Any]
) -> None:
    from support.slow_http import ScriptedServer, json_answer

    backend = rsa_key()
    good = json.dumps({"keys": [public_jwk(backend, "k")]}).encode()
    with ScriptedServer(*json_answer(good)).running() as server:
        env = {
            **mode_env("jwt-jwks", Path(), server.url),
            "BROKER_BACKEND_POOL_ID": pool["IdentityPoolId"],
        }
        client = make_door(env)
        valid = bearer(rs_jwt(claims_for("h"), backend, "k"))
        assert client.post("/v1/token", headers=valid).status_code == 200
        server.head, server.body = json_answer(MALFORMED_JWKS["nested 100,000 deep"])
        forged = client.post("/v1/token", headers=bearer(rs_jwt(claims_for("h"), backend, "x")))
        assert forged.status_code == 401  # the refetch failed; kid "x" is not among the held
        assert client.post("/v1/token", headers=valid).status_code == 200
        assert server.hits == 2


def test_a_trickling_jwks_is_cut_at_its_total_timeout(
    make_door: MakeDoor, pool: dict[str, Any]
) -> None:
    """Issue 14 item 2: BROKER_BACKEND_JWT_JWKS_TIMEOUT bounded each read only, so a server
    declaring a large body and sending a byte at a time held the request for as long as it
    liked. It now bounds the whole fetch. (The server stops trickling after 4 s, so that
    the code before the fix ends too.)"""
    import threading

    from support.slow_http import ScriptedServer, json_head

    with ScriptedServer(json_head(100_000), b" " * 100_000, every=0.05).running() as server:
        threading.Timer(4.0, server.stop).start()
        env = {
            **mode_env("jwt-jwks", Path(), server.url),
            "BROKER_BACKEND_POOL_ID": pool["IdentityPoolId"],
            "BROKER_BACKEND_JWT_JWKS_TIMEOUT": "1",
        }
        client = make_door(env)
        started = time.monotonic()
        response = client.post("/v1/token", headers=bearer(rs_jwt(claims_for("t"), rsa_key(), "k")))
        took = time.monotonic() - started
    assert response.status_code == 503 and response.json["error"]["code"] == "UNAVAILABLE"
    assert 0.9 <= took < 1.5
