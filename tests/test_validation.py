"""Request parsing and validation at the edge (contract section 1, AWS JSON 1.1).

The schemas are also checked member by member against botocore's own service model, so a
constraint copied wrongly from ``constraints.md`` fails here rather than in production.
"""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.awsjson import schemas, validation
from broker.awsjson.schemas import OPERATIONS, SCHEMAS, snake_case
from broker.awsjson.validation import StrictField, load_request
from broker.errors import SerializationException, ValidationException

POOL = "us-east-1:11111111-2222-3333-4444-555555555555"
IDENTITY = "us-east-1:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
ROLE = "arn:aws:iam::123456789012:role/Cognito_Auth"
POOL_ARN = f"arn:aws:cognito-identity:us-east-1:123456789012:identitypool/{POOL}"
OIDC_ARN = "arn:aws:iam::123456789012:oidc-provider/example.com"
DEV = "login.mycompany.myapp"
LEN = "Member must have length less than or equal to {}"
MIN_LEN = "Member must have length greater than or equal to {}"
VALUE = "Member must have value less than or equal to {}"
MIN_VALUE = "Member must have value greater than or equal to {}"
PATTERN = "Member must satisfy regular expression pattern: {}"
NOT_NULL = "Member must not be null"
ID_PATTERN = PATTERN.format(r"[\w-]+:[0-9a-f-]+")

TOKEN_BASE = {"IdentityPoolId": POOL, "Logins": {DEV: "user-123"}}
POOL_BASE = {"IdentityPoolName": "My pool", "AllowUnauthenticatedIdentities": False}
ROLES_BASE = {"IdentityPoolId": POOL, "Roles": {"authenticated": ROLE}}


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def changed(base: dict[str, Any], **members: Any) -> dict[str, Any]:
    return {**base, **members}


def fault(operation: str, payload: Any) -> str:
    body = payload if isinstance(payload, bytes) else encode(payload)
    with pytest.raises(ValidationException) as info:
        load_request(operation, body)
    return info.value.message


def one(value: str | None, path: str, constraint: str) -> str:
    head = "Value" if value is None else f"Value {value}"
    sentence = f"{head} at '{path}' failed to satisfy constraint: {constraint}"
    return f"1 validation error detected: {sentence}"


def role_mapping(**mapping: Any) -> dict[str, Any]:
    return changed(ROLES_BASE, RoleMappings={"graph.facebook.com": mapping})


def rule(**members: Any) -> dict[str, Any]:
    good = {"Claim": "isAdmin", "MatchType": "Equals", "Value": "yes", "RoleARN": ROLE}
    rules = [{k: v for k, v in {**good, **members}.items() if v is not None}]
    return role_mapping(Type="Rules", RulesConfiguration={"Rules": rules})


# --- valid bodies: every operation ---------------------------------------------------------
FULL_POOL_IN = {
    "IdentityPoolName": "My pool, v2 test",
    "AllowUnauthenticatedIdentities": True,
    "AllowClassicFlow": False,
    "SupportedLoginProviders": {"graph.facebook.com": "7346241598935552"},
    "DeveloperProviderName": DEV,
    "OpenIdConnectProviderARNs": [OIDC_ARN],
    "CognitoIdentityProviders": [
        {
            "ProviderName": "cognito-idp.us-east-1.amazonaws.com/us-east-1_123456789",
            "ClientId": "abcdef0123456789",
            "ServerSideTokenCheck": True,
            "Unknown": "ignored",
        },
        {"ClientId": "only_client", "ServerSideTokenCheck": None},
    ],
    "SamlProviderARNs": ["arn:aws:iam::123456789012:saml-provider/corp"],
    "IdentityPoolTags": {"team": "identity", "empty": ""},
    "SomethingNew": {"ignored": True},
}
FULL_POOL_OUT = {
    "identity_pool_name": "My pool, v2 test",
    "allow_unauthenticated_identities": True,
    "allow_classic_flow": False,
    "supported_login_providers": {"graph.facebook.com": "7346241598935552"},
    "developer_provider_name": DEV,
    "open_id_connect_provider_arns": [OIDC_ARN],
    "cognito_identity_providers": [
        {
            "ProviderName": "cognito-idp.us-east-1.amazonaws.com/us-east-1_123456789",
            "ClientId": "abcdef0123456789",
            "ServerSideTokenCheck": True,
        },
        {"ClientId": "only_client"},
    ],
    "saml_provider_arns": ["arn:aws:iam::123456789012:saml-provider/corp"],
    "identity_pool_tags": {"team": "identity", "empty": ""},
}
RULE = {"Claim": "isAdmin", "MatchType": "Equals", "Value": "paid", "RoleARN": ROLE}
MAPPINGS = {
    "graph.facebook.com": {"Type": "Token", "AmbiguousRoleResolution": "Deny"},
    "cognito-idp.us-east-1.amazonaws.com/us-east-1_123456789:abc": {
        "Type": "Rules",
        "AmbiguousRoleResolution": "AuthenticatedRole",
        "RulesConfiguration": {"Rules": [RULE, {**RULE, "Claim": "ñandú€", "Extra": 1}]},
    },
}
MAPPINGS_OUT = json.loads(json.dumps(MAPPINGS))
del MAPPINGS_OUT["cognito-idp.us-east-1.amazonaws.com/us-east-1_123456789:abc"][
    "RulesConfiguration"
]["Rules"][1]["Extra"]

