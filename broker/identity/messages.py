"""Error messages of the identity rules, worded as AWS words them (contract sections 4-7)."""

POOL_NOT_FOUND = "IdentityPool '{pool_id}' not found."
IDENTITY_NOT_FOUND = "Identity '{identity_id}' not found."
POOL_LIMIT = "You have reached the limit of {limit} identity pools for this broker."
PROVIDER_IMMUTABLE = (
    "DeveloperProviderName of identity pool '{pool_id}' is '{current}' and cannot be changed."
)
NOT_A_PROVIDER = "Token is not from a supported provider of this identity pool."
NO_DEVELOPER_PROVIDER = "This identity pool does not support the specified developer provider"
UNVERIFIABLE_PROVIDER = (
    "Logins from provider '{provider}' cannot be verified by this broker; "
    "send only the developer provider '{developer}'."
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
