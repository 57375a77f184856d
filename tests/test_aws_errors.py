"""Every error rule of contract sections 1, 2 and 5 against the live broker: the error type
(``__type`` and the x-amzn-ErrorType header), the HTTP status and the message; and after
each bad request the service keeps serving."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import DEVELOPER_PROVIDER, REGION
from support.identities import error_of, temporary_pool
from support.processes import BrokerServer, RedisServer
from support.signing import post

OP = "GetOpenIdTokenForDeveloperIdentity"
NO_DEVELOPER_PROVIDER = "This identity pool does not support the specified developer provider"


def token_body(pool_id: str, user: str = "u1", **extra: Any) -> bytes:
    return json.dumps(
        {"IdentityPoolId": pool_id, "Logins": {DEVELOPER_PROVIDER: user}, **extra}
    ).encode()


def send(
    server: BrokerServer, body: bytes, operation: str | None = OP, **kw: Any
) -> requests.Response:
    return post(
        server.url,
        body,
        operation=operation,
        key_id=kw.pop("key_id", server.access_key_id),
        secret=kw.pop("secret", server.secret_access_key),
        **kw,
    )


def assert_error(
    response: requests.Response, error_type: str, status: int, message: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["__type"] == error_type
    assert response.headers["x-amzn-ErrorType"] == f"{error_type}:"
    assert response.headers["x-amzn-RequestId"]
    assert response.headers["Content-Type"].startswith("application/x-amz-json-1.1")
    if message is not None:
        assert body["message"] == message
    return body


@pytest.fixture
def still_serving(cognito: Any, pool: dict[str, Any]) -> Callable[[], None]:
    def check() -> None:
        result = cognito.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool["IdentityPoolId"], Logins={DEVELOPER_PROVIDER: "healthy"}
        )
        assert result["Token"].count(".") == 2

    return check


# --- section 2: SigV4 -----------------------------------------------------------------------
def test_unsigned_request_is_missing_authentication_token(
    broker_server: BrokerServer, pool: dict[str, Any], still_serving: Callable[[], None]
) -> None:
    response = requests.post(
        broker_server.url,
        data=token_body(pool["IdentityPoolId"]),
        headers={
            "X-Amz-Target": f"AWSCognitoIdentityService.{OP}",
            "Content-Type": "application/x-amz-json-1.1",
        },
        timeout=10,
    )
    assert_error(
        response, "MissingAuthenticationTokenException", 403, "Missing Authentication Token"
    )
    still_serving()


def test_wrong_secret_is_invalid_signature(
    broker_server: BrokerServer, pool: dict[str, Any], still_serving: Callable[[], None]
) -> None:
    response = send(
        broker_server, token_body(pool["IdentityPoolId"]), secret="not-the-secret-at-all"
    )
    body = assert_error(response, "InvalidSignatureException", 400)
    assert body["message"].startswith("The request signature we calculated does not match")
    still_serving()


def test_unknown_key_id_is_unrecognized_client(
    broker_server: BrokerServer, pool: dict[str, Any], still_serving: Callable[[], None]
) -> None:
    response = send(broker_server, token_body(pool["IdentityPoolId"]), key_id="AKIDUNKNOWN")
    assert_error(
        response,
        "UnrecognizedClientException",
        400,
        "The security token included in the request is invalid.",
    )
    still_serving()


def test_signature_ten_minutes_old_is_expired(
    broker_server: BrokerServer, pool: dict[str, Any], still_serving: Callable[[], None]
) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    response = send(broker_server, token_body(pool["IdentityPoolId"]), when=old)
    body = assert_error(response, "InvalidSignatureException", 400)
    assert body["message"].startswith("Signature expired: ")
    still_serving()


def test_body_changed_after_signing_is_invalid_signature(
    broker_server: BrokerServer, pool: dict[str, Any], still_serving: Callable[[], None]
) -> None:
    def tamper(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        return body.replace(b"u1", b"u2"), headers

    response = send(broker_server, token_body(pool["IdentityPoolId"]), tamper=tamper)
    assert_error(response, "InvalidSignatureException", 400)
    still_serving()


def test_malformed_authorization_is_incomplete_signature(
    broker_server: BrokerServer, pool: dict[str, Any], still_serving: Callable[[], None]
) -> None:
    def tamper(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKIDTESTBROKER"
        return body, headers

    response = send(broker_server, token_body(pool["IdentityPoolId"]), tamper=tamper)
    assert_error(response, "IncompleteSignatureException", 400)
    still_serving()


def test_a_target_added_after_signing_is_refused_and_the_pool_survives(
    broker_server: BrokerServer, cognito: Any, pool: dict[str, Any]
) -> None:
    """A signature that did not cover X-Amz-Target cannot be replayed as DeleteIdentityPool."""
    pool_id = pool["IdentityPoolId"]

    def tamper(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        assert "x-amz-target" not in headers["Authorization"]
        return body, {**headers, "X-Amz-Target": "AWSCognitoIdentityService.DeleteIdentityPool"}

    body = json.dumps({"IdentityPoolId": pool_id}).encode()
    response = send(broker_server, body, operation=None, tamper=tamper)
    error = assert_error(response, "IncompleteSignatureException", 400)
    assert "'x-amz-target'" in error["message"]
    assert cognito.describe_identity_pool(IdentityPoolId=pool_id)["IdentityPoolId"] == pool_id


@pytest.mark.parametrize(("region", "service"), [("eu-west-1", "cognito-identity"), (REGION, "s3")])
def test_foreign_credential_scope_is_invalid_signature(
    broker_server: BrokerServer, pool: dict[str, Any], region: str, service: str
) -> None:
    response = send(
        broker_server, token_body(pool["IdentityPoolId"]), region=region, service=service
    )
    body = assert_error(response, "InvalidSignatureException", 400)
    assert "scoped" in body["message"]


def test_the_second_configured_key_pair_is_accepted(
    broker_server: BrokerServer, pool: dict[str, Any], broker_credentials: dict[str, str]
) -> None:
    response = send(
        broker_server,
        token_body(pool["IdentityPoolId"]),
        key_id="AKIDSECONDKEY",
        secret=broker_credentials["AKIDSECONDKEY"],
    )
    assert response.status_code == 200, response.text


# --- section 1: protocol ----------------------------------------------------------------------
def test_missing_target_names_the_header(broker_server: BrokerServer, pool: dict[str, Any]) -> None:
    response = send(broker_server, token_body(pool["IdentityPoolId"]), operation=None)
    body = assert_error(response, "UnknownOperationException", 400)
    assert "X-Amz-Target" in body["message"]


def test_unknown_target_is_unknown_operation(broker_server: BrokerServer) -> None:
    response = send(broker_server, b"{}", operation="StealEverything")
    body = assert_error(response, "UnknownOperationException", 400)
    assert "AWSCognitoIdentityService.StealEverything" in body["message"]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'"text"', b"null", b"\xff\xfe"],
    ids=["malformed", "array", "string", "null", "not-utf8"],
)
def test_bodies_that_are_not_json_objects_are_serialization_errors(
    broker_server: BrokerServer, body: bytes, still_serving: Callable[[], None]
) -> None:
    assert_error(send(broker_server, body), "SerializationException", 400)
    still_serving()


def test_wrong_member_type_is_a_serialization_error(
    broker_server: BrokerServer, pool: dict[str, Any]
) -> None:
    body = token_body(pool["IdentityPoolId"], TokenDuration="900")
    assert_error(send(broker_server, body), "SerializationException", 400)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"TokenDuration": 0},
            "1 validation error detected: Value '0' at 'tokenDuration' failed to satisfy "
            "constraint: Member must have value greater than or equal to 1",
        ),
        (
            {"TokenDuration": 86401},
            "1 validation error detected: Value '86401' at 'tokenDuration' failed to satisfy "
            "constraint: Member must have value less than or equal to 86400",
        ),
    ],
)
def test_token_duration_out_of_range(
    broker_server: BrokerServer, pool: dict[str, Any], extra: dict[str, Any], message: str
) -> None:
    assert_error(
        send(broker_server, token_body(pool["IdentityPoolId"], **extra)),
        "ValidationException",
        400,
        message,
    )


def test_eleven_logins_is_a_validation_error_that_echoes_no_login(
    broker_server: BrokerServer, pool: dict[str, Any]
) -> None:
    logins = {f"provider{i}.example": f"secret-user-{i}" for i in range(11)}
    body = json.dumps({"IdentityPoolId": pool["IdentityPoolId"], "Logins": logins}).encode()
    error = assert_error(send(broker_server, body), "ValidationException", 400)
    assert "at 'logins'" in error["message"]
    assert "Member must have length less than or equal to 10" in error["message"]
    assert "secret-user" not in error["message"]


def test_missing_required_member(broker_server: BrokerServer) -> None:
    body = json.dumps({"Logins": {DEVELOPER_PROVIDER: "u"}}).encode()
    assert_error(
        send(broker_server, body),
        "ValidationException",
        400,
        "1 validation error detected: Value null at 'identityPoolId' failed to satisfy "
        "constraint: Member must not be null",
    )


def test_two_violations_are_reported_together(broker_server: BrokerServer) -> None:
    body = json.dumps({"IdentityPoolId": "bad pool id!", "TokenDuration": 0, "Logins": {}}).encode()
    error = assert_error(send(broker_server, body), "ValidationException", 400)
    assert error["message"].startswith("2 validation errors detected: ")


def test_a_two_mib_body_is_refused_before_parsing(
    broker_server: BrokerServer, pool: dict[str, Any], still_serving: Callable[[], None]
) -> None:
    body = token_body(pool["IdentityPoolId"], Padding="x" * (2 * 1024 * 1024))
    error = assert_error(send(broker_server, body), "ValidationException", 400)
    assert "1048576 bytes" in error["message"]
    still_serving()


# --- section 5: the developer token rules -----------------------------------------------------
def test_unknown_pool(cognito: Any) -> None:
    pool_id = f"{REGION}:{uuid.uuid4()}"
    with pytest.raises(ClientError) as exc:
        cognito.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: "u"}
        )
    assert error_of(exc) == (
        "ResourceNotFoundException",
        400,
        f"IdentityPool '{pool_id}' not found.",
    )


def test_a_login_key_that_is_no_provider_of_the_pool(cognito: Any, pool: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as exc:
        cognito.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool["IdentityPoolId"],
            Logins={DEVELOPER_PROVIDER: "u", "login.stranger": "u"},
        )
    assert error_of(exc) == (
        "NotAuthorizedException",
        400,
        "Token is not from a supported provider of this identity pool.",
    )


@pytest.fixture
def no_developer_pool(cognito: Any) -> Iterator[str]:
    """A pool without a developer provider, graph.facebook.com its one login provider."""
    with temporary_pool(
        cognito,
        IdentityPoolName="no_dev",
        AllowUnauthenticatedIdentities=False,
        SupportedLoginProviders={"graph.facebook.com": "app"},
    ) as pool_id:
        yield pool_id


def test_a_pool_without_developer_provider(cognito: Any, no_developer_pool: str) -> None:
    with pytest.raises(ClientError) as exc:
        cognito.get_open_id_token_for_developer_identity(
            IdentityPoolId=no_developer_pool, Logins={"graph.facebook.com": "fb-token"}
        )
    assert error_of(exc) == (
        "NotAuthorizedException",
        400,
        "This identity pool does not support the specified developer provider",
    )


def test_logins_without_the_developer_provider_and_public_providers_beside_it(cognito: Any) -> None:
    with temporary_pool(
        cognito,
        IdentityPoolName="mixed",
        AllowUnauthenticatedIdentities=False,
        DeveloperProviderName=DEVELOPER_PROVIDER,
        SupportedLoginProviders={"graph.facebook.com": "app"},
    ) as pool_id:
        with pytest.raises(ClientError) as exc:
            cognito.get_open_id_token_for_developer_identity(
                IdentityPoolId=pool_id, Logins={"graph.facebook.com": "fb-token"}
            )
        assert error_of(exc)[:2] == ("NotAuthorizedException", 400)
        assert "does not support the specified developer provider" in error_of(exc)[2]
        with pytest.raises(ClientError) as exc:
            cognito.get_open_id_token_for_developer_identity(
                IdentityPoolId=pool_id,
                Logins={DEVELOPER_PROVIDER: "u", "graph.facebook.com": "fb-token"},
            )
        assert error_of(exc) == (  # contract section 9: Facebook's tokens are opaque
            "NotAuthorizedException",
            400,
            "Logins for graph.facebook.com cannot be verified by this broker.",
        )


@pytest.mark.parametrize(
    "logins",
    [{"login.stranger": "u"}, {DEVELOPER_PROVIDER: "u"}, {"graph.facebook.com": "fb-token"}],
    ids=["unknown-key", "another-pools-developer-provider", "its-public-provider"],
)
def test_a_pool_without_developer_provider_says_so_whatever_the_logins(
    cognito: Any, no_developer_pool: str, logins: dict[str, str]
) -> None:
    """Contract 5.2: no D answers "does not support the developer provider" before the
    Logins keys are looked at, so an unknown key gets that answer too."""
    with pytest.raises(ClientError) as exc:
        cognito.get_open_id_token_for_developer_identity(
            IdentityPoolId=no_developer_pool, Logins=logins
        )
    assert error_of(exc) == ("NotAuthorizedException", 400, NO_DEVELOPER_PROVIDER)


def test_a_developer_user_id_over_1024_characters_is_an_invalid_parameter(
    cognito: Any, pool: dict[str, Any]
) -> None:
    """u is capped at DeveloperUserIdentifier's 1024, the limit Lookup/Merge/Unlink use."""
    pool_id = pool["IdentityPoolId"]
    longest = "a" * 1023 + "z"
    identity = cognito.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: longest}
    )["IdentityId"]
    found = cognito.lookup_developer_identity(
        IdentityPoolId=pool_id, DeveloperUserIdentifier=longest, MaxResults=1
    )
    assert found["IdentityId"] == identity

    too_long = "b" * 1024 + "Q"
    with pytest.raises(ClientError) as exc:
        cognito.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: too_long}
        )
    code, status, message = error_of(exc)
    assert (code, status) == ("InvalidParameterException", 400)
    assert "1024" in message
    assert "b" * 100 not in message


