"""Input shapes of Amazon Cognito Identity, one marshmallow schema per operation.

Why: the contract (section 1) validates every request at the edge, so the core only ever
receives clean values. Every constraint below is botocore's service model
``cognito-identity/2014-06-30/service-2.json`` (tabulated in ``constraints.md``), and the
table at the bottom reads like that document: one entry per operation, members in model
order. The strict fields are ``broker.awsjson.fields``; AWS's wording is
``broker.awsjson.validation``.

Top-level members load under snake_case keys (``OpenIdConnectProviderARNs`` ->
``open_id_connect_provider_arns``); nested structures (CognitoIdentityProvider,
RoleMapping, RulesConfiguration, MappingRule) stay plain dicts with their AWS member names,
because they are stored and echoed back verbatim. The patterns and limits are
``config.aws_model``, re-exported here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import partial
from types import MappingProxyType
from typing import Any, Final

from marshmallow import EXCLUDE, Schema, fields

from broker.awsjson.fields import (
    StrictBoolean,
    StrictInteger,
    StrictList,
    StrictMap,
    StrictString,
    StrictStruct,
)
from config.aws_model import (
    ACCOUNT_ID_PATTERN,
    AMBIGUOUS_ROLE_RESOLUTIONS,
    CLAIM_PATTERN,
    COGNITO_CLIENT_ID_PATTERN,
    COGNITO_PROVIDER_NAME_PATTERN,
    DEVELOPER_PROVIDER_NAME_PATTERN,
    IDENTITY_ID_PATTERN,
    MAPPING_RULE_MATCH_TYPES,
    MAX_ACCOUNT_ID_LENGTH,
    MAX_ARN_LENGTH,
    MAX_CLAIM_LENGTH,
    MAX_CLAIM_VALUE_LENGTH,
    MAX_COGNITO_PROVIDER_LENGTH,
    MAX_DEVELOPER_USER_IDENTIFIER_LENGTH,
    MAX_ID_LENGTH,
    MAX_IDENTITIES_TO_DELETE,
    MAX_LOGIN_VALUE_LENGTH,
    MAX_LOGINS,
    MAX_MAPPING_RULES,
    MAX_NEXT_TOKEN_LENGTH,
    MAX_POOL_NAME_LENGTH,
    MAX_PRINCIPAL_TAGS,
    MAX_PROVIDER_ID_LENGTH,
    MAX_PROVIDER_NAME_LENGTH,
    MAX_RESULTS,
    MAX_ROLE_MAPPINGS,
    MAX_ROLE_TYPE_LENGTH,
    MAX_ROLES,
    MAX_SUPPORTED_LOGIN_PROVIDERS,
    MAX_TAG_KEY_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    MAX_TOKEN_DURATION,
    MIN_ARN_LENGTH,
    MIN_RESULTS,
    MIN_TOKEN_DURATION,
    NEXT_TOKEN_PATTERN,
    POOL_ID_PATTERN,
    POOL_NAME_PATTERN,
    PROVIDER_ID_PATTERN,
    ROLE_MAPPING_TYPES,
    ROLE_TYPE_PATTERN,
)

# Smithy's integer widths.
INT32_BITS: Final = 32  # Smithy "integer"
INT64_BITS: Final = 64  # Smithy "long"


def is_claim_name(value: str) -> bool:
    """Java's ``[\\p{L}\\p{M}\\p{S}\\p{N}\\p{P}]+``, which ``re`` cannot express.

    Checked by Unicode general category (letters, marks, symbols, numbers, punctuation: no
    separators, whitespace, controls or unassigned code points) rather than approximated;
    Python's Unicode tables may differ from the JVM's for the newest code points.
    """
    return all(unicodedata.category(char)[0] in "LMSNP" for char in value)


_WORD: Final = re.compile(r"[A-Z]+s(?![a-z])|[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def snake_case(name: str) -> str:
    """AWS member name -> Python key: ``OpenIdConnectProviderARNs`` -> ``..._arns``."""
    return "_".join(word.lower() for word in _WORD.findall(name))


# --- builders: constraints read as in constraints.md -------------------------------------
Members = dict[str, fields.Field[Any]]

string = StrictString  # string(min=1, max=55, pattern=..., required=True, sensitive=False)
boolean = StrictBoolean
list_of = StrictList  # list_of(member, min=1, max=60, required=True)
map_of = StrictMap  # map_of(keys, values, max=10, required=True)
integer = partial(StrictInteger, bits=INT32_BITS)  # integer(min=1, max=60)
long = partial(StrictInteger, bits=INT64_BITS)


structure = StrictStruct  # structure({"Type": string(enum=..., required=True), ...})


class OperationSchema(Schema):
    """A request's top level: unknown members ignored (as AWS does), keys in snake_case."""

    class Meta:
        unknown = EXCLUDE

    def on_bind_field(self, field_name: str, field_obj: fields.Field[Any]) -> None:
        field_obj.attribute = snake_case(field_name)