VALID: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "GetOpenIdTokenForDeveloperIdentity",
        TOKEN_BASE,
        {"identity_pool_id": POOL, "logins": {DEV: "user-123"}},
    ),
    (
        "GetOpenIdTokenForDeveloperIdentity",
        changed(
            TOKEN_BASE,
            IdentityId=IDENTITY,
            PrincipalTags={"department": "sales"},
            TokenDuration=86400,
            Unknown=[1, 2],
        ),
        {
            "identity_pool_id": POOL,
            "identity_id": IDENTITY,
            "logins": {DEV: "user-123"},
            "principal_tags": {"department": "sales"},
            "token_duration": 86400,
        },
    ),
    (
        "GetOpenIdTokenForDeveloperIdentity",
        changed(TOKEN_BASE, IdentityId=None, PrincipalTags=None, TokenDuration=None),
        {"identity_pool_id": POOL, "logins": {DEV: "user-123"}},
    ),
    (
        "LookupDeveloperIdentity",
        {"IdentityPoolId": POOL, "DeveloperUserIdentifier": "user-123", "MaxResults": 60},
        {"identity_pool_id": POOL, "developer_user_identifier": "user-123", "max_results": 60},
    ),
    (
        "LookupDeveloperIdentity",
        {"IdentityPoolId": POOL, "IdentityId": IDENTITY, "NextToken": "opaque=="},
        {"identity_pool_id": POOL, "identity_id": IDENTITY, "next_token": "opaque=="},
    ),
    (
        "MergeDeveloperIdentities",
        {
            "SourceUserIdentifier": "a",
            "DestinationUserIdentifier": "b",
            "DeveloperProviderName": DEV,
            "IdentityPoolId": POOL,
        },
        {
            "source_user_identifier": "a",
            "destination_user_identifier": "b",
            "developer_provider_name": DEV,
            "identity_pool_id": POOL,
        },
    ),
    (
        "UnlinkDeveloperIdentity",
        {
            "IdentityId": IDENTITY,
            "IdentityPoolId": POOL,
            "DeveloperProviderName": DEV,
            "DeveloperUserIdentifier": "user-123",
        },
        {
            "identity_id": IDENTITY,
            "identity_pool_id": POOL,
            "developer_provider_name": DEV,
            "developer_user_identifier": "user-123",
        },
    ),
    (
        "UnlinkIdentity",
        {"IdentityId": IDENTITY, "Logins": {"accounts.google.com": "t"}, "LoginsToRemove": []},
        {"identity_id": IDENTITY, "logins": {"accounts.google.com": "t"}, "logins_to_remove": []},
    ),
    ("DescribeIdentity", {"IdentityId": IDENTITY}, {"identity_id": IDENTITY}),
    (
        "ListIdentities",
        {"IdentityPoolId": POOL, "MaxResults": 1, "NextToken": "n", "HideDisabled": True},
        {"identity_pool_id": POOL, "max_results": 1, "next_token": "n", "hide_disabled": True},
    ),
    (
        "DeleteIdentities",
        {"IdentityIdsToDelete": [IDENTITY, POOL]},
        {"identity_ids_to_delete": [IDENTITY, POOL]},
    ),
    (
        "GetId",
        {"AccountId": "123456789012", "IdentityPoolId": POOL, "Logins": {}},
        {"account_id": "123456789012", "identity_pool_id": POOL, "logins": {}},
    ),
    ("GetId", {"IdentityPoolId": POOL}, {"identity_pool_id": POOL}),
    ("GetOpenIdToken", {"IdentityId": IDENTITY}, {"identity_id": IDENTITY}),
    (
        "GetCredentialsForIdentity",
        {"IdentityId": IDENTITY, "Logins": {"cognito-identity.amazonaws.com": "jwt"}},
        {"identity_id": IDENTITY, "logins": {"cognito-identity.amazonaws.com": "jwt"}},
    ),
    (
        "GetCredentialsForIdentity",
        {"IdentityId": IDENTITY, "CustomRoleArn": ROLE},
        {"identity_id": IDENTITY, "custom_role_arn": ROLE},
    ),
    (
        "CreateIdentityPool",
        POOL_BASE,
        {"identity_pool_name": "My pool", "allow_unauthenticated_identities": False},
    ),
    ("CreateIdentityPool", FULL_POOL_IN, FULL_POOL_OUT),
    (
        "UpdateIdentityPool",
        {"IdentityPoolId": POOL, **FULL_POOL_IN},
        {"identity_pool_id": POOL, **FULL_POOL_OUT},
    ),
    ("DescribeIdentityPool", {"IdentityPoolId": POOL}, {"identity_pool_id": POOL}),
    ("ListIdentityPools", {"MaxResults": 60}, {"max_results": 60}),
    ("DeleteIdentityPool", {"IdentityPoolId": POOL}, {"identity_pool_id": POOL}),
    (
        "SetIdentityPoolRoles",
        {**ROLES_BASE, "Roles": {"authenticated": ROLE, "unauthenticated": ROLE}},
        {"identity_pool_id": POOL, "roles": {"authenticated": ROLE, "unauthenticated": ROLE}},
    ),
    (
        "SetIdentityPoolRoles",
        {**ROLES_BASE, "RoleMappings": MAPPINGS},
        {"identity_pool_id": POOL, "roles": {"authenticated": ROLE}, "role_mappings": MAPPINGS_OUT},
    ),
    ("GetIdentityPoolRoles", {"IdentityPoolId": POOL}, {"identity_pool_id": POOL}),
    (
        "SetPrincipalTagAttributeMap",
        {
            "IdentityPoolId": POOL,
            "IdentityProviderName": DEV,
            "UseDefaults": False,
            "PrincipalTags": {"email": "email"},
        },
        {
            "identity_pool_id": POOL,
            "identity_provider_name": DEV,
            "use_defaults": False,
            "principal_tags": {"email": "email"},
        },
    ),
    (
        "GetPrincipalTagAttributeMap",
        {"IdentityPoolId": POOL, "IdentityProviderName": DEV},
        {"identity_pool_id": POOL, "identity_provider_name": DEV},
    ),
    (
        "TagResource",
        {"ResourceArn": POOL_ARN, "Tags": {"a": "b"}},
        {"resource_arn": POOL_ARN, "tags": {"a": "b"}},
    ),
    (
        "UntagResource",
        {"ResourceArn": POOL_ARN, "TagKeys": ["a", "b"]},
        {"resource_arn": POOL_ARN, "tag_keys": ["a", "b"]},
    ),
    ("ListTagsForResource", {"ResourceArn": POOL_ARN}, {"resource_arn": POOL_ARN}),
]