def test_identity_id_rules(cognito: Any, pool: dict[str, Any]) -> None:
    pool_id = pool["IdentityPoolId"]
    alice = cognito.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: "alice"}
    )["IdentityId"]
    bob = cognito.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: "bob"}
    )["IdentityId"]

    # u already linked to the given identity: success, same identity
    same = cognito.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, IdentityId=alice, Logins={DEVELOPER_PROVIDER: "alice"}
    )
    assert same["IdentityId"] == alice

    # u linked to another identity
    with pytest.raises(ClientError) as exc:
        cognito.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool_id, IdentityId=bob, Logins={DEVELOPER_PROVIDER: "alice"}
        )
    assert error_of(exc)[:2] == ("DeveloperUserAlreadyRegisteredException", 400)

    # u unlinked, identity has other logins
    with pytest.raises(ClientError) as exc:
        cognito.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool_id, IdentityId=bob, Logins={DEVELOPER_PROVIDER: "carol"}
        )
    assert error_of(exc) == (
        "NotAuthorizedException",
        400,
        "Logins don't match. Please include at least one valid login for this identity or "
        "identity pool.",
    )

    # unknown identity in this pool
    unknown = f"{REGION}:{uuid.uuid4()}"
    with pytest.raises(ClientError) as exc:
        cognito.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool_id, IdentityId=unknown, Logins={DEVELOPER_PROVIDER: "dave"}
        )
    assert error_of(exc) == (
        "ResourceNotFoundException",
        400,
        f"Identity '{unknown}' not found.",
    )


