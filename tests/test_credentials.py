"""GetCredentialsForIdentity end to end (contract section 10): boto3 without credentials
against the live broker, which signs its own token for the identity and exchanges it at a
recording STS stand-in (``support.sts``) that verifies it with PyJWT against the broker's
JWKS, as STS does for an IAM OpenID Connect provider. The role mapping cases are unit tests
of ``broker.identity.roles`` (tests/test_roles.py); here: which role STS is asked for, what
token it sees, and what each STS answer becomes, in time."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from joserfc.jwk import RSAKey
from support.clients import cognito_client
from support.identities import (
    DEVELOPER_PROVIDER,
    developer_token,
    error_of,
    temporary_pool,
    unsigned_client,
)
from support.issuer import TestIssuer
from support.processes import BrokerServer, broker_on_own_redis, free_port
from support.sts import StsStandIn

pytestmark = pytest.mark.slow  # a broker and an STS stand-in of its own

COGNITO = "cognito-identity.amazonaws.com"
ROLE = "arn:aws:iam::123456789012:role/{}"
AUTH, UNAUTH = ROLE.format("cognito-auth"), ROLE.format("cognito-unauth")
DEADLINE = 1.5  # BROKER_STS_DEADLINE of the module's broker
GOOGLE, GOOGLE_APP = "accounts.google.com", "creds-app.apps.googleusercontent.com"
USER_POOL_ID = "us-east-1_CredsPool"
USER_POOL = f"cognito-idp.us-east-1.amazonaws.com/{USER_POOL_ID}"
USER_POOL_CLIENT = "creds_client"


@pytest.fixture(scope="module")
def sts() -> Iterator[StsStandIn]:
    with StsStandIn() as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def provider() -> Iterator[TestIssuer]:
    """One test issuer standing in for accounts.google.com (BROKER_OIDC_PROVIDERS) and for
    the Cognito user pool endpoint (BROKER_COGNITO_IDP_ENDPOINT): the tests sign the claims
    role mappings read (``cognito:preferred_role``, a rule's claim)."""
    with TestIssuer().running() as issuer:
        issuer.serve(f"/{USER_POOL_ID}/.well-known/jwks.json", issuer.jwks)
        yield issuer


@pytest.fixture(scope="module")
def broker(
    sts: StsStandIn, provider: TestIssuer, broker_credentials: dict[str, str]
) -> Iterator[BrokerServer]:
    google = {"issuer": provider.url, "jwks_uri": provider.jwks_uri, "client_ids": [GOOGLE_APP]}
    env = {
        "BROKER_STS_ENDPOINT_URL": sts.url,
        "BROKER_STS_DEADLINE": str(DEADLINE),
        "BROKER_OIDC_PROVIDERS": json.dumps({GOOGLE: google}),
        "BROKER_COGNITO_IDP_ENDPOINT": provider.url,
    }
    with broker_on_own_redis(credentials=broker_credentials, env=env) as own:
        sts.issuer = own.broker.url
        yield own.broker


@pytest.fixture
def admin(broker: BrokerServer) -> Iterator[Any]:
    client = cognito_client(broker)
    yield client
    client.close()


@pytest.fixture
def public(broker: BrokerServer) -> Iterator[Any]:
    client = unsigned_client(broker.url)
    yield client
    client.close()


@pytest.fixture
def pool(admin: Any, sts: StsStandIn) -> Iterator[str]:
    """A pool with both roles, unauthenticated identities and the developer provider; its
    id is a client id of the OpenID Connect provider STS trusts."""
    with temporary_pool(
        admin,
        IdentityPoolName=f"creds_{uuid.uuid4().hex[:8]}",
        AllowUnauthenticatedIdentities=True,
        DeveloperProviderName=DEVELOPER_PROVIDER,
        SupportedLoginProviders={GOOGLE: GOOGLE_APP},
        CognitoIdentityProviders=[{"ProviderName": USER_POOL, "ClientId": USER_POOL_CLIENT}],
    ) as pool_id:
        admin.set_identity_pool_roles(
            IdentityPoolId=pool_id, Roles={"authenticated": AUTH, "unauthenticated": UNAUTH}
        )
        sts.reset()
        sts.audiences = {pool_id}
        yield pool_id


def developer_logins(admin: Any, pool_id: str) -> tuple[str, dict[str, str]]:
    issued = developer_token(admin, pool_id, f"user-{uuid.uuid4().hex[:8]}")
    return issued["IdentityId"], {COGNITO: issued["Token"]}


def assert_credentials(answer: dict[str, Any], sts: StsStandIn, identity: str) -> None:
    assert answer["IdentityId"] == identity
    given, issued = answer["Credentials"], sts.issued[-1]
    assert given["AccessKeyId"] == issued.access_key_id
    assert given["SecretKey"] == issued.secret_key
    assert given["SessionToken"] == issued.session_token
    assert given["Expiration"] == issued.expiration  # boto3 read epoch seconds
    remaining = (given["Expiration"] - datetime.now(UTC)).total_seconds()
    assert 3500 < remaining <= 3600


# --- credentials -------------------------------------------------------------------------
def test_an_authenticated_developer_identity_gets_credentials(
    admin: Any, public: Any, pool: str, sts: StsStandIn
) -> None:
    identity, logins = developer_logins(admin, pool)
    answer = public.get_credentials_for_identity(IdentityId=identity, Logins=logins)
    assert_credentials(answer, sts, identity)
    [call] = sts.calls
    assert call.params["RoleArn"] == AUTH
    assert call.params["RoleSessionName"] == "CognitoIdentityCredentials"
    assert call.params["DurationSeconds"] == "3600"
    assert call.claims is not None  # the stand-in verified it against the broker's JWKS
    assert call.claims["sub"] == identity and call.claims["aud"] == pool
    assert call.claims["amr"][:2] == ["authenticated", DEVELOPER_PROVIDER]
    assert call.params["WebIdentityToken"] != logins[COGNITO]  # a token signed for STS


def test_an_unauthenticated_identity_gets_credentials(
    public: Any, pool: str, sts: StsStandIn
) -> None:
    identity = public.get_id(IdentityPoolId=pool)["IdentityId"]
    answer = public.get_credentials_for_identity(IdentityId=identity)
    assert_credentials(answer, sts, identity)
    [call] = sts.calls
    assert call.params["RoleArn"] == UNAUTH
    assert call.claims is not None and call.claims["amr"] == ["unauthenticated"]


def user_pool_token(provider: TestIssuer, sub: str, **claims: Any) -> str:
    return provider.mint(
        sub, USER_POOL_CLIENT, issuer=f"https://{USER_POOL}", token_use="id", **claims
    )


def test_a_user_pool_login_gets_its_token_s_preferred_role(
    admin: Any, public: Any, pool: str, sts: StsStandIn, provider: TestIssuer
) -> None:
    """A Token mapping on the user pool: STS is asked for cognito:preferred_role."""
    editor, viewer = ROLE.format("editor"), ROLE.format("viewer")
    admin.set_identity_pool_roles(
        IdentityPoolId=pool,
        Roles={"authenticated": AUTH, "unauthenticated": UNAUTH},
        RoleMappings={USER_POOL: {"Type": "Token", "AmbiguousRoleResolution": "Deny"}},
    )
    token = user_pool_token(
        provider,
        "pool-user",
        **{"cognito:roles": [editor, viewer], "cognito:preferred_role": editor},
    )
    identity = public.get_id(IdentityPoolId=pool, Logins={USER_POOL: token})["IdentityId"]
    answer = public.get_credentials_for_identity(IdentityId=identity, Logins={USER_POOL: token})
    assert_credentials(answer, sts, identity)
    [call] = sts.calls
    assert call.params["RoleArn"] == editor
    assert call.claims is not None and call.claims["amr"][:2] == ["authenticated", USER_POOL]
    # CustomRoleArn may pick another of the token's roles, and nothing outside them.
    public.get_credentials_for_identity(
        IdentityId=identity, Logins={USER_POOL: token}, CustomRoleArn=viewer
    )
    assert sts.calls[-1].params["RoleArn"] == viewer
    with pytest.raises(ClientError) as exc:
        public.get_credentials_for_identity(
            IdentityId=identity, Logins={USER_POOL: token}, CustomRoleArn=AUTH
        )
    assert error_of(exc)[0] == "NotAuthorizedException"
    # Without roles in its token, a Deny mapping gives none.
    bare = user_pool_token(provider, "pool-user")
    with pytest.raises(ClientError) as exc:
        public.get_credentials_for_identity(IdentityId=identity, Logins={USER_POOL: bare})
    assert error_of(exc)[0] == "NotAuthorizedException"
    assert len(sts.calls) == 2


def test_a_google_login_gets_the_role_its_claims_match(
    admin: Any, public: Any, pool: str, sts: StsStandIn, provider: TestIssuer
) -> None:
    """A Rules mapping on Google: the first rule the verified claims match, else the pool's
    authenticated role (AmbiguousRoleResolution AuthenticatedRole)."""
    staff = ROLE.format("staff")
    rule = {"Claim": "hd", "MatchType": "Equals", "Value": "example.com", "RoleARN": staff}
    admin.set_identity_pool_roles(
        IdentityPoolId=pool,
        Roles={"authenticated": AUTH, "unauthenticated": UNAUTH},
        RoleMappings={
            GOOGLE: {
                "Type": "Rules",
                "AmbiguousRoleResolution": "AuthenticatedRole",
                "RulesConfiguration": {"Rules": [rule]},
            }
        },
    )
    for hd, role in (("example.com", staff), ("elsewhere.org", AUTH)):
        sub = f"g-{uuid.uuid4().hex[:8]}"
        token = provider.mint(sub, GOOGLE_APP, hd=hd)
        identity = public.get_id(IdentityPoolId=pool, Logins={GOOGLE: token})["IdentityId"]
        answer = public.get_credentials_for_identity(IdentityId=identity, Logins={GOOGLE: token})
        assert_credentials(answer, sts, identity)
        assert sts.calls[-1].params["RoleArn"] == role
        assert sts.calls[-1].claims is not None
        assert sts.calls[-1].claims["amr"][:2] == ["authenticated", GOOGLE]
    impostor = RSAKey.generate_key(2048, parameters={"kid": provider.key.kid})
    forged = provider.mint("g-forged", GOOGLE_APP, hd="example.com", key=impostor)
    with pytest.raises(
        ClientError
    ) as exc:  # claims of a token that does not verify count for nothing
        public.get_credentials_for_identity(IdentityId=identity, Logins={GOOGLE: forged})
    assert error_of(exc)[0] == "NotAuthorizedException"
    assert len(sts.calls) == 2


def test_custom_role_arn_allowed_and_not(
    admin: Any, public: Any, pool: str, sts: StsStandIn
) -> None:
    """No mapping for the call's provider: only the selected role may be named."""
    identity, logins = developer_logins(admin, pool)
    public.get_credentials_for_identity(IdentityId=identity, Logins=logins, CustomRoleArn=AUTH)
    assert [call.params["RoleArn"] for call in sts.calls] == [AUTH]
    with pytest.raises(ClientError) as exc:
        public.get_credentials_for_identity(
            IdentityId=identity, Logins=logins, CustomRoleArn=ROLE.format("admin")
        )
    assert error_of(exc)[:2] == ("NotAuthorizedException", 400)
    assert len(sts.calls) == 1  # refused before STS


def test_a_pool_without_roles_is_an_invalid_configuration(
    admin: Any, public: Any, pool: str, sts: StsStandIn
) -> None:
    admin.set_identity_pool_roles(IdentityPoolId=pool, Roles={"authenticated": AUTH})
    identity = public.get_id(IdentityPoolId=pool)["IdentityId"]
    with pytest.raises(ClientError) as exc:
        public.get_credentials_for_identity(IdentityId=identity)
    assert error_of(exc) == (
        "InvalidIdentityPoolConfigurationException",
        400,
        "Invalid identity pool configuration. Check assigned IAM roles for this pool.",
    )
    assert sts.calls == []


def test_an_identity_with_logins_must_prove_them(
    admin: Any, public: Any, pool: str, sts: StsStandIn
) -> None:
    identity, _ = developer_logins(admin, pool)
    with pytest.raises(ClientError) as exc:
        public.get_credentials_for_identity(IdentityId=identity)
    assert error_of(exc)[0] == "NotAuthorizedException"
    assert sts.calls == []


# --- STS's answers -----------------------------------------------------------------------
def timed_error(public: Any, identity: str, logins: dict[str, str]) -> tuple[str, str, float]:
    started = time.monotonic()
    with pytest.raises(ClientError) as exc:
        public.get_credentials_for_identity(IdentityId=identity, Logins=logins)
    code, _, message = error_of(exc)
    return code, message, time.monotonic() - started


def test_throttling_is_retried_then_too_many_requests(
    admin: Any, public: Any, pool: str, sts: StsStandIn
) -> None:
    identity, logins = developer_logins(admin, pool)
    sts.reset("throttle-once")
    assert_credentials(
        public.get_credentials_for_identity(IdentityId=identity, Logins=logins), sts, identity
    )
    assert [call.answer for call in sts.calls] == ["Throttling", "credentials"]
    sts.reset("throttle")
    code, message, elapsed = timed_error(public, identity, logins)
    assert code == "TooManyRequestsException" and "Throttling" in message
    assert len(sts.calls) > 2  # retried with jittered backoff ...
    assert elapsed < DEADLINE + 1.0  # ... within the deadline


@pytest.mark.parametrize("refusal", ["AccessDenied", "InvalidIdentityToken", "ExpiredToken"])
def test_sts_refusing_is_not_authorized(
    admin: Any, public: Any, pool: str, sts: StsStandIn, refusal: str
) -> None:
    identity, logins = developer_logins(admin, pool)
    sts.reset(refusal)
    code, message, elapsed = timed_error(public, identity, logins)
    assert code == "NotAuthorizedException"
    assert message.startswith(f"STS refused the credentials ({refusal}): ")
    assert len(sts.calls) == 1 and elapsed < 1.0


def test_a_token_sts_cannot_verify_is_not_authorized(
    admin: Any, public: Any, pool: str, sts: StsStandIn
) -> None:
    """The IAM provider lists another client id: STS's own check of the aud refuses."""
    identity, logins = developer_logins(admin, pool)
    sts.audiences = {"us-east-1:00000000-0000-4000-8000-000000000000"}
    code, message, _ = timed_error(public, identity, logins)
    assert code == "NotAuthorizedException" and "InvalidIdentityToken" in message
    assert "eyJ" not in message  # no token in the message
    assert [call.answer for call in sts.calls] == ["InvalidIdentityToken"]


def test_sts_failing_is_external_service(
    admin: Any, public: Any, pool: str, sts: StsStandIn
) -> None:
    identity, logins = developer_logins(admin, pool)
    sts.reset("500")
    code, message, elapsed = timed_error(public, identity, logins)
    assert code == "ExternalServiceException" and "InternalFailure" in message
    assert len(sts.calls) == 1 and elapsed < 1.0


def test_sts_hanging_is_external_service_at_the_deadline(
    admin: Any, public: Any, pool: str, sts: StsStandIn
) -> None:
    identity, logins = developer_logins(admin, pool)
    sts.reset("hang")
    sts.hang_seconds = DEADLINE + 2
    code, message, elapsed = timed_error(public, identity, logins)
    assert code == "ExternalServiceException" and "DeadlineExceeded" in message
    assert DEADLINE - 0.1 < elapsed < DEADLINE + 1.0


def test_sts_down_is_external_service_at_once(broker_credentials: dict[str, str]) -> None:
    env = {"BROKER_STS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    with broker_on_own_redis(credentials=broker_credentials, env=env, workers=1) as own:
        admin, public = cognito_client(own.broker), unsigned_client(own.broker.url)
        with temporary_pool(
            admin, IdentityPoolName="down", AllowUnauthenticatedIdentities=True
        ) as pool_id:
            admin.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"unauthenticated": UNAUTH})
            identity = public.get_id(IdentityPoolId=pool_id)["IdentityId"]
            code, message, elapsed = timed_error(public, identity, {})
        assert code == "ExternalServiceException" and "could not be reached" in message
        assert elapsed < 1.0


# --- nothing secret in the log -----------------------------------------------------------
def test_the_log_holds_no_credentials_or_tokens(broker: BrokerServer, sts: StsStandIn) -> None:
    """Last in the module: every answer the stand-in gave is looked for in the log."""
    time.sleep(0.3)  # the workers' last lines
    log = broker.log_path.read_text(errors="replace")
    assert '"path": "/"' in log  # the calls were logged (access lines), without secrets
    sts.assert_no_secret_in(log)