@pytest.mark.parametrize(("operation", "payload", "expected"), VALID)
def test_valid_body_loads_to_snake_case(
    operation: str, payload: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert load_request(operation, encode(payload)) == expected


def test_every_operation_has_a_valid_case() -> None:
    assert {operation for operation, _, _ in VALID} == OPERATIONS
    assert len(OPERATIONS) == 23


def test_operations_are_the_service_models() -> None:
    model = botocore.session.get_session().get_service_model("cognito-identity")
    assert set(model.operation_names) == OPERATIONS
    assert validation.OPERATIONS is OPERATIONS


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("IdentityPoolId", "identity_pool_id"),
        ("TokenDuration", "token_duration"),
        ("OpenIdConnectProviderARNs", "open_id_connect_provider_arns"),
        ("SamlProviderARNs", "saml_provider_arns"),
        ("IdentityIdsToDelete", "identity_ids_to_delete"),
        ("ResourceArn", "resource_arn"),
        ("CustomRoleArn", "custom_role_arn"),
        ("AllowUnauthenticatedIdentities", "allow_unauthenticated_identities"),
        ("LoginsToRemove", "logins_to_remove"),
    ],
)
def test_snake_case(name: str, key: str) -> None:
    assert snake_case(name) == key


def test_empty_body_is_an_empty_object() -> None:
    assert fault("DescribeIdentity", b"") == one("null", "identityId", NOT_NULL)


# --- constraint violations, in AWS's words ---------------------------------------------------
LONG_NAME = "x" * 299 + "!"
TAGS_51 = {f"k{i:02}": "v" for i in range(51)}
TAGS_51_SHOWN = ("{" + ", ".join(f"k{i:02}=v" for i in range(51)) + "}")[:256] + "..."
IDS_61 = [IDENTITY] * 61
IDS_61_SHOWN = ("[" + ", ".join(IDS_61) + "]")[:256] + "..."
LOGIN_VALUE = "[Member must have length less than or equal to 50000, " + MIN_LEN.format(1) + "]"
LOGIN_KEY = "[Member must have length less than or equal to 128, " + MIN_LEN.format(1) + "]"
TOKEN_OP = "GetOpenIdTokenForDeveloperIdentity"

