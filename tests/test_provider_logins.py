"""Public-provider logins end to end (contract section 9), with real providers on loopback.

- moto's server (``moto_server``) as a Cognito user pool: it signs RS256 ID tokens and serves
  their JWKS at ``/<userPoolId>/.well-known/jwks.json``; the broker reaches it through
  ``BROKER_COGNITO_IDP_ENDPOINT`` while checking the AWS issuer its tokens name.
- A second broker as an OpenID Connect provider of the first: its tokens are ID tokens of its
  issuer (discovery, JWKS), with its pool id as the audience.
- A test-only issuer (``support.issuer``) standing in for ``accounts.google.com`` through the
  ``BROKER_OIDC_PROVIDERS`` override, signing what no real provider would.

Every call goes through boto3 to a live gunicorn; the broker's tokens are verified by PyJWT
from discovery alone (``support.oidc``); the checker finds nothing at the end.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from joserfc.jwk import RSAKey
from support import oidc
from support.clients import cognito_client
from support.identities import assert_consistent, error_of, unsigned_client
from support.issuer import TestIssuer
from support.processes import OwnBroker, broker_on_own_redis, free_port
from support.slow_http import ScriptedServer, json_answer, json_head
from support.trickle import healthz
from support.upstream import MotoServer

pytestmark = pytest.mark.slow  # servers of its own: not the fast lane

REGION = "us-east-1"
ACCOUNT = "000000000000"
DEV = "login.providers.test"
GOOGLE = "accounts.google.com"
GOOGLE_APP = "google-app-id.apps.googleusercontent.com"
INVALID = "Invalid login token."
NOT_A_PROVIDER = "Token is not from a supported provider of this identity pool."


def oidc_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:oidc-provider/{name}"


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


# --- the providers ---------------------------------------------------------------------------
class UserPool:
    """A moto user pool with two app clients and a way to sign a user in."""

    def __init__(self, moto: MotoServer) -> None:
        self.idp = boto3.client(
            "cognito-idp",
            endpoint_url=moto.url,
            region_name=REGION,
            aws_access_key_id="AKIDMOTOTESTING",
            aws_secret_access_key="moto-accepts-any-secret",  # noqa: S106 - moto's
        )
        self.id = self.idp.create_user_pool(PoolName=f"up_{uuid.uuid4().hex[:8]}")["UserPool"]["Id"]
        self.client_id = self._client("app")
        self.other_client_id = self._client("other-app")
        self.name = f"cognito-idp.{REGION}.amazonaws.com/{self.id}"

    def _client(self, name: str) -> str:
        made = self.idp.create_user_pool_client(
            UserPoolId=self.id,
            ClientName=name,
            ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )
        return str(made["UserPoolClient"]["ClientId"])

    def sign_in(self, user: str, client_id: str | None = None) -> str:
        password = "Passw0rd!-" + uuid.uuid4().hex[:8]
        with contextlib.suppress(self.idp.exceptions.UsernameExistsException):
            self.idp.admin_create_user(UserPoolId=self.id, Username=user)
        self.idp.admin_set_user_password(
            UserPoolId=self.id, Username=user, Password=password, Permanent=True
        )
        answer = self.idp.admin_initiate_auth(
            UserPoolId=self.id,
            ClientId=client_id or self.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": user, "PASSWORD": password},
        )
        return str(answer["AuthenticationResult"]["IdToken"])


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="module")
def user_pool(moto: MotoServer) -> UserPool:
    return UserPool(moto)


@pytest.fixture(scope="module")
def google() -> Iterator[TestIssuer]:
    with TestIssuer().running() as issuer:
        yield issuer


@pytest.fixture(scope="module")
def provider(broker_credentials: dict[str, str]) -> Iterator[tuple[OwnBroker, str, str]]:
    """The second broker (an OpenID Connect provider of the first), one of its pools that
    the first accepts tokens for, and another it does not."""
    with broker_on_own_redis(credentials=broker_credentials, workers=1) as own:
        admin = cognito_client(own.broker)
        accepted, other = (
            admin.create_identity_pool(
                IdentityPoolName=name,
                AllowUnauthenticatedIdentities=False,
                DeveloperProviderName=DEV,
            )["IdentityPoolId"]
            for name in ("accepted", "other")
        )
        admin.close()
        yield own, accepted, other


def provider_token(provider: tuple[OwnBroker, str, str], user: str, pool: str = "") -> str:
    own, accepted, _ = provider
    admin = cognito_client(own.broker)
    token = admin.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool or accepted, Logins={DEV: user}
    )["Token"]
    admin.close()
    return str(token)


def provider_name(own: OwnBroker) -> str:
    return own.broker.url.removeprefix("http://")


@pytest.fixture(scope="module")
def broker(
    broker_credentials: dict[str, str],
    moto: MotoServer,
    google: TestIssuer,
    provider: tuple[OwnBroker, str, str],
) -> Iterator[OwnBroker]:
    own, accepted, _ = provider
    providers = {
        GOOGLE: {"issuer": google.url, "jwks_uri": google.jwks_uri, "client_ids": [GOOGLE_APP]},
        provider_name(own): {"issuer": own.broker.url, "client_ids": [accepted]},
    }
    env = {
        "BROKER_OIDC_PROVIDERS": json.dumps(providers),
        "BROKER_COGNITO_IDP_ENDPOINT": moto.url,
    }
    with broker_on_own_redis(credentials=broker_credentials, env=env, workers=2) as main:
        yield main


@pytest.fixture(scope="module")
def cognito(broker: OwnBroker) -> Iterator[Any]:
    client = cognito_client(broker.broker)
    yield client
    client.close()


@pytest.fixture(scope="module")
def public(broker: OwnBroker) -> Iterator[Any]:
    client = unsigned_client(broker.broker.url)
    yield client
    client.close()


@pytest.fixture
def pool(
    cognito: Any, broker: OwnBroker, user_pool: UserPool, provider: tuple[OwnBroker, str, str]
) -> Iterator[str]:
    pool_id = cognito.create_identity_pool(
        IdentityPoolName=f"providers_{uuid.uuid4().hex[:8]}",
        AllowUnauthenticatedIdentities=False,
        DeveloperProviderName=DEV,
        SupportedLoginProviders={GOOGLE: GOOGLE_APP, "graph.facebook.com": "fb-app"},
        CognitoIdentityProviders=[
            {"ProviderName": user_pool.name, "ClientId": user_pool.client_id}
        ],
        OpenIdConnectProviderARNs=[oidc_arn(provider_name(provider[0]))],
    )["IdentityPoolId"]
    yield pool_id
    with broker.redis.client() as client:
        assert_consistent(client, pool_id)
    cognito.delete_identity_pool(IdentityPoolId=pool_id)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(header: dict[str, Any], payload: bytes, secret: bytes) -> str:
    """An HS256 JWS made by hand (joserfc rightly refuses a public key as an HMAC secret):
    the classic key-confusion forgery."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(payload)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def refused(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    code, status, message = error_of(exc)
    assert status == 400
    return code, message


