"""The claims of the tokens the broker issues, shaped as Cognito shapes them (contract §6)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

POOL_ARN_CLAIM = "https://cognito-identity.amazonaws.com/identity-pool-arn"
#: The claim AWS STS reads session tags from (AssumeRoleWithWebIdentity).
TAGS_CLAIM = "https://aws.amazon.com/tags"

DEFAULT_TOKEN_DURATION = 900
#: GetOpenIdToken's tokens, authenticated or not, last 10 minutes, as AWS's do.
OPEN_ID_TOKEN_DURATION = 600


def developer_claims(
    *,
    issuer: str,
    pool_id: str,
    pool_arn: str,
    identity_id: str,
    provider: str,
    user_id: str,
    issued_at: int,
    duration: int,
    principal_tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": identity_id,
        "aud": pool_id,
        "amr": ["authenticated", provider, f"{provider}:{pool_id}:{user_id}"],
        "iss": issuer,
        POOL_ARN_CLAIM: pool_arn,
        "iat": issued_at,
        "exp": issued_at + duration,
    }
    if principal_tags:
        claims[TAGS_CLAIM] = {"principal_tags": {k: [v] for k, v in principal_tags.items()}}
    return claims


def unauthenticated_claims(
    *, issuer: str, pool_id: str, pool_arn: str, identity_id: str, issued_at: int
) -> dict[str, Any]:
    return {
        "sub": identity_id,
        "aud": pool_id,
        "amr": ["unauthenticated"],
        "iss": issuer,
        POOL_ARN_CLAIM: pool_arn,
        "iat": issued_at,
        "exp": issued_at + OPEN_ID_TOKEN_DURATION,
    }


def principal_tags_of(claims: Mapping[str, Any]) -> dict[str, str]:
    """The principal tags a token carries, back in PrincipalTags' shape (one value each)."""
    claim = claims.get(TAGS_CLAIM)
    tags = claim.get("principal_tags") if isinstance(claim, dict) else None
    if not isinstance(tags, dict):
        return {}
    return {
        str(key): str(values[0])
        for key, values in tags.items()
        if isinstance(values, list) and values
    }
