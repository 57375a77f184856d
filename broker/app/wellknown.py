"""OpenID discovery and the JWKS (contract section 6; OpenID Connect Discovery 1.0 §3-4).

Any standard JWT library can verify a token from the issuer URL alone: discovery names
``jwks_uri``, which publishes every key that signed a token still valid.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from broker.services import current_services
from broker.tokens.claims import POOL_ARN_CLAIM, TAGS_CLAIM
from broker.tokens.keys import ALGORITHM

bp = Blueprint("wellknown", __name__, url_prefix="/.well-known")

JWKS_PATH = "/.well-known/jwks_uri"  # AWS's own path; jwks.json is an alias
#: How long verifiers may cache the JWKS; a staged key is published at least this long
#: (plus the workers' refresh interval) before it signs (``broker rotate-key``).
JWKS_MAX_AGE = 300
CLAIMS = ["sub", "aud", "amr", "iss", "iat", "exp", POOL_ARN_CLAIM, TAGS_CLAIM]


def discovery_document(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "jwks_uri": issuer + JWKS_PATH,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "claims_supported": CLAIMS,
    }


@bp.get("/openid-configuration")
def openid_configuration() -> Response:
    response = jsonify(discovery_document(current_services().settings.issuer))
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    return response


@bp.get("/jwks_uri")
@bp.get("/jwks.json")
def jwks() -> Response:
    response = jsonify(current_services().keyring.jwks())
    response.cache_control.public = True
    response.cache_control.max_age = JWKS_MAX_AGE
    return response