# --- a Cognito user pool (moto) ----------------------------------------------------------------
def test_a_user_pool_login_gets_one_identity_and_a_verifiable_token(
    public: Any, cognito: Any, pool: str, broker: OwnBroker, user_pool: UserPool
) -> None:
    id_token = user_pool.sign_in("alice")
    sub = claims_of(id_token)["sub"]
    identity = public.get_id(IdentityPoolId=pool, Logins={user_pool.name: id_token})["IdentityId"]
    again = user_pool.sign_in("alice")  # a new sign-in, the same user
    assert (
        public.get_id(IdentityPoolId=pool, Logins={user_pool.name: again})["IdentityId"] == identity
    )
    answer = public.get_open_id_token(IdentityId=identity, Logins={user_pool.name: again})
    _, claims = oidc.verify(broker.broker.url, answer["Token"], audience=pool)
    assert claims["sub"] == identity
    assert claims["amr"] == [
        "authenticated",
        user_pool.name,
        f"{user_pool.name}:CognitoSignIn:{sub}",
    ]
    assert cognito.describe_identity(IdentityId=identity)["Logins"] == [user_pool.name]
    # the broker's own token then proves the identity, as for developer identities
    renewed = public.get_open_id_token(
        IdentityId=identity, Logins={"cognito-identity.amazonaws.com": answer["Token"]}
    )
    assert (
        oidc.verify(broker.broker.url, renewed["Token"], audience=pool)[1]["amr"] == claims["amr"]
    )