VIOLATIONS: list[tuple[str, dict[str, Any], str]] = [
    (
        TOKEN_OP,
        changed(TOKEN_BASE, TokenDuration=0),
        one("'0'", "tokenDuration", MIN_VALUE.format(1)),
    ),
    (
        TOKEN_OP,
        changed(TOKEN_BASE, TokenDuration=86401),
        one("'86401'", "tokenDuration", VALUE.format(86400)),
    ),
    (
        TOKEN_OP,
        changed(TOKEN_BASE, TokenDuration=2**40),
        one(f"'{2**40}'", "tokenDuration", VALUE.format(86400)),
    ),
    (
        TOKEN_OP,
        changed(TOKEN_BASE, Logins={f"p{i}": "v" for i in range(11)}),
        one(None, "logins", LEN.format(10)),
    ),
    (
        TOKEN_OP,
        changed(TOKEN_BASE, Logins={"k" * 129: "user"}),
        one(None, "logins", f"Map keys must satisfy constraint: {LOGIN_KEY}"),
    ),
    (
        TOKEN_OP,
        changed(TOKEN_BASE, Logins={DEV: ""}),
        one(None, "logins", f"Map value must satisfy constraint: {LOGIN_VALUE}"),
    ),
    (
        TOKEN_OP,
        changed(TOKEN_BASE, Logins={DEV: None}),
        one(None, "logins", f"Map value must satisfy constraint: [{NOT_NULL}]"),
    ),
    (
        TOKEN_OP,
        changed(TOKEN_BASE, IdentityPoolId="us-east-1"),
        one("'us-east-1'", "identityPoolId", ID_PATTERN),
    ),
    (
        TOKEN_OP,
        changed(TOKEN_BASE, IdentityPoolId="eu:ABCDEF"),
        one("'eu:ABCDEF'", "identityPoolId", ID_PATTERN),
    ),
    (
        TOKEN_OP,
        changed(TOKEN_BASE, IdentityPoolId=POOL + "\n"),
        one(f"'{POOL}\n'", "identityPoolId", ID_PATTERN),
    ),
    (
        TOKEN_OP,
        changed(TOKEN_BASE, IdentityPoolId="é:abc"),
        one("'é:abc'", "identityPoolId", ID_PATTERN),
    ),
    (
        TOKEN_OP,
        changed(TOKEN_BASE, IdentityId="us-east-1:" + "a" * 46),
        one(f"'us-east-1:{'a' * 46}'", "identityId", LEN.format(55)),
    ),
    (TOKEN_OP, {"Logins": {DEV: "u"}}, one("null", "identityPoolId", NOT_NULL)),
    (TOKEN_OP, {"IdentityPoolId": POOL, "Logins": None}, one("null", "logins", NOT_NULL)),
    (
        TOKEN_OP,
        changed(TOKEN_BASE, PrincipalTags=TAGS_51),
        one(f"'{TAGS_51_SHOWN}'", "principalTags", LEN.format(50)),
    ),
    (
        TOKEN_OP,
        changed(TOKEN_BASE, PrincipalTags={"k": ""}),
        one(
            "'{k=}'",
            "principalTags",
            f"Map value must satisfy constraint: [{LEN.format(256)}, {MIN_LEN.format(1)}]",
        ),
    ),
    ("ListIdentityPools", {"MaxResults": 0}, one("'0'", "maxResults", MIN_VALUE.format(1))),
    ("ListIdentityPools", {"MaxResults": 61}, one("'61'", "maxResults", VALUE.format(60))),
    ("ListIdentityPools", {}, one("null", "maxResults", NOT_NULL)),
    (
        "ListIdentityPools",
        {"MaxResults": 1, "NextToken": "a b"},
        one(None, "nextToken", PATTERN.format(r"[\S]+")),
    ),
    (
        "ListIdentities",
        {"IdentityPoolId": POOL, "MaxResults": 61},
        one("'61'", "maxResults", VALUE.format(60)),
    ),
    (
        "LookupDeveloperIdentity",
        {"IdentityPoolId": POOL, "MaxResults": 0},
        one("'0'", "maxResults", MIN_VALUE.format(1)),
    ),
    (
        "LookupDeveloperIdentity",
        {"IdentityPoolId": POOL, "DeveloperUserIdentifier": "u" * 1025},
        one(None, "developerUserIdentifier", LEN.format(1024)),
    ),
    (
        "DeleteIdentities",
        {"IdentityIdsToDelete": []},
        one("'[]'", "identityIdsToDelete", MIN_LEN.format(1)),
    ),
    (
        "DeleteIdentities",
        {"IdentityIdsToDelete": IDS_61},
        one(f"'{IDS_61_SHOWN}'", "identityIdsToDelete", LEN.format(60)),
    ),
    (
        "DeleteIdentities",
        {"IdentityIdsToDelete": [IDENTITY, "bad id"]},
        one("'bad id'", "identityIdsToDelete.2.member", ID_PATTERN),
    ),
    (
        "DeleteIdentities",
        {"IdentityIdsToDelete": [None]},
        one("null", "identityIdsToDelete.1.member", NOT_NULL),
    ),
    ("DeleteIdentities", {}, one("null", "identityIdsToDelete", NOT_NULL)),
    (
        "MergeDeveloperIdentities",
        {
            "SourceUserIdentifier": "a",
            "DestinationUserIdentifier": "b",
            "DeveloperProviderName": "bad name",
            "IdentityPoolId": POOL,
        },
        one("'bad name'", "developerProviderName", PATTERN.format(r"[\w._-]+")),
    ),
    (
        "GetId",
        {"IdentityPoolId": POOL, "AccountId": "12ab"},
        one("'12ab'", "accountId", PATTERN.format(r"\d+")),
    ),
    (
        "GetCredentialsForIdentity",
        {"IdentityId": IDENTITY, "CustomRoleArn": "arn:short"},
        one("'arn:short'", "customRoleArn", MIN_LEN.format(20)),
    ),
    (
        "UnlinkIdentity",
        {"IdentityId": IDENTITY, "Logins": {}, "LoginsToRemove": [""]},
        one("''", "loginsToRemove.1.member", MIN_LEN.format(1)),
    ),
    (
        "CreateIdentityPool",
        changed(POOL_BASE, IdentityPoolName="bad!"),
        one("'bad!'", "identityPoolName", PATTERN.format(r"[\w\s+=,.@-]+")),
    ),
    (
        "CreateIdentityPool",
        changed(POOL_BASE, IdentityPoolName="Pool é"),
        one("'Pool é'", "identityPoolName", PATTERN.format(r"[\w\s+=,.@-]+")),
    ),
    (
        "CreateIdentityPool",
        changed(POOL_BASE, IdentityPoolName=LONG_NAME),
        "2 validation errors detected: "
        f"Value '{LONG_NAME[:256]}...' at 'identityPoolName' failed to satisfy constraint: "
        f"{LEN.format(128)}; "
        f"Value '{LONG_NAME[:256]}...' at 'identityPoolName' failed to satisfy constraint: "
        + PATTERN.format(r"[\w\s+=,.@-]+"),
    ),
    (
        "CreateIdentityPool",
        {"IdentityPoolName": "p"},
        one("null", "allowUnauthenticatedIdentities", NOT_NULL),
    ),
    (
        "CreateIdentityPool",
        changed(POOL_BASE, SupportedLoginProviders={"graph.facebook.com": "a b"}),
        one(
            "'{graph.facebook.com=a b}'",
            "supportedLoginProviders",
            f"Map value must satisfy constraint: [{LEN.format(128)}, {MIN_LEN.format(1)}, "
            + PATTERN.format(r"[\w.;_/-]+")
            + "]",
        ),
    ),
    (
        "CreateIdentityPool",
        changed(POOL_BASE, OpenIdConnectProviderARNs=[OIDC_ARN, "short"]),
        one("'short'", "openIdConnectProviderARNs.2.member", MIN_LEN.format(20)),
    ),
    (
        "CreateIdentityPool",
        changed(POOL_BASE, CognitoIdentityProviders=[{"ClientId": "a-b"}]),
        one("'a-b'", "cognitoIdentityProviders.1.member.clientId", PATTERN.format(r"[\w_]+")),
    ),
    (
        "CreateIdentityPool",
        changed(POOL_BASE, IdentityPoolTags={"k": "v" * 257}),
        one(
            f"'{{k={'v' * 253}...'",
            "identityPoolTags",
            f"Map value must satisfy constraint: [{LEN.format(256)}, {MIN_LEN.format(0)}]",
        ),
    ),
    (
        "UpdateIdentityPool",
        POOL_BASE,
        one("null", "identityPoolId", NOT_NULL),
    ),
    (
        "SetIdentityPoolRoles",
        changed(ROLES_BASE, Roles={"admin": ROLE}),
        one(
            f"'{{admin={ROLE}}}'",
            "roles",
            f"Map keys must satisfy constraint: [{LEN.format(128)}, {MIN_LEN.format(1)}, "
            + PATTERN.format("(un)?authenticated")
            + "]",
        ),
    ),
    (
        "SetIdentityPoolRoles",
        changed(ROLES_BASE, Roles={"authenticated": ROLE, "unauthenticated": ROLE, "x": ROLE}),
        "2 validation errors detected: "
        f"Value '{{authenticated={ROLE}, unauthenticated={ROLE}, x={ROLE}}}' at 'roles' "
        f"failed to satisfy constraint: {LEN.format(2)}; "
        f"Value '{{authenticated={ROLE}, unauthenticated={ROLE}, x={ROLE}}}' at 'roles' "
        "failed to satisfy constraint: Map keys must satisfy constraint: "
        f"[{LEN.format(128)}, {MIN_LEN.format(1)}, " + PATTERN.format("(un)?authenticated") + "]",
    ),
    (
        "SetIdentityPoolRoles",
        role_mapping(Type="Groups"),
        one(
            "'Groups'",
            "roleMappings.graph.facebook.com.member.type",
            "Member must satisfy enum value set: [Token, Rules]",
        ),
    ),
    (
        "SetIdentityPoolRoles",
        role_mapping(Type="Token", AmbiguousRoleResolution="Allow"),
        one(
            "'Allow'",
            "roleMappings.graph.facebook.com.member.ambiguousRoleResolution",
            "Member must satisfy enum value set: [AuthenticatedRole, Deny]",
        ),
    ),
    (
        "SetIdentityPoolRoles",
        role_mapping(AmbiguousRoleResolution="Deny"),
        one("null", "roleMappings.graph.facebook.com.member.type", NOT_NULL),
    ),
    (
        "SetIdentityPoolRoles",
        changed(ROLES_BASE, RoleMappings={"graph.facebook.com": None}),
        one("null", "roleMappings.graph.facebook.com.member", NOT_NULL),
    ),
    (
        "SetIdentityPoolRoles",
        changed(ROLES_BASE, RoleMappings={f"p{i}": {"Type": "Token"} for i in range(11)}),
        one(None, "roleMappings", LEN.format(10)),
    ),
    (
        "SetIdentityPoolRoles",
        role_mapping(Type="Rules", RulesConfiguration={"Rules": []}),
        one(
            "'[]'",
            "roleMappings.graph.facebook.com.member.rulesConfiguration.rules",
            MIN_LEN.format(1),
        ),
    ),
    (
        "SetIdentityPoolRoles",
        role_mapping(Type="Rules", RulesConfiguration={}),
        one(
            "null",
            "roleMappings.graph.facebook.com.member.rulesConfiguration.rules",
            NOT_NULL,
        ),
    ),
    (
        "SetIdentityPoolRoles",
        rule(Claim="is admin"),
        one(
            "'is admin'",
            "roleMappings.graph.facebook.com.member.rulesConfiguration.rules.1.member.claim",
            PATTERN.format(r"[\p{L}\p{M}\p{S}\p{N}\p{P}]+"),
        ),
    ),
    (
        "SetIdentityPoolRoles",
        rule(Claim="tab\there"),
        one(
            "'tab\there'",
            "roleMappings.graph.facebook.com.member.rulesConfiguration.rules.1.member.claim",
            PATTERN.format(r"[\p{L}\p{M}\p{S}\p{N}\p{P}]+"),
        ),
    ),
    (
        "SetIdentityPoolRoles",
        rule(MatchType="Like"),
        one(
            "'Like'",
            "roleMappings.graph.facebook.com.member.rulesConfiguration.rules.1.member.matchType",
            "Member must satisfy enum value set: [Equals, Contains, StartsWith, NotEqual]",
        ),
    ),
    (
        "SetIdentityPoolRoles",
        rule(RoleARN=None),
        one(
            "null",
            "roleMappings.graph.facebook.com.member.rulesConfiguration.rules.1.member.roleARN",
            NOT_NULL,
        ),
    ),
    (
        "SetPrincipalTagAttributeMap",
        {"IdentityPoolId": POOL, "IdentityProviderName": ""},
        one("''", "identityProviderName", MIN_LEN.format(1)),
    ),
    (
        "TagResource",
        {"ResourceArn": POOL_ARN, "Tags": {"": "v"}},
        one(
            "'{=v}'",
            "tags",
            f"Map keys must satisfy constraint: [{LEN.format(128)}, {MIN_LEN.format(1)}]",
        ),
    ),
    (
        "UntagResource",
        {"ResourceArn": POOL_ARN, "TagKeys": ["ok", "k" * 129]},
        one(f"'{'k' * 129}'", "tagKeys.2.member", LEN.format(128)),
    ),
    ("ListTagsForResource", {"ResourceArn": None}, one("null", "resourceArn", NOT_NULL)),
]


