"""The limits and patterns of Cognito Identity's service model, in one place.

Both front doors (the AWS JSON door's schemas, the backend door's schema and OpenAPI
document) and ``config/`` (pool ids and names in the environment) check values against
these, so a value one accepts the others accept too. Every number and pattern is botocore's
``cognito-identity/2014-06-30/service-2.json`` (tabulated in ``constraints.md``). Patterns
are Java's, matched whole with ASCII ``\\w \\d \\s``. It lives in ``config/``, the bottom
layer, so that settings, the identity core and the doors all read it; it imports nothing.
"""

from __future__ import annotations

from typing import Final

#: The longest developer user id (DeveloperUserIdentifier in the service model), whether it
#: arrives as a member of Lookup/Merge/Unlink or as the value under D in Logins.
MAX_DEVELOPER_USER_IDENTIFIER_LENGTH: Final = 1024
POOL_ID_PATTERN: Final = r"[\w-]+:[0-9a-f-]+"
IDENTITY_ID_PATTERN: Final = r"[\w-]+:[0-9a-f-]+"
MAX_ID_LENGTH: Final = 55
POOL_NAME_PATTERN: Final = r"[\w\s+=,.@-]+"
MAX_POOL_NAME_LENGTH: Final = 128
DEVELOPER_PROVIDER_NAME_PATTERN: Final = r"[\w._-]+"
MAX_PROVIDER_NAME_LENGTH: Final = 128  # IdentityProviderName, DeveloperProviderName
PROVIDER_ID_PATTERN: Final = r"[\w.;_/-]+"  # SupportedLoginProviders values
MAX_PROVIDER_ID_LENGTH: Final = 128
COGNITO_PROVIDER_NAME_PATTERN: Final = r"[\w._:/-]+"
COGNITO_CLIENT_ID_PATTERN: Final = r"[\w_]+"
MAX_COGNITO_PROVIDER_LENGTH: Final = 128  # CognitoIdentityProvider ProviderName, ClientId
ACCOUNT_ID_PATTERN: Final = r"\d+"
MAX_ACCOUNT_ID_LENGTH: Final = 15
NEXT_TOKEN_PATTERN: Final = r"[\S]+"  # noqa: S105 - a pattern, not a secret
MAX_NEXT_TOKEN_LENGTH: Final = 65535
ROLE_TYPE_PATTERN: Final = r"(un)?authenticated"  # the keys of Roles
MAX_ROLE_TYPE_LENGTH: Final = 128
CLAIM_PATTERN: Final = r"[\p{L}\p{M}\p{S}\p{N}\p{P}]+"
MAX_CLAIM_LENGTH: Final = 64
MAX_CLAIM_VALUE_LENGTH: Final = 128
MIN_TOKEN_DURATION: Final = 1
MAX_TOKEN_DURATION: Final = 86400
MIN_RESULTS: Final = 1
MAX_RESULTS: Final = 60
MAX_LOGINS: Final = 10
MAX_LOGIN_VALUE_LENGTH: Final = 50000
MAX_IDENTITIES_TO_DELETE: Final = 60
MAX_SUPPORTED_LOGIN_PROVIDERS: Final = 10
MAX_PRINCIPAL_TAGS: Final = 50
MAX_TAG_KEY_LENGTH: Final = 128
MAX_TAG_VALUE_LENGTH: Final = 256  # PrincipalTagValue (min 1) and TagValueType (min 0)
MIN_ARN_LENGTH: Final = 20
MAX_ARN_LENGTH: Final = 2048
MAX_ROLES: Final = 2
MAX_ROLE_MAPPINGS: Final = 10
MAX_MAPPING_RULES: Final = 400
ROLE_MAPPING_TYPES: Final = ("Token", "Rules")
AMBIGUOUS_ROLE_RESOLUTIONS: Final = ("AuthenticatedRole", "Deny")
MAPPING_RULE_MATCH_TYPES: Final = ("Equals", "Contains", "StartsWith", "NotEqual")