def test_user_pool_tokens_that_do_not_fit_are_refused(
    public: Any, cognito: Any, pool: str, moto: MotoServer, user_pool: UserPool
) -> None:
    other_client = user_pool.sign_in("bob", client_id=user_pool.other_client_id)
    code, message = refused(
        public.get_id, IdentityPoolId=pool, Logins={user_pool.name: other_client}
    )
    assert code == "NotAuthorizedException" and message.startswith(INVALID), message
    good = user_pool.sign_in("bob")
    head, payload, signature = good.split(".")
    flipped = ("A" if signature[10] != "A" else "B").join([signature[:10], signature[11:]])
    code, message = refused(
        public.get_id, IdentityPoolId=pool, Logins={user_pool.name: f"{head}.{payload}.{flipped}"}
    )
    assert code == "NotAuthorizedException" and message.startswith(INVALID), message
    unknown = UserPool(moto)  # a user pool the identity pool does not list
    code, message = refused(
        public.get_id, IdentityPoolId=pool, Logins={unknown.name: unknown.sign_in("bob")}
    )
    assert (code, message) == ("NotAuthorizedException", NOT_A_PROVIDER)
    code, message = refused(
        public.get_id, IdentityPoolId=pool, Logins={"graph.facebook.com": "opaque"}
    )
    assert (code, message) == (
        "NotAuthorizedException",
        "Logins for graph.facebook.com cannot be verified by this broker.",
    )
    assert cognito.list_identities(IdentityPoolId=pool, MaxResults=10)["Identities"] == []


# --- another broker as an OpenID Connect provider ----------------------------------------------
def test_a_second_broker_is_an_openid_connect_provider_of_the_first(
    public: Any, cognito: Any, pool: str, provider: tuple[OwnBroker, str, str]
) -> None:
    own, _, other = provider
    name = provider_name(own)
    token = provider_token(provider, "carol")
    identity = public.get_id(IdentityPoolId=pool, Logins={name: token})["IdentityId"]
    assert public.get_id(IdentityPoolId=pool, Logins={name: token})["IdentityId"] == identity
    assert cognito.describe_identity(IdentityId=identity)["Logins"] == [name]
    elsewhere = provider_token(provider, "carol", pool=other)  # another audience
    code, message = refused(public.get_id, IdentityPoolId=pool, Logins={name: elsewhere})
    assert code == "NotAuthorizedException" and message.startswith(INVALID), message


# --- a stand-in for accounts.google.com ---------------------------------------------------------
def test_the_google_stand_in_accepts_a_good_token_and_refuses_forgeries(
    public: Any, pool: str, google: TestIssuer
) -> None:
    good = google.mint("g-dave", GOOGLE_APP)
    identity = public.get_id(IdentityPoolId=pool, Logins={GOOGLE: good})["IdentityId"]
    assert public.get_id(IdentityPoolId=pool, Logins={GOOGLE: good})["IdentityId"] == identity
    attacker_key = RSAKey.generate_key(2048, parameters={"kid": "attacker"})
    with TestIssuer(kid="attacker").running() as attacker:
        now = int(time.time())
        payload = json.dumps(
            {"iss": google.url, "sub": "g-dave", "aud": GOOGLE_APP, "iat": now, "exp": now + 600}
        ).encode()
        public_pem = google.key.as_pem(private=False)
        forgeries = {
            "alg none": ".".join(
                base64.urlsafe_b64encode(part).rstrip(b"=").decode()
                for part in (b'{"alg":"none","typ":"JWT"}', payload)
            )
            + ".",
            "HS256 with the public key": hs256(
                {"alg": "HS256", "kid": google.key.kid}, payload, public_pem
            ),
            "jku elsewhere": attacker.mint(
                "g-dave",
                GOOGLE_APP,
                issuer=google.url,
                key=attacker.key,
                header={"jku": attacker.jwks_uri},
            ),
            "other key, our kid": google.mint(
                "g-dave", GOOGLE_APP, key=attacker_key, header={"kid": google.key.kid}
            ),
            "wrong iss": google.mint("g-dave", GOOGLE_APP, issuer="https://accounts.example.com"),
            "wrong aud": google.mint("g-dave", "another-app"),
            "no exp": google.mint("g-dave", GOOGLE_APP, drop=("exp",)),
            "expired": google.mint("g-dave", GOOGLE_APP, issued_at=time.time() - 7200),
            "future nbf": google.mint("g-dave", GOOGLE_APP, nbf=now + 3600),
        }
        for label, forged in forgeries.items():
            code, message = refused(public.get_id, IdentityPoolId=pool, Logins={GOOGLE: forged})
            assert code == "NotAuthorizedException" and message.startswith(INVALID), (
                label,
                message,
            )
            assert "g-dave" not in message and forged not in message
        assert sum(attacker.requests.values()) == 0  # the jku was never followed


