"""The claims of the tokens the broker issues, shaped as Cognito shapes them (contract §6)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

POOL_ARN_CLAIM = "https://cognito-identity.amazonaws.com/identity-pool-arn"
#: The claim AWS STS reads session tags from (AssumeRoleWithWebIdentity).
TAGS_CLAIM = "https://aws.amazon.com/tags"

DEFAULT_TOKEN_DURATION = 900
#: GetOpenIdToken's tokens, authenticated or not, last 10 minutes, as AWS's do.
OPEN_ID_TOKEN_DURATION = 600


#: The middle part of a Cognito user pool login in ``amr``, as AWS writes it.
USER_POOL_SIGN_IN = "CognitoSignIn"


@dataclass(frozen=True)
class AmrLogin:
    """One login an authenticated token names in ``amr``: the provider, then
    ``<provider>:<pool id>:<user>`` (``<provider>:CognitoSignIn:<sub>`` for a user pool)."""

    provider: str
    user: str
    user_pool: bool = False


def authenticated_amr(pool_id: str, logins: Sequence[AmrLogin]) -> list[str]:
    amr = ["authenticated"]
    for login in logins:
        middle = USER_POOL_SIGN_IN if login.user_pool else pool_id
        amr += [login.provider, f"{login.provider}:{middle}:{login.user}"]
    return amr


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
    also: Sequence[AmrLogin] = (),
) -> dict[str, Any]:
    """An authenticated token's claims: the developer login first in ``amr``, then ``also``
    (the call's public logins); with an empty ``provider``, only ``also``."""
    named = [AmrLogin(provider, user_id), *also] if provider else list(also)
    claims: dict[str, Any] = {
        "sub": identity_id,
        "aud": pool_id,
        "amr": authenticated_amr(pool_id, named),
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
