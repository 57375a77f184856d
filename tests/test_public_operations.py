"""The unsigned operations (contract sections 2 and 7): GetId, GetOpenIdToken,
UnlinkIdentity and GetCredentialsForIdentity, called by boto3 without any credentials
against the live broker; tokens checked by PyJWT from discovery."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa
from support import oidc
from support.identities import (
    DEVELOPER_PROVIDER,
    REGION,
    assert_consistent,
    developer_token,
    error_of,
    identity_of,
    merge,
    unsigned_client,
)
from support.processes import BrokerServer, RedisServer
from support.topologies import Topology

pytestmark = pytest.mark.every_topology

COGNITO = "cognito-identity.amazonaws.com"
TAGS_CLAIM = "https://aws.amazon.com/tags"


@pytest.fixture
def public(broker_server: BrokerServer) -> Iterator[Any]:
    client = unsigned_client(broker_server.url)
    yield client
    client.close()


@pytest.fixture
def open_pool(cognito: Any, store: Topology) -> Iterator[str]:
    """A pool that allows unauthenticated identities and has the developer provider."""
    pool_id = cognito.create_identity_pool(
        IdentityPoolName=f"open_{uuid.uuid4().hex[:8]}",
        AllowUnauthenticatedIdentities=True,
        DeveloperProviderName=DEVELOPER_PROVIDER,
        SupportedLoginProviders={"graph.facebook.com": "1234"},
    )["IdentityPoolId"]
    yield pool_id
    with store.client() as client:
        assert_consistent(client, pool_id)
    cognito.delete_identity_pool(IdentityPoolId=pool_id)


# --- GetId -------------------------------------------------------------------------------
def test_get_id_without_logins_makes_a_new_unauthenticated_identity(
    public: Any, cognito: Any, open_pool: str
) -> None:
    first = public.get_id(IdentityPoolId=open_pool)["IdentityId"]
    second = public.get_id(IdentityPoolId=open_pool, AccountId="000000000000")["IdentityId"]
    assert first != second
    region, _, rest = first.partition(":")
    assert region == REGION and uuid.UUID(rest).version == 4
    described = cognito.describe_identity(IdentityId=first)
    assert described["IdentityId"] == first
    assert "Logins" not in described
    listed = cognito.list_identities(IdentityPoolId=open_pool, MaxResults=10)["Identities"]
    assert [i["IdentityId"] for i in listed] == [first, second]


@pytest.mark.parametrize(
    ("members", "code", "message"),
    [
        (
            {"Logins": {DEVELOPER_PROVIDER: "u"}},
            "NotAuthorizedException",
            f"Developer provider '{DEVELOPER_PROVIDER}' cannot be used with GetId; "
            "call GetOpenIdTokenForDeveloperIdentity.",
        ),
        (
            {"Logins": {"accounts.google.com": "t"}},
            "NotAuthorizedException",
            "Token is not from a supported provider of this identity pool.",
        ),
        (
            {"Logins": {"graph.facebook.com": "t"}},
            "NotAuthorizedException",
            "Logins for graph.facebook.com cannot be verified by this broker.",
        ),
        (
            {"AccountId": "123456789012"},
            "ResourceNotFoundException",
            "IdentityPool '{pool}' not found.",
        ),
    ],
    ids=["developer-provider", "not-a-provider", "public-provider", "other-account"],
)
def test_get_id_errors(
    public: Any, open_pool: str, members: dict[str, Any], code: str, message: str
) -> None:
    with pytest.raises(ClientError) as exc:
        public.get_id(IdentityPoolId=open_pool, **members)
    assert error_of(exc) == (code, 400, message.format(pool=open_pool))


def test_get_id_when_the_pool_refuses_unauthenticated_identities(
    public: Any, pool: dict[str, Any]
) -> None:
    with pytest.raises(ClientError) as exc:
        public.get_id(IdentityPoolId=pool["IdentityPoolId"])
    assert error_of(exc) == (
        "NotAuthorizedException",
        400,
        "Unauthenticated access is not supported for this identity pool.",
    )


def test_get_id_in_an_unknown_pool(public: Any) -> None:
    unknown = f"{REGION}:{uuid.uuid4()}"
    with pytest.raises(ClientError) as exc:
        public.get_id(IdentityPoolId=unknown)
    assert error_of(exc) == (
        "ResourceNotFoundException",
        400,
        f"IdentityPool '{unknown}' not found.",
    )


# --- GetOpenIdToken ----------------------------------------------------------------------
def test_unauthenticated_token(public: Any, open_pool: str, broker_server: BrokerServer) -> None:
    identity = public.get_id(IdentityPoolId=open_pool)["IdentityId"]
    response = public.get_open_id_token(IdentityId=identity)
    assert response["IdentityId"] == identity
    header, claims = oidc.verify(broker_server.url, response["Token"], audience=open_pool)
    assert header["alg"] == "RS512"
    assert claims["sub"] == identity
    assert claims["amr"] == ["unauthenticated"]
    assert claims["exp"] - claims["iat"] == 600
    again = public.get_open_id_token(IdentityId=identity, Logins={COGNITO: response["Token"]})
    assert oidc.verify(broker_server.url, again["Token"], audience=open_pool)[1]["sub"] == identity


def test_unauthenticated_token_stops_when_the_pool_stops_allowing_it(
    public: Any, cognito: Any, open_pool: str
) -> None:
    identity = public.get_id(IdentityPoolId=open_pool)["IdentityId"]
    cognito.update_identity_pool(
        IdentityPoolId=open_pool, IdentityPoolName="closed", AllowUnauthenticatedIdentities=False
    )
    with pytest.raises(ClientError) as exc:
        public.get_open_id_token(IdentityId=identity)
    assert error_of(exc) == (
        "NotAuthorizedException",
        400,
        "Unauthenticated access is not supported for this identity pool.",
    )


def test_authenticated_identity_refreshes_its_token(
    public: Any, cognito: Any, pool: dict[str, Any], broker_server: BrokerServer
) -> None:
    pool_id = pool["IdentityPoolId"]
    issued = developer_token(
        cognito, pool_id, "refresher", TokenDuration=3600, PrincipalTags={"team": "blue"}
    )
    identity = issued["IdentityId"]
    fresh = public.get_open_id_token(IdentityId=identity, Logins={COGNITO: issued["Token"]})
    _, before = oidc.verify(broker_server.url, issued["Token"], audience=pool_id)
    _, after = oidc.verify(broker_server.url, fresh["Token"], audience=pool_id)
    assert fresh["IdentityId"] == after["sub"] == identity
    assert after["amr"] == before["amr"]
    assert after[TAGS_CLAIM] == {"principal_tags": {"team": ["blue"]}}
    assert after["exp"] - after["iat"] == 600


def test_authenticated_identity_errors(
    public: Any, cognito: Any, pool: dict[str, Any], broker_server: BrokerServer
) -> None:
    pool_id = pool["IdentityPoolId"]
    mine = developer_token(cognito, pool_id, "me")
    theirs = developer_token(cognito, pool_id, "them")
    identity = mine["IdentityId"]
    head, payload, signature = mine["Token"].split(".")
    tampered = f"{head}.{payload}.{signature[:-4]}AAAA"
    cases: list[tuple[dict[str, str] | None, str]] = [
        (
            None,
            "Logins don't match. Please include at least one valid login for this identity "
            "or identity pool.",
        ),
        (
            {COGNITO: theirs["Token"]},
            f"Invalid login token. The token was not issued for Identity '{identity}'.",
        ),
        ({COGNITO: tampered}, "Invalid login token. The token signature does not verify."),
        ({COGNITO: "not-a-token"}, "Invalid login token. The token is not a JWS compact token."),
        (
            {DEVELOPER_PROVIDER: "me"},
            f"Developer provider '{DEVELOPER_PROVIDER}' cannot be used with GetOpenIdToken; "
            "call GetOpenIdTokenForDeveloperIdentity.",
        ),
    ]
    for logins, message in cases:
        kwargs: dict[str, Any] = {"IdentityId": identity}
        if logins is not None:
            kwargs["Logins"] = logins
        with pytest.raises(ClientError) as exc:
            public.get_open_id_token(**kwargs)
        assert error_of(exc) == ("NotAuthorizedException", 400, message)


def test_after_unlink_old_tokens_no_longer_refresh(
    public: Any, cognito: Any, pool: dict[str, Any]
) -> None:
    pool_id = pool["IdentityPoolId"]
    issued = developer_token(cognito, pool_id, "gone")
    cognito.unlink_developer_identity(
        IdentityId=issued["IdentityId"],
        IdentityPoolId=pool_id,
        DeveloperProviderName=DEVELOPER_PROVIDER,
        DeveloperUserIdentifier="gone",
    )
    with pytest.raises(ClientError) as exc:
        public.get_open_id_token(IdentityId=issued["IdentityId"], Logins={COGNITO: issued["Token"]})
    assert error_of(exc) == (  # its last login went: the identity is disabled (contract §7)
        "NotAuthorizedException",
        400,
        f"Access to Identity '{issued['IdentityId']}' is forbidden.",
    )


def test_an_identity_whose_last_login_was_unlinked_is_inaccessible(
    public: Any, cognito: Any, open_pool: str
) -> None:
    """AWS: an identity stripped of every login becomes inaccessible. In a pool that allows
    unauthenticated identities it must not pass for one: no token with its id as sub
    (which would carry the former user's identity), and no new user linked to it."""
    emptied = developer_token(cognito, open_pool, "former")["IdentityId"]
    upgraded = public.get_id(IdentityPoolId=open_pool)["IdentityId"]
    developer_token(cognito, open_pool, "upgrader", IdentityId=upgraded)
    never_linked = public.get_id(IdentityPoolId=open_pool)["IdentityId"]
    for identity, user in ((emptied, "former"), (upgraded, "upgrader")):
        cognito.unlink_developer_identity(
            IdentityId=identity,
            IdentityPoolId=open_pool,
            DeveloperProviderName=DEVELOPER_PROVIDER,
            DeveloperUserIdentifier=user,
        )
    for identity in (emptied, upgraded):
        forbidden = (
            "NotAuthorizedException",
            400,
            f"Access to Identity '{identity}' is forbidden.",
        )
        with pytest.raises(ClientError) as exc:
            public.get_open_id_token(IdentityId=identity)
        assert error_of(exc) == forbidden
        with pytest.raises(ClientError) as exc:
            developer_token(cognito, open_pool, "newcomer", IdentityId=identity)
        assert error_of(exc) == forbidden
        with pytest.raises(ClientError) as exc:
            public.unlink_identity(IdentityId=identity, Logins={}, LoginsToRemove=["x"])
        assert error_of(exc) == forbidden
    hidden = cognito.list_identities(IdentityPoolId=open_pool, MaxResults=10, HideDisabled=True)
    assert [i["IdentityId"] for i in hidden["Identities"]] == [never_linked]
    # an identity that never had a login is unauthenticated, as before
    token = public.get_open_id_token(IdentityId=never_linked)["Token"]
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == never_linked
    assert developer_token(cognito, open_pool, "newcomer", IdentityId=never_linked)


def test_the_source_of_a_merge_is_forbidden(
    public: Any, cognito: Any, pool: dict[str, Any]
) -> None:
    pool_id = pool["IdentityPoolId"]
    issued = developer_token(cognito, pool_id, "merged-away")
    identity_of(cognito, pool_id, "keeper")
    merge(cognito, pool_id, "merged-away", "keeper")
    with pytest.raises(ClientError) as exc:
        public.get_open_id_token(IdentityId=issued["IdentityId"], Logins={COGNITO: issued["Token"]})
    assert error_of(exc) == (
        "NotAuthorizedException",
        400,
        f"Access to Identity '{issued['IdentityId']}' is forbidden.",
    )


def test_an_unauthenticated_identity_once_linked_needs_a_token(
    public: Any, cognito: Any, open_pool: str
) -> None:
    identity = public.get_id(IdentityPoolId=open_pool)["IdentityId"]
    unauthenticated = public.get_open_id_token(IdentityId=identity)["Token"]
    linked = developer_token(cognito, open_pool, "upgraded", IdentityId=identity)
    assert linked["IdentityId"] == identity
    for logins in ({}, {COGNITO: unauthenticated}):
        with pytest.raises(ClientError) as exc:
            public.get_open_id_token(IdentityId=identity, Logins=logins)
        assert "Logins don't match" in error_of(exc)[2]
    assert public.get_open_id_token(IdentityId=identity, Logins={COGNITO: linked["Token"]})


def test_get_open_id_token_for_an_unknown_identity(public: Any) -> None:
    unknown = f"{REGION}:{uuid.uuid4()}"
    with pytest.raises(ClientError) as exc:
        public.get_open_id_token(IdentityId=unknown)
    assert error_of(exc) == ("ResourceNotFoundException", 400, f"Identity '{unknown}' not found.")


def test_an_expired_token_is_refused(
    pool: dict[str, Any],
    cognito: Any,
    store: Topology,
    broker_server: BrokerServer,
    broker_credentials: dict[str, str],
) -> None:
    """In-process app on the same Redis and issuer, with a clock moved past the token's exp."""
    from broker.app.factory import create_app
    from config.settings import Settings

    issued = developer_token(cognito, pool["IdentityPoolId"], "ages", TokenDuration=60)
    offset = [0.0]
    settings = Settings.from_env(
        {
            **store.env(),
            "BROKER_CREDENTIALS": ",".join(f"{k}:{v}" for k, v in broker_credentials.items()),
            "BROKER_ISSUER": broker_server.url,
        }
    )
    app = create_app(settings, clock=lambda: time.time() + offset[0])
    body = json.dumps({"IdentityId": issued["IdentityId"], "Logins": {COGNITO: issued["Token"]}})
    headers = {
        "X-Amz-Target": "AWSCognitoIdentityService.GetOpenIdToken",
        "Content-Type": "application/x-amz-json-1.1",
    }
    with app.test_client() as client:
        fresh = client.post("/", data=body, headers=headers)
        assert fresh.status_code == 200, fresh.get_data(as_text=True)
        offset[0] = 61.0
        expired = client.post("/", data=body, headers=headers)
    assert expired.status_code == 400
    assert json.loads(expired.get_data()) == {
        "__type": "NotAuthorizedException",
        "message": "Invalid login token. The token has expired.",
    }


# --- UnlinkIdentity ----------------------------------------------------------------------
def test_unlink_identity(public: Any, cognito: Any, pool: dict[str, Any]) -> None:
    pool_id = pool["IdentityPoolId"]
    issued = developer_token(cognito, pool_id, "stays")
    logins = {COGNITO: issued["Token"]}
    public.unlink_identity(
        IdentityId=issued["IdentityId"], Logins=logins, LoginsToRemove=["graph.facebook.com"]
    )
    with pytest.raises(ClientError) as exc:
        public.unlink_identity(
            IdentityId=issued["IdentityId"], Logins=logins, LoginsToRemove=[DEVELOPER_PROVIDER]
        )
    assert error_of(exc) == (
        "InvalidParameterException",
        400,
        f"Developer provider '{DEVELOPER_PROVIDER}' logins are unlinked with "
        "UnlinkDeveloperIdentity.",
    )
    with pytest.raises(ClientError) as exc:
        public.unlink_identity(IdentityId=issued["IdentityId"], Logins={}, LoginsToRemove=["x"])
    assert error_of(exc)[0] == "NotAuthorizedException"
    assert identity_of(cognito, pool_id, "stays") == issued["IdentityId"]


# --- GetCredentialsForIdentity -----------------------------------------------------------
def test_get_credentials_for_a_pool_without_roles_is_refused_clearly(
    public: Any, open_pool: str
) -> None:
    """Without roles no STS call is made (tests/test_credentials.py has the calls)."""
    identity = public.get_id(IdentityPoolId=open_pool)["IdentityId"]
    with pytest.raises(ClientError) as exc:
        public.get_credentials_for_identity(IdentityId=identity)
    assert error_of(exc) == (
        "InvalidIdentityPoolConfigurationException",
        400,
        "Invalid identity pool configuration. Check assigned IAM roles for this pool.",
    )


# --- the signed operations stay signed ---------------------------------------------------
@pytest.mark.parametrize(
    ("operation", "members"),
    [
        ("describe_identity", {"IdentityId": f"{REGION}:{uuid.uuid4()}"}),
        ("list_identities", {"IdentityPoolId": f"{REGION}:{uuid.uuid4()}", "MaxResults": 1}),
        ("delete_identities", {"IdentityIdsToDelete": [f"{REGION}:{uuid.uuid4()}"]}),
    ],
)
def test_signed_operations_refuse_unsigned_calls(
    public: Any, operation: str, members: dict[str, Any]
) -> None:
    with pytest.raises(ClientError) as exc:
        getattr(public, operation)(**members)
    assert error_of(exc)[:2] == ("MissingAuthenticationTokenException", 403)


def test_a_token_signed_by_a_key_rotated_in_elsewhere_is_accepted() -> None:
    """Process A still holds the old keys when process C, started after a rotation, signs
    with the new one: A looks the unknown kid up once more instead of refusing the token."""
    from broker.app.factory import create_app
    from broker.identity.models import PoolConfig
    from broker.identity.pools import create_pool
    from config.settings import Settings

    headers = {"Content-Type": "application/x-amz-json-1.1"}

    def call(app: Any, operation: str, body: dict[str, Any]) -> Any:
        target = {"X-Amz-Target": f"AWSCognitoIdentityService.{operation}", **headers}
        with app.test_client() as client:
            return client.post("/", data=json.dumps(body), headers=target)

    with RedisServer() as own_redis:
        settings = Settings.from_env({"REDIS_URL": own_redis.url, "BROKER_ISSUER": "http://b"})
        before = create_app(settings)
        services = before.extensions["identity_broker"]
        pool = create_pool(
            services.store,
            PoolConfig(name="rotating", allow_unauthenticated=True),
            region=REGION,
            max_pools=10,
            now=time.time(),
        )
        services.key_source.rotate()
        after = create_app(settings)
        identity = json.loads(call(after, "GetId", {"IdentityPoolId": pool.id}).get_data())
        issued = json.loads(call(after, "GetOpenIdToken", identity).get_data())["Token"]

        old_ring = before.extensions["identity_broker"].keyring
        new_kid = after.extensions["identity_broker"].keyring.current().kid
        assert old_ring.current().kid != new_kid  # A still holds the old keys

        refreshed = call(before, "GetOpenIdToken", {**identity, "Logins": {COGNITO: issued}})
        assert refreshed.status_code == 200, refreshed.get_data(as_text=True)
        assert old_ring.current().kid == new_kid  # and the lookup updated A's ring


def test_tokens_with_unknown_kids_do_not_each_reload_the_keys() -> None:
    """GetOpenIdToken is unsigned: a flood of tokens whose kid no broker key has must not
    cost a key-source read (two HGETALLs) each; the ring reloads at most once a second."""
    from broker.app.factory import create_app
    from broker.identity.models import PoolConfig
    from broker.identity.pools import create_pool
    from config.settings import Settings

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    headers = {
        "X-Amz-Target": "AWSCognitoIdentityService.GetOpenIdToken",
        "Content-Type": "application/x-amz-json-1.1",
    }
    with RedisServer() as own_redis, own_redis.client() as redis_client:
        settings = Settings.from_env({"REDIS_URL": own_redis.url, "BROKER_ISSUER": "http://b"})
        app = create_app(settings)
        pool = create_pool(
            app.extensions["identity_broker"].store,
            PoolConfig(name="flooded", allow_unauthenticated=True),
            region=REGION,
            max_pools=10,
            now=time.time(),
        )
        client = app.test_client()
        identity = json.loads(
            client.post(
                "/",
                data=json.dumps({"IdentityPoolId": pool.id}),
                headers={**headers, "X-Amz-Target": "AWSCognitoIdentityService.GetId"},
            ).get_data()
        )["IdentityId"]

        def hgetalls() -> int:
            stats = redis_client.info("commandstats").get("cmdstat_hgetall", {"calls": 0})
            return int(stats["calls"])

        before, started = hgetalls(), time.monotonic()
        for n in range(40):
            claims = {"sub": identity, "aud": pool.id, "iss": "http://b", "exp": 2**31}
            forged = jwt.encode(claims, stranger, algorithm="RS512", headers={"kid": f"k{n}"})
            body = json.dumps({"IdentityId": identity, "Logins": {COGNITO: forged}})
            response = client.post("/", data=body, headers=headers)
            assert response.status_code == 400
            assert json.loads(response.get_data())["message"] == (
                "Invalid login token. The token was not signed by a key of this broker."
            )
        elapsed = time.monotonic() - started
        assert hgetalls() - before <= 2 * (math.ceil(elapsed) + 1)