# --- implicit linking and merging ---------------------------------------------------------------
def test_a_developer_login_and_a_user_pool_login_make_one_identity(
    public: Any, cognito: Any, pool: str, broker: OwnBroker, user_pool: UserPool
) -> None:
    id_token = user_pool.sign_in("erin")
    sub = claims_of(id_token)["sub"]
    made = cognito.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool, Logins={DEV: "dev-erin", user_pool.name: id_token}
    )
    identity = made["IdentityId"]
    _, claims = oidc.verify(broker.broker.url, made["Token"], audience=pool)
    assert claims["amr"] == [
        "authenticated",
        DEV,
        f"{DEV}:{pool}:dev-erin",
        user_pool.name,
        f"{user_pool.name}:CognitoSignIn:{sub}",
    ]
    assert (
        public.get_id(IdentityPoolId=pool, Logins={user_pool.name: id_token})["IdentityId"]
        == identity
    )
    looked_up = cognito.lookup_developer_identity(
        IdentityPoolId=pool, DeveloperUserIdentifier="dev-erin"
    )
    assert looked_up["IdentityId"] == identity
    assert cognito.describe_identity(IdentityId=identity)["Logins"] == sorted([DEV, user_pool.name])


def test_one_call_with_logins_of_two_identities_merges_them(
    public: Any, cognito: Any, pool: str, google: TestIssuer
) -> None:
    developer_side = cognito.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool, Logins={DEV: "dev-fay"}
    )["IdentityId"]
    token = google.mint("g-fay", GOOGLE_APP)
    google_side = public.get_id(IdentityPoolId=pool, Logins={GOOGLE: token})["IdentityId"]
    assert google_side != developer_side
    merged = cognito.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool, Logins={DEV: "dev-fay", GOOGLE: token}
    )
    assert merged["IdentityId"] == developer_side  # the one holding the developer login
    assert cognito.describe_identity(IdentityId=developer_side)["Logins"] == sorted([DEV, GOOGLE])
    assert "Logins" not in cognito.describe_identity(IdentityId=google_side)
    enabled = cognito.list_identities(IdentityPoolId=pool, MaxResults=10, HideDisabled=True)
    assert [i["IdentityId"] for i in enabled["Identities"]] == [developer_side]
    assert (
        public.get_id(IdentityPoolId=pool, Logins={GOOGLE: token})["IdentityId"] == developer_side
    )
    code, message = refused(public.get_open_id_token, IdentityId=google_side)
    assert (code, message) == (
        "NotAuthorizedException",
        f"Access to Identity '{google_side}' is forbidden.",
    )


def test_unlink_identity_removes_a_public_login(
    public: Any, cognito: Any, pool: str, google: TestIssuer, user_pool: UserPool
) -> None:
    token = google.mint("g-gus", GOOGLE_APP)
    id_token = user_pool.sign_in("gus")
    identity = public.get_id(IdentityPoolId=pool, Logins={GOOGLE: token, user_pool.name: id_token})[
        "IdentityId"
    ]
    public.unlink_identity(
        IdentityId=identity, Logins={GOOGLE: token}, LoginsToRemove=[user_pool.name]
    )
    assert cognito.describe_identity(IdentityId=identity)["Logins"] == [GOOGLE]
    assert (
        public.get_id(IdentityPoolId=pool, Logins={user_pool.name: id_token})["IdentityId"]
        != identity
    )


