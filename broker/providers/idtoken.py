"""The checks of one ID token (OpenID Connect Core 1.0 section 3.1.3.7; AWS's "Validating
OpenID Connect tokens"), each failing with NotAuthorizedException "Invalid login token.
<reason>":

the JOSE header's ``alg`` is an asymmetric signature algorithm (RS*, PS*, ES*, EdDSA), so
never ``none`` nor HMAC (a provider's public key is no secret, RFC 8725 section 3.1); the
key is the provider's JWKS key named by ``kid`` and fitting ``alg`` (``jku``, ``x5u`` and
``jwk`` headers are never read); the JWS signature verifies; ``iss`` is the provider's
issuer; ``aud`` (a string or a list) holds a client id the pool accepts; ``exp`` is present
and in the future, ``nbf`` and ``iat`` not in the future, each with 5 minutes of leeway (as
AWS allows); ``token_use`` is ``id`` for a Cognito user pool; ``sub`` is a non-empty string.

The signature and the claims use joserfc (``jwt.decode``, ``jwt.JWTClaimsRegistry``), as
the backend door's ``jwt`` translator does. authlib's OpenID Connect classes (``CodeIDToken``
and friends) were not taken: they check the same claims with authlib's own JOSE layer, a
second JWT implementation beside joserfc for one registry of claims, and they check
``nonce``/``at_hash``, which a Logins token cannot carry meaningfully to the broker.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwt import ClaimsOption

from broker.errors import NotAuthorizedException
from broker.identity.messages import INVALID_LOGIN
from broker.providers import messages
from broker.providers.jwks import KEY_TYPE_OF, Key, KeyNotFound
from config.backend_jwt import ASYMMETRIC_ALGORITHMS

#: AWS accepts tokens up to 5 minutes past their exp (clock skew), and so does the broker.
LEEWAY_SECONDS: Final = 300
MAX_TOKEN_LENGTH: Final = 16 * 1024
REQUIRED_CLAIMS: Final = ("exp", "iss", "aud", "sub")


@dataclass(frozen=True)
class Expected:
    """What a provider's ID token must say: its issuer (one of ``issuers``), an audience of
    ``audiences``, and for Cognito user pools ``token_use``."""

    issuers: tuple[str, ...]
    audiences: tuple[str, ...]
    token_use: str | None = None


def invalid(reason: str) -> NotAuthorizedException:
    return NotAuthorizedException(INVALID_LOGIN.format(reason=reason))


def verify_id_token(
    token: str, key_for: Callable[[str | None, str], Key], expected: Expected, now: float
) -> dict[str, Any]:
    """The token's claims once every check has passed (``sub`` among them, a non-empty
    string). ``key_for(kid, alg)`` is asked only
    after the header passed (a malformed token never causes a JWKS fetch); what it raises
    other than :class:`KeyNotFound` (the keys are unavailable) goes to the caller."""
    alg, kid = _header(token)
    try:
        key = key_for(kid, alg)
    except KeyNotFound:
        raise invalid(messages.UNKNOWN_KEY) from None
    try:
        claims = jwt.decode(token, key, algorithms=[alg]).claims
    except BadSignatureError:
        raise invalid(messages.BAD_SIGNATURE) from None
    except JoseError:
        raise invalid(messages.MALFORMED) from None
    if not expected.audiences:  # an empty "values" would check nothing
        raise invalid(messages.CLAIM_REASONS["aud"])
    options: dict[str, ClaimsOption] = {
        "exp": {"essential": True},
        "iss": {"essential": True, "values": list(expected.issuers)},
        "aud": {"essential": True, "values": list(expected.audiences)},
        "sub": {"essential": True},
    }
    if expected.token_use is not None:
        options["token_use"] = {"essential": True, "value": expected.token_use}
    registry = jwt.JWTClaimsRegistry(now=int(now), leeway=LEEWAY_SECONDS, **options)
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise invalid(messages.EXPIRED) from None
    except MissingClaimError as exc:
        raise invalid(messages.MISSING_CLAIM.format(claims=exc.claim)) from None
    except InvalidClaimError as exc:
        raise invalid(messages.CLAIM_REASONS.get(exc.claim, messages.CLAIM_INVALID)) from None
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub:  # joserfc checks both; a guard for the return
        raise invalid(messages.CLAIM_REASONS["sub"])
    return dict(claims)


def _header(token: str) -> tuple[str, str | None]:
    """``alg`` and ``kid`` of the JOSE header, read before any key is chosen."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise invalid(messages.MALFORMED)
    try:
        header = jws.extract_compact(token.encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeError, binascii.Error, json.JSONDecodeError):
        raise invalid(messages.MALFORMED) from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ASYMMETRIC_ALGORITHMS or alg not in KEY_TYPE_OF:
        raise invalid(messages.ALG_REFUSED)
    kid = header.get("kid")
    return alg, kid if isinstance(kid, str) else None