@pytest.mark.parametrize(("operation", "payload", "message"), VIOLATIONS)
def test_constraint_violation_is_worded_as_aws(
    operation: str, payload: dict[str, Any], message: str
) -> None:
    assert fault(operation, payload) == message


def test_all_violations_are_reported_together_in_member_order() -> None:
    payload = {"Logins": {DEV: "u"}, "TokenDuration": 99999, "IdentityId": "nope"}
    assert fault(TOKEN_OP, payload) == (
        "3 validation errors detected: "
        "Value null at 'identityPoolId' failed to satisfy constraint: Member must not be null; "
        f"Value 'nope' at 'identityId' failed to satisfy constraint: {ID_PATTERN}; "
        "Value '99999' at 'tokenDuration' failed to satisfy constraint: "
        "Member must have value less than or equal to 86400"
    )


def test_two_violations_of_one_value() -> None:
    assert fault("DescribeIdentityPool", {"IdentityPoolId": ""}) == (
        "2 validation errors detected: "
        f"Value '' at 'identityPoolId' failed to satisfy constraint: {MIN_LEN.format(1)}; "
        f"Value '' at 'identityPoolId' failed to satisfy constraint: {ID_PATTERN}"
    )


@pytest.mark.parametrize(
    ("operation", "payload", "secret"),
    [
        (TOKEN_OP, changed(TOKEN_BASE, Logins={DEV: "s" * 50001}), "s" * 50001),
        (TOKEN_OP, changed(TOKEN_BASE, Logins={DEV: "secret", "": "x"}), "secret"),
        (TOKEN_OP, changed(TOKEN_BASE, Logins={f"p{i}": f"tok{i}en" for i in range(11)}), "tok3en"),
        ("GetOpenIdToken", {"IdentityId": IDENTITY, "Logins": {"k": ""}, "X": 1}, "k="),
        (
            "UnlinkDeveloperIdentity",
            {
                "IdentityId": IDENTITY,
                "IdentityPoolId": POOL,
                "DeveloperProviderName": DEV,
                "DeveloperUserIdentifier": "who" * 400,
            },
            "whowho",
        ),
        (
            "ListIdentities",
            {"IdentityPoolId": POOL, "MaxResults": 5, "NextToken": "pa ge"},
            "pa ge",
        ),
    ],
)
def test_sensitive_values_are_never_echoed(
    operation: str, payload: dict[str, Any], secret: str
) -> None:
    message = fault(operation, payload)
    assert secret not in message
    assert "Value at '" in message


