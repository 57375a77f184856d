"""Verify broker tokens the way a relying party would: PyJWT (not our code), given only the
issuer URL: discovery document, then its jwks_uri, then an RS512 signature check."""

from __future__ import annotations

from typing import Any

import jwt
import requests


def discover(issuer: str) -> dict[str, Any]:
    response = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=5)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


def verify(
    issuer: str, token: str, audience: str | list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (header, claims) of a token that verifies; raise jwt.PyJWTError otherwise."""
    document = discover(issuer)
    jwks = jwt.PyJWKClient(document["jwks_uri"], cache_keys=False)
    signing_key = jwks.get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token,
        signing_key.key,
        algorithms=document["id_token_signing_alg_values_supported"],
        audience=audience,
        issuer=document["issuer"],
        options={"require": ["exp", "iat", "sub", "aud", "iss"]},
    )
    return jwt.get_unverified_header(token), claims