# --- the model's shared shapes -----------------------------------------------------------
def pool_id(*, required: bool = False) -> StrictString:
    return string(min=1, max=MAX_ID_LENGTH, pattern=POOL_ID_PATTERN, required=required)


def identity_id(*, required: bool = False) -> StrictString:
    return string(min=1, max=MAX_ID_LENGTH, pattern=IDENTITY_ID_PATTERN, required=required)


def provider_name(*, required: bool = False) -> StrictString:  # IdentityProviderName
    return string(min=1, max=MAX_PROVIDER_NAME_LENGTH, required=required)


def developer_provider_name(*, required: bool = False) -> StrictString:
    return string(
        min=1,
        max=MAX_PROVIDER_NAME_LENGTH,
        pattern=DEVELOPER_PROVIDER_NAME_PATTERN,
        required=required,
    )


def developer_user_identifier(*, required: bool = False) -> StrictString:
    # Sensitive by our decision: it is the value of a developer login (contract section 1).
    return string(
        min=1, max=MAX_DEVELOPER_USER_IDENTIFIER_LENGTH, required=required, sensitive=True
    )


def query_limit(*, required: bool = False) -> StrictInteger:
    return integer(min=MIN_RESULTS, max=MAX_RESULTS, required=required)


def pagination_key() -> StrictString:  # token-like, so never echoed
    return string(min=1, max=MAX_NEXT_TOKEN_LENGTH, pattern=NEXT_TOKEN_PATTERN, sensitive=True)


def arn(*, required: bool = False) -> StrictString:  # ARNString
    return string(min=MIN_ARN_LENGTH, max=MAX_ARN_LENGTH, required=required)


def role_type() -> StrictString:  # RoleType, the keys of Roles
    return string(min=1, max=MAX_ROLE_TYPE_LENGTH, pattern=ROLE_TYPE_PATTERN)


def logins(*, required: bool = False) -> StrictMap:  # LoginsMap of sensitive tokens
    token = string(min=1, max=MAX_LOGIN_VALUE_LENGTH, sensitive=True)
    return map_of(provider_name(), token, max=MAX_LOGINS, required=required)


def principal_tags() -> StrictMap:
    key = string(min=1, max=MAX_TAG_KEY_LENGTH)
    return map_of(key, string(min=1, max=MAX_TAG_VALUE_LENGTH), max=MAX_PRINCIPAL_TAGS)


def pool_tags(*, required: bool = False) -> StrictMap:  # IdentityPoolTagsType
    key = string(min=1, max=MAX_TAG_KEY_LENGTH)
    return map_of(key, string(min=0, max=MAX_TAG_VALUE_LENGTH), required=required)


def pool_members() -> Members:
    """The identity pool members shared by CreateIdentityPool and UpdateIdentityPool."""
    provider_id = string(min=1, max=MAX_PROVIDER_ID_LENGTH, pattern=PROVIDER_ID_PATTERN)
    cognito_provider = structure(  # CognitoIdentityProvider
        {
            "ProviderName": string(
                min=1, max=MAX_COGNITO_PROVIDER_LENGTH, pattern=COGNITO_PROVIDER_NAME_PATTERN
            ),
            "ClientId": string(
                min=1, max=MAX_COGNITO_PROVIDER_LENGTH, pattern=COGNITO_CLIENT_ID_PATTERN
            ),
            "ServerSideTokenCheck": boolean(),
        },
    )
    return {
        "IdentityPoolName": string(
            min=1, max=MAX_POOL_NAME_LENGTH, pattern=POOL_NAME_PATTERN, required=True
        ),
        "AllowUnauthenticatedIdentities": boolean(required=True),
        "AllowClassicFlow": boolean(),
        "SupportedLoginProviders": map_of(
            provider_name(), provider_id, max=MAX_SUPPORTED_LOGIN_PROVIDERS
        ),
        "DeveloperProviderName": developer_provider_name(),
        "OpenIdConnectProviderARNs": list_of(arn()),
        "CognitoIdentityProviders": list_of(cognito_provider),
        "SamlProviderARNs": list_of(arn()),
        "IdentityPoolTags": pool_tags(),
    }


def role_mapping() -> StrictStruct:
    rule = structure(  # MappingRule
        {
            # The model's pattern uses Unicode classes; see is_claim_name.
            "Claim": string(
                min=1,
                max=MAX_CLAIM_LENGTH,
                pattern=CLAIM_PATTERN,
                matcher=is_claim_name,
                required=True,
            ),
            "MatchType": string(enum=MAPPING_RULE_MATCH_TYPES, required=True),
            "Value": string(min=1, max=MAX_CLAIM_VALUE_LENGTH, required=True),
            "RoleARN": arn(required=True),
        },
    )
    rules = list_of(rule, min=1, max=MAX_MAPPING_RULES, required=True)
    return structure(  # RoleMapping
        {
            "Type": string(enum=ROLE_MAPPING_TYPES, required=True),
            "AmbiguousRoleResolution": string(enum=AMBIGUOUS_ROLE_RESOLUTIONS),
            "RulesConfiguration": structure({"Rules": rules}),  # RulesConfigurationType
        },
    )


