"""Error messages of the identity rules, worded as AWS words them (contract sections 4-7)."""

POOL_NOT_FOUND = "IdentityPool '{pool_id}' not found."
IDENTITY_NOT_FOUND = "Identity '{identity_id}' not found."
POOL_LIMIT = "You have reached the limit of {limit} identity pools for this broker."
POOL_KEPT_CHANGING = (
    "Identity pool '{pool_id}' was changed by other requests while this one applied; "
    "retry the request."
)
PROVIDER_IMMUTABLE = (
    "DeveloperProviderName of identity pool '{pool_id}' is '{current}' and cannot be changed."
)
NOT_A_PROVIDER = "Token is not from a supported provider of this identity pool."
NO_DEVELOPER_PROVIDER = "This identity pool does not support the specified developer provider"
DEVELOPER_USER_TOO_LONG = (
    "The developer user identifier under '{developer}' in Logins must be at most "
    "{limit} characters long."
)
FORBIDDEN = "Access to Identity '{identity_id}' is forbidden."
ALREADY_REGISTERED = (
    "The developer user identifier is already registered with another identity "
    "of identity pool '{pool_id}'."
)
LOGINS_DONT_MATCH = (
    "Logins don't match. Please include at least one valid login for this identity or "
    "identity pool."
)

# --- section 7: lookup, merge, unlink, describe, list, delete ----------------------------
LOOKUP_NEEDS_ONE = "One of IdentityId or DeveloperUserIdentifier must be specified."
DEVELOPER_USER_NOT_FOUND = (
    "The developer user identifier is not linked to any identity of identity pool '{pool_id}'."
)
LOOKUP_MISMATCH = "The developer user identifier is not linked to Identity '{identity_id}'."
MERGE_SOURCE_NOT_FOUND = (
    "The source user identifier is not linked to any identity of identity pool '{pool_id}'."
)
MERGE_DESTINATION_NOT_FOUND = (
    "The destination user identifier is not linked to any identity of identity pool '{pool_id}'."
)
TOO_MANY_LOGINS = (
    "Identity '{identity_id}' would have more than {limit} linked logins after the merge."
)
NOT_LINKED = "The developer user identifier is not linked to Identity '{identity_id}'."

# --- section 7: the unsigned operations --------------------------------------------------
UNAUTHENTICATED_NOT_SUPPORTED = "Unauthenticated access is not supported for this identity pool."
DEVELOPER_LOGIN_NOT_HERE = (
    "Developer provider '{developer}' cannot be used with {operation}; "
    "call GetOpenIdTokenForDeveloperIdentity."
)
PUBLIC_PROVIDER_UNSUPPORTED = "Logins for {provider} cannot be verified by this broker."
# --- section 9: public-provider logins ----------------------------------------------------
PROVIDER_TWICE = (
    "Identity '{identity_id}' would hold two different users of one identity provider; "
    "unlink one first."
)
DEVELOPER_LOGIN_ONLY_BESIDE = (
    "Developer provider '{developer}' logins go with GetOpenIdTokenForDeveloperIdentity."
)
INVALID_LOGIN = "Invalid login token. {reason}"
LOGIN_NOT_FOR_IDENTITY = (
    "Invalid login token. The token was not issued for Identity '{identity_id}'."
)
UNLINK_DEVELOPER_ELSEWHERE = (
    "Developer provider '{developer}' logins are unlinked with UnlinkDeveloperIdentity."
)

# --- section 7: pool settings and tags ---------------------------------------------------
INVALID_POOL_ARN = (
    "Invalid ResourceArn '{arn}': expected "
    "arn:aws:cognito-identity:<region>:<account-id>:identitypool/<identity-pool-id>."
)
TOO_MANY_TAGS = "An identity pool can have at most {limit} tags; the request would leave {count}."
RULES_NEED_CONFIGURATION = (
    "RoleMappings entry '{provider}' has Type Rules but no RulesConfiguration."
)
NOT_A_POOL_PROVIDER = "'{provider}' is not an identity provider of identity pool '{pool_id}'."

# --- section 10: roles and credentials ---------------------------------------------------
NO_ROLE = "Invalid identity pool configuration. Check assigned IAM roles for this pool."
CUSTOM_ROLE_NOT_ALLOWED = (
    "The CustomRoleArn is not allowed for this identity: it is not among the roles the "
    "pool's role mapping selects for the call."
)
ROLE_MAPPING_DENIED = (
    "The role mapping for '{provider}' selects no role for this login and its "
    "AmbiguousRoleResolution is Deny."
)
ROLE_KIND = "Roles key '{kind}' is not valid: use 'authenticated' or 'unauthenticated'."
NOT_A_ROLE_ARN = (
    "{where} '{arn}' is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)."
)
NEEDS_RESOLUTION = (
    "RoleMappings entry '{provider}' needs AmbiguousRoleResolution (AuthenticatedRole or "
    "Deny) with Type Token or Rules."
)
TOO_MANY_RULES = "RoleMappings entry '{provider}' has more than {limit} rules."
