"""Error messages of the login verifier, beside ``broker.identity.messages`` (whose
``NOT_A_PROVIDER`` and ``INVALID_LOGIN`` it reuses). A reason names the check that failed,
never the token nor a value of its claims: the message goes back to the caller and into
logs."""

from typing import Final

UNVERIFIABLE: Final = "Logins for {provider} cannot be verified by this broker."
#: A decision of this broker (AWS knows every IAM OIDC provider of the account).
OIDC_NOT_CONFIGURED: Final = (
    "The OpenID Connect provider {name} is not configured in this broker (BROKER_OIDC_PROVIDERS)."
)
UNREACHABLE: Final = (
    "The identity provider {provider} could not be reached to verify the login token; "
    "retry shortly."
)

# --- reasons, each after "Invalid login token. " (broker.identity.messages.INVALID_LOGIN) --
MALFORMED: Final = "The token is not a well-formed JWS compact JWT."
ALG_REFUSED: Final = "The token's algorithm is not accepted (RS*, PS*, ES* and EdDSA only)."
UNKNOWN_KEY: Final = "The token is signed with a key the provider does not publish."
BAD_SIGNATURE: Final = "The token's signature does not verify."
EXPIRED: Final = "The token has expired."
MISSING_CLAIM: Final = "The token lacks a required claim ({claims})."
#: Claim -> what to say when it does not pass; other claims get CLAIM_INVALID.
CLAIM_REASONS: Final = {
    "iss": "The token was issued by another issuer.",
    "aud": "The token is meant for another audience.",
    "exp": "The token's expiry is not a valid time.",
    "nbf": "The token is not valid yet.",
    "iat": "The token was issued in the future.",
    "sub": "The token's subject is not a non-empty string.",
    "token_use": "The token is not an ID token (token_use).",
}
CLAIM_INVALID: Final = "The token's claims are not valid."