# --- the operations (botocore cognito-identity 2014-06-30, members in model order) -------
_MEMBERS: Final[dict[str, Members]] = {
    "GetOpenIdTokenForDeveloperIdentity": {
        "IdentityPoolId": pool_id(required=True),
        "IdentityId": identity_id(),
        "Logins": logins(required=True),
        "PrincipalTags": principal_tags(),
        "TokenDuration": long(min=MIN_TOKEN_DURATION, max=MAX_TOKEN_DURATION),
    },
    "LookupDeveloperIdentity": {
        "IdentityPoolId": pool_id(required=True),
        "IdentityId": identity_id(),
        "DeveloperUserIdentifier": developer_user_identifier(),
        "MaxResults": query_limit(),
        "NextToken": pagination_key(),
    },
    "MergeDeveloperIdentities": {
        "SourceUserIdentifier": developer_user_identifier(required=True),
        "DestinationUserIdentifier": developer_user_identifier(required=True),
        "DeveloperProviderName": developer_provider_name(required=True),
        "IdentityPoolId": pool_id(required=True),
    },
    "UnlinkDeveloperIdentity": {
        "IdentityId": identity_id(required=True),
        "IdentityPoolId": pool_id(required=True),
        "DeveloperProviderName": developer_provider_name(required=True),
        "DeveloperUserIdentifier": developer_user_identifier(required=True),
    },
    "UnlinkIdentity": {
        "IdentityId": identity_id(required=True),
        "Logins": logins(required=True),
        "LoginsToRemove": list_of(provider_name(), required=True),
    },
    "DescribeIdentity": {"IdentityId": identity_id(required=True)},
    "ListIdentities": {
        "IdentityPoolId": pool_id(required=True),
        "MaxResults": query_limit(required=True),
        "NextToken": pagination_key(),
        "HideDisabled": boolean(),
    },
    "DeleteIdentities": {
        "IdentityIdsToDelete": list_of(
            identity_id(), min=1, max=MAX_IDENTITIES_TO_DELETE, required=True
        ),
    },
    "GetId": {
        "AccountId": string(min=1, max=MAX_ACCOUNT_ID_LENGTH, pattern=ACCOUNT_ID_PATTERN),
        "IdentityPoolId": pool_id(required=True),
        "Logins": logins(),
    },
    "GetOpenIdToken": {"IdentityId": identity_id(required=True), "Logins": logins()},
    "GetCredentialsForIdentity": {
        "IdentityId": identity_id(required=True),
        "Logins": logins(),
        "CustomRoleArn": arn(),
    },
    "CreateIdentityPool": pool_members(),
    "UpdateIdentityPool": {"IdentityPoolId": pool_id(required=True), **pool_members()},
    "DescribeIdentityPool": {"IdentityPoolId": pool_id(required=True)},
    "ListIdentityPools": {"MaxResults": query_limit(required=True), "NextToken": pagination_key()},
    "DeleteIdentityPool": {"IdentityPoolId": pool_id(required=True)},
    "SetIdentityPoolRoles": {
        "IdentityPoolId": pool_id(required=True),
        "Roles": map_of(role_type(), arn(), max=MAX_ROLES, required=True),
        "RoleMappings": map_of(provider_name(), role_mapping(), max=MAX_ROLE_MAPPINGS),
    },
    "GetIdentityPoolRoles": {"IdentityPoolId": pool_id(required=True)},
    "SetPrincipalTagAttributeMap": {
        "IdentityPoolId": pool_id(required=True),
        "IdentityProviderName": provider_name(required=True),
        "UseDefaults": boolean(),
        "PrincipalTags": principal_tags(),
    },
    "GetPrincipalTagAttributeMap": {
        "IdentityPoolId": pool_id(required=True),
        "IdentityProviderName": provider_name(required=True),
    },
    "TagResource": {"ResourceArn": arn(required=True), "Tags": pool_tags(required=True)},
    "UntagResource": {
        "ResourceArn": arn(required=True),
        "TagKeys": list_of(string(min=1, max=MAX_TAG_KEY_LENGTH), required=True),
    },
    "ListTagsForResource": {"ResourceArn": arn(required=True)},
}

#: Operation name -> its schema, built once at import (one generated Schema class each).
SCHEMAS: Final[Mapping[str, Schema]] = MappingProxyType(
    {name: OperationSchema.from_dict(members, name=name)() for name, members in _MEMBERS.items()}
)
OPERATIONS: Final[frozenset[str]] = frozenset(SCHEMAS)