# --- serialization errors -------------------------------------------------------------------
SERIALIZATION: list[tuple[str, bytes, str]] = [
    ("ListIdentityPools", b"[]", "Request body must be a JSON object, not array"),
    ("ListIdentityPools", b'"x"', "Request body must be a JSON object, not string"),
    ("ListIdentityPools", b"null", "Request body must be a JSON object, not null"),
    ("ListIdentityPools", b"42", "Request body must be a JSON object, not integer"),
    (
        "ListIdentityPools",
        b'{"MaxResults": NaN}',
        "Request body is not valid JSON: NaN is not a JSON number",
    ),
    (
        "ListIdentityPools",
        b"Infinity",
        "Request body is not valid JSON: Infinity is not a JSON number",
    ),
    (
        "ListIdentityPools",
        b"[-Infinity]",
        "Request body is not valid JSON: -Infinity is not a JSON number",
    ),
    (
        "ListIdentityPools",
        b"\xff\xfe{}",
        "Request body is not valid UTF-8: invalid byte at offset 0",
    ),
    ("ListIdentityPools", b"[" * 100_000, "Request body is not valid JSON: nested too deeply"),
    (
        "ListIdentityPools",
        b'{"MaxResults": ' + b"9" * 5000 + b"}",
        "Request body is not valid JSON: number too long",
    ),
    (
        "ListIdentityPools",
        b'{"MaxResults": "60"}',
        "Value for 'MaxResults' must be an integer, not string",
    ),
    (
        "ListIdentityPools",
        b'{"MaxResults": 2147483648}',
        "Value for 'MaxResults' does not fit in 32 bits",
    ),
    (
        TOKEN_OP,
        b'{"TokenDuration": "900"}',
        "Value for 'TokenDuration' must be an integer, not string",
    ),
    (
        TOKEN_OP,
        b'{"TokenDuration": true}',
        "Value for 'TokenDuration' must be an integer, not boolean",
    ),
    (
        TOKEN_OP,
        b'{"TokenDuration": 1.5}',
        "Value for 'TokenDuration' must be an integer, not number",
    ),
    (
        TOKEN_OP,
        b'{"TokenDuration": 1.0}',
        "Value for 'TokenDuration' must be an integer, not number",
    ),
    (
        TOKEN_OP,
        b'{"TokenDuration": 1e3}',
        "Value for 'TokenDuration' must be an integer, not number",
    ),
    (
        TOKEN_OP,
        b'{"TokenDuration": 9223372036854775808}',
        "Value for 'TokenDuration' does not fit in 64 bits",
    ),
    (TOKEN_OP, b'{"Logins": ["a"]}', "Value for 'Logins' must be an object, not array"),
    (TOKEN_OP, b'{"Logins": "a"}', "Value for 'Logins' must be an object, not string"),
    (
        TOKEN_OP,
        b'{"Logins": {"dev": 5}}',
        "Value for 'Logins[\"dev\"]' must be a string, not integer",
    ),
    (
        TOKEN_OP,
        b'{"Logins": {"dev": {}}}',
        "Value for 'Logins[\"dev\"]' must be a string, not object",
    ),
    (
        TOKEN_OP,
        b'{"IdentityPoolId": {"a": 1}}',
        "Value for 'IdentityPoolId' must be a string, not object",
    ),
    (
        TOKEN_OP,
        b'{"IdentityPoolId": ["a"]}',
        "Value for 'IdentityPoolId' must be a string, not array",
    ),
    (TOKEN_OP, b'{"IdentityId": "\\ud800"}', "Value for 'IdentityId' is not valid Unicode"),
    (
        TOKEN_OP,
        b'{"PrincipalTags": {"\\udfff": "v"}}',
        "Value for 'PrincipalTags[\"\\udfff\"]' is not valid Unicode",
    ),
    # A wrong type anywhere wins over constraint violations elsewhere, as in AWS.
    (
        TOKEN_OP,
        b'{"IdentityPoolId": "bad", "TokenDuration": "x"}',
        "Value for 'TokenDuration' must be an integer, not string",
    ),
    (
        "CreateIdentityPool",
        b'{"AllowUnauthenticatedIdentities": "true"}',
        "Value for 'AllowUnauthenticatedIdentities' must be a boolean, not string",
    ),
    (
        "CreateIdentityPool",
        b'{"AllowUnauthenticatedIdentities": 1}',
        "Value for 'AllowUnauthenticatedIdentities' must be a boolean, not integer",
    ),
    (
        "CreateIdentityPool",
        b'{"OpenIdConnectProviderARNs": {}}',
        "Value for 'OpenIdConnectProviderARNs' must be an array, not object",
    ),
    (
        "CreateIdentityPool",
        b'{"CognitoIdentityProviders": ["x"]}',
        "Value for 'CognitoIdentityProviders[0]' must be an object, not string",
    ),
    (
        "CreateIdentityPool",
        b'{"CognitoIdentityProviders": [{"ServerSideTokenCheck": "yes"}]}',
        "Value for 'CognitoIdentityProviders[0].ServerSideTokenCheck' "
        "must be a boolean, not string",
    ),
    (
        "DeleteIdentities",
        b'{"IdentityIdsToDelete": ["a", 7]}',
        "Value for 'IdentityIdsToDelete[1]' must be a string, not integer",
    ),
    (
        "SetIdentityPoolRoles",
        b'{"RoleMappings": {"p": []}}',
        "Value for 'RoleMappings[\"p\"]' must be an object, not array",
    ),
    (
        "SetIdentityPoolRoles",
        b'{"RoleMappings": {"p": {"RulesConfiguration": {"Rules": [{"Claim": 1}]}}}}',
        "Value for 'RoleMappings[\"p\"].RulesConfiguration.Rules[0].Claim' "
        "must be a string, not integer",
    ),
]