def test_an_identity_without_logins_gets_linked(
    cognito: Any, pool: dict[str, Any], redis_server: RedisServer
) -> None:
    """An unauthenticated identity (no logins) takes the developer login given with it."""
    pool_id = pool["IdentityPoolId"]
    bare = f"{REGION}:{uuid.uuid4()}"
    record = json.dumps({"c": 1.0, "m": 1.0, "d": 0, "l": {}, "s": 999})
    redis_server.client().hset(f"ib:{{{pool_id}}}:identities", bare, record)

    linked = cognito.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, IdentityId=bare, Logins={DEVELOPER_PROVIDER: "erin"}
    )
    again = cognito.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: "erin"}
    )
    assert linked["IdentityId"] == again["IdentityId"] == bare


def test_a_disabled_identity_is_forbidden(
    cognito: Any, pool: dict[str, Any], redis_server: RedisServer
) -> None:
    pool_id = pool["IdentityPoolId"]
    identity = cognito.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: "frank"}
    )["IdentityId"]
    key = f"ib:{{{pool_id}}}:identities"
    record = json.loads(redis_server.client().hget(key, identity))
    record["d"] = 1
    redis_server.client().hset(key, identity, json.dumps(record))

    for extra in ({}, {"IdentityId": identity}):
        with pytest.raises(ClientError) as exc:
            cognito.get_open_id_token_for_developer_identity(
                IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: "frank"}, **extra
            )
        assert error_of(exc) == (
            "NotAuthorizedException",
            400,
            f"Access to Identity '{identity}' is forbidden.",
        )