# --- hostile JWKS -------------------------------------------------------------------------------
HOSTILE_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def hostile(broker_credentials: dict[str, str]) -> Iterator[tuple[OwnBroker, dict[str, Any]]]:
    """One broker, one worker, whose OpenID Connect providers each serve a hostile JWKS."""
    nested = b"[" * 100_000 + b"]" * 100_000
    servers = {
        "slow": ScriptedServer(json_head(100_000), b" " * 100_000, every=0.5, chunk=1000),
        "trickling": ScriptedServer(json_head(100_000), b" " * 100_000, every=0.05),
        "huge": ScriptedServer(
            *json_answer(b'{"keys": [' + b'{"kty": "RSA"},' * 200_000 + b"{}]}")
        ),
        "nested": ScriptedServer(*json_answer(nested)),
        "not json": ScriptedServer(*json_answer(b"<html>hello</html>")),
    }
    with contextlib.ExitStack() as stack:
        for server in servers.values():
            stack.enter_context(server.running())
        down = f"127.0.0.1:{free_port()}"  # nothing listens there: connections are refused
        providers = {
            f"127.0.0.1:{server.port}/{label.replace(' ', '-')}": {
                "issuer": f"http://127.0.0.1:{server.port}/{label.replace(' ', '-')}",
                "jwks_uri": server.url,
                "client_ids": ["hostile-app"],
            }
            for label, server in servers.items()
        }
        providers[f"{down}/down"] = {
            "issuer": f"http://{down}/down",
            "jwks_uri": f"http://{down}/jwks.json",
            "client_ids": ["hostile-app"],
        }
        env = {
            "BROKER_OIDC_PROVIDERS": json.dumps(providers),
            "BROKER_PROVIDER_JWKS_TIMEOUT": str(HOSTILE_TIMEOUT),
        }
        with broker_on_own_redis(credentials=broker_credentials, env=env, workers=1) as own:
            yield own, providers


def test_the_logs_hold_no_provider_token(
    broker: OwnBroker, user_pool: UserPool, google: TestIssuer, public: Any, pool: str
) -> None:
    """After the calls above (this test runs after them, in file order) and a few here,
    neither a token nor its signature is anywhere in the broker's log."""
    tokens = [user_pool.sign_in("log-user"), google.mint("log-sub", GOOGLE_APP)]
    for name, token in zip((user_pool.name, GOOGLE), tokens, strict=True):
        public.get_id(IdentityPoolId=pool, Logins={name: token})
        refused(public.get_id, IdentityPoolId=pool, Logins={name: token[:-6] + "AAAAAA"})
    log = broker.broker.log_path.read_text()
    assert log.strip()  # the broker did log (its start and access lines)
    for token in tokens:
        assert token.split(".")[2][:20] not in log and token.split(".")[1][:40] not in log


def test_a_hostile_jwks_is_an_external_service_error_and_the_worker_keeps_serving(
    hostile: tuple[OwnBroker, dict[str, Any]], google: TestIssuer
) -> None:
    own, providers = hostile
    admin = cognito_client(own.broker)
    pool_id = admin.create_identity_pool(
        IdentityPoolName="hostile",
        AllowUnauthenticatedIdentities=False,
        OpenIdConnectProviderARNs=[oidc_arn(name) for name in providers],
    )["IdentityPoolId"]
    admin.close()
    signer = RSAKey.generate_key(2048, parameters={"kid": "hostile-1"})
    client = unsigned_client(own.broker.url, read_timeout=30)
    for name, entry in providers.items():
        token = google.mint("h-user", "hostile-app", issuer=entry["issuer"], key=signer)
        answers: dict[str, Any] = {}

        def call(token: str = token, name: str = name, answers: dict[str, Any] = answers) -> None:
            started = time.monotonic()
            try:
                client.get_id(IdentityPoolId=pool_id, Logins={name: token})
                answers["code"] = "ok"
            except ClientError as exc:
                answers["code"] = exc.response["Error"]["Code"]
                answers["message"] = exc.response["Error"]["Message"]
            answers["took"] = time.monotonic() - started

        caller = threading.Thread(target=call)
        caller.start()
        time.sleep(0.2)  # the call is fetching now
        health = [healthz(own.broker.port) for _ in range(3)]
        caller.join(timeout=30)
        assert answers["code"] == "ExternalServiceException", (name, answers)
        assert name in answers["message"] and token not in answers["message"]
        assert answers["took"] < HOSTILE_TIMEOUT + 1.5, (name, answers)
        assert max(health) < 0.5, (name, health)  # the same (only) worker answered meanwhile
    client.close()
    log = own.broker.log_path.read_text()
    assert "Traceback" not in log