@pytest.mark.parametrize(("operation", "body", "message"), SERIALIZATION)
def test_serialization_error(operation: str, body: bytes, message: str) -> None:
    with pytest.raises(SerializationException) as info:
        load_request(operation, body)
    assert info.value.message == message


@pytest.mark.parametrize("body", [b"{", b"{'a': 1}", b" ", b"{}x", b"\xef\xbb\xbf{}"])
def test_malformed_json(body: bytes) -> None:
    with pytest.raises(SerializationException, match=r"^Request body is not valid JSON: "):
        load_request("ListIdentityPools", body)


def test_duplicate_keys_last_wins() -> None:
    body = b'{"MaxResults": 0, "MaxResults": 5}'
    assert load_request("ListIdentityPools", body) == {"max_results": 5}


# --- the schemas follow botocore's model -------------------------------------------------------
def model_phrases(shape: Any) -> list[str]:
    kind = "value" if shape.type_name in ("integer", "long") else "length"
    meta = shape.metadata
    phrases = []
    if "max" in meta:
        phrases.append(f"Member must have {kind} less than or equal to {meta['max']}")
    if "min" in meta:
        phrases.append(f"Member must have {kind} greater than or equal to {meta['min']}")
    if "pattern" in meta:
        phrases.append(PATTERN.format(meta["pattern"]))
    enum = getattr(shape, "enum", None)
    if enum:
        phrases.append(f"Member must satisfy enum value set: [{', '.join(enum)}]")
    return phrases


def assert_follows(field: StrictField, shape: Any, where: str) -> None:
    kind = {"integer": "StrictInteger", "long": "StrictInteger"}.get(shape.type_name)
    expected = (
        kind
        or {
            "string": "StrictString",
            "boolean": "StrictBoolean",
            "list": "StrictList",
            "map": "StrictMap",
            "structure": "StrictStruct",
        }[shape.type_name]
    )
    assert type(field).__name__ == expected, where
    assert field.phrases() == model_phrases(shape), where
    if shape.metadata.get("sensitive"):
        assert field.sensitive, where
    if shape.type_name in ("integer", "long"):
        assert field.bits == (32 if shape.type_name == "integer" else 64), where
    elif shape.type_name == "list":
        assert_follows(field.member, shape.member, f"{where}.member")
    elif shape.type_name == "map":
        assert_follows(field.keys, shape.key, f"{where}.key")
        assert_follows(field.values, shape.value, f"{where}.value")
        keys, values = field.keys, field.values
        assert field.sensitive == (keys.sensitive or values.sensitive), where
    elif shape.type_name == "structure":
        members = field.members
        assert list(members) == list(shape.members), where
        for name, member in shape.members.items():
            assert members[name].required == (name in shape.required_members), f"{where}.{name}"
            assert_follows(members[name], member, f"{where}.{name}")


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_schema_follows_the_service_model(operation: str) -> None:
    model = botocore.session.get_session().get_service_model("cognito-identity")
    shape = model.operation_model(operation).input_shape
    schema = SCHEMAS[operation]
    assert list(schema.fields) == list(shape.members)
    for name, member in shape.members.items():
        field = schema.fields[name]
        assert isinstance(field, StrictField)
        assert field.required == (name in shape.required_members), name
        assert field.attribute == snake_case(name)
        assert_follows(field, member, name)


def test_exported_limits() -> None:
    assert schemas.MAX_TOKEN_DURATION == 86400
    assert schemas.MIN_TOKEN_DURATION == 1
    assert schemas.MAX_LOGINS == 10
    assert schemas.MAX_RESULTS == 60
    assert schemas.MAX_PRINCIPAL_TAGS == 50
    assert schemas.IDENTITY_ID_PATTERN == schemas.POOL_ID_PATTERN == r"[\w-]+:[0-9a-f-]+"


@pytest.mark.parametrize(
    ("claim", "valid"),
    [
        ("isAdmin", True),
        ("custom:paid", True),
        ("ñandú€→", True),  # letters, symbols: Unicode classes, not just ASCII
        ("日本", True),
        ("a b", False),
        ("a\u00a0b", False),  # a separator (Zs)
        ("a\u200bb", False),  # a format character (Cf)
        ("a\x07", False),
    ],
)
def test_claim_name_unicode_classes(claim: str, valid: bool) -> None:
    assert schemas.is_claim_name(claim) is valid


# --- properties --------------------------------------------------------------------------------
SECRET = "s3cr3t~"
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)
secrets = st.text(max_size=40).map(lambda text: SECRET + text) | st.just(SECRET + "x" * 50000)
login_maps = st.dictionaries(st.text(max_size=140), secrets | json_values, max_size=12)
strings = st.sampled_from([POOL, IDENTITY, "", "bad id", "x" * 60]) | st.text(max_size=60)
integers = st.integers(min_value=-(2**70), max_value=2**70)

TOKEN_MEMBERS = {
    "IdentityPoolId": strings | json_values,
    "IdentityId": strings | json_values,
    "Logins": login_maps | json_values,
    "PrincipalTags": st.dictionaries(st.text(max_size=140), strings, max_size=52) | json_values,
    "TokenDuration": integers | json_values,
}
POOL_MEMBERS = {
    "IdentityPoolName": strings | json_values,
    "AllowUnauthenticatedIdentities": st.booleans() | json_values,
    "SupportedLoginProviders": st.dictionaries(st.text(), strings, max_size=11) | json_values,
    "DeveloperProviderName": strings | json_values,
    "OpenIdConnectProviderARNs": st.lists(strings | json_values, max_size=3) | json_values,
    "CognitoIdentityProviders": st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "ProviderName": strings | json_values,
                "ClientId": strings | json_values,
                "ServerSideTokenCheck": st.booleans() | json_values,
            },
        ),
        max_size=3,
    )
    | json_values,
    "IdentityPoolTags": st.dictionaries(st.text(max_size=130), strings, max_size=3) | json_values,
}


def secrets_in(payload: Any) -> list[str]:
    logins = payload.get("Logins") if isinstance(payload, dict) else None
    if not isinstance(logins, dict):
        return []
    return [v for v in logins.values() if isinstance(v, str) and v.startswith(SECRET)]


def check_total(operation: str, payload: Any, body: bytes) -> None:
    try:
        result = load_request(operation, body)
    except (SerializationException, ValidationException) as err:
        for secret in secrets_in(payload):
            assert secret not in err.message
            assert secret[: len(SECRET) + 1] not in err.message
    else:
        assert isinstance(result, dict)
        assert None not in result.values()


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([TOKEN_OP, "CreateIdentityPool"]),
    json_values
    | st.fixed_dictionaries({}, optional=TOKEN_MEMBERS)
    | st.fixed_dictionaries({}, optional=POOL_MEMBERS),
)
@pytest.mark.slow
def test_any_json_body_loads_or_fails_cleanly(operation: str, payload: Any) -> None:
    check_total(operation, payload, encode(payload))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_load_or_fail_cleanly(body: bytes) -> None:
    check_total(TOKEN_OP, None, body)
