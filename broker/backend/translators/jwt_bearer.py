"""Translator ``jwt``: a bearer JWT issued by the backend or its identity provider.

Checks, in this order, each failing with UNAUTHENTICATED (RFC 8725 section 3 lists them):
the header's ``alg`` is on the configured allow-list (so ``none`` never is, section 3.1);
the key comes from configuration and fits that algorithm (no HMAC/RSA confusion); the JWS
signature verifies (RFC 7515 section 5.2); ``exp`` is present and not past, ``nbf`` and
``iat`` not in the future, each with the configured leeway (RFC 7519 sections 4.1.4-4.1.6);
``iss`` and ``aud`` equal the configured values (RFC 7519 sections 4.1.1 and 4.1.3; RFC 8725
sections 3.8 and 3.9). The configured claim (default ``sub``) names the developer user and
configured claims become principal tags.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable
from typing import Any, Final

from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)

from broker.backend.errors import SessionRejected
from broker.backend.translators.keys import JwksKeys, KeyResolver, StaticKey
from broker.backend.translators.session import (
    Credentials,
    Session,
    bearer_token,
    session_from,
    user_id_from,
)
from config.backend_jwt import JwtSettings
from config.errors import ConfigError

CHALLENGE: Final = 'Bearer realm="identity-broker"'
INVALID_TOKEN: Final = CHALLENGE + ', error="invalid_token"'  # RFC 6750 section 3
MAX_JWT_LENGTH: Final = 16 * 1024

MISSING: Final = "Missing bearer token: send 'Authorization: Bearer <JWT>'."
MALFORMED: Final = "The bearer token is not a well-formed JWS compact JWT."
ALG_REFUSED: Final = "The bearer token's algorithm is not allowed."
BAD_SIGNATURE: Final = "The bearer token's signature does not verify."
EXPIRED: Final = "The bearer token has expired."
#: Claim -> what to say when it does not match; other claims get CLAIM_INVALID.
CLAIM_MESSAGES: Final = {
    "iss": "The bearer token was issued by another issuer.",
    "aud": "The bearer token is meant for another audience.",
    "nbf": "The bearer token is not valid yet.",
    "iat": "The bearer token was issued in the future.",
    "exp": "The bearer token's expiry is not a valid time.",
}
CLAIM_INVALID: Final = "The bearer token's claims are not valid."
REQUIRED_CLAIMS: Final = ("exp", "iss", "aud")
NO_KEY_SOURCE: Final = (
    "BROKER_BACKEND_AUTH=jwt needs one of BROKER_BACKEND_JWT_HS_SECRET, "
    "BROKER_BACKEND_JWT_PUBLIC_KEY_FILE and BROKER_BACKEND_JWT_JWKS_URL"
)


class JwtTranslator:
    names_user_in_body = False

    def __init__(
        self, settings: JwtSettings, keys: KeyResolver, clock: Callable[[], float]
    ) -> None:
        self._settings = settings
        self._keys = keys
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: JwtSettings, clock: Callable[[], float]) -> JwtTranslator:
        keys: KeyResolver
        if settings.hs_secret is not None:
            keys = StaticKey.hmac(settings.hs_secret)
        elif settings.public_key_file is not None:
            keys = StaticKey.from_pem_file(settings.public_key_file, settings.algorithms)
        elif settings.jwks_url is not None:
            keys = JwksKeys(
                settings.jwks_url,
                timeout=settings.jwks_timeout,
                ttl=settings.jwks_cache_seconds,
                min_refetch=settings.jwks_min_refetch_seconds,
            )
        else:  # config.backend requires exactly one key source
            raise ConfigError(NO_KEY_SOURCE)
        return cls(settings, keys, clock)

    def translate(self, credentials: Credentials) -> Session:
        token = bearer_token(credentials.headers)
        if token is None:
            raise SessionRejected(MISSING, challenge=CHALLENGE)
        claims = self.verify(token)
        user_claim = self._settings.user_claim
        user_id = user_id_from(claims.get(user_claim), what=f"{user_claim!r} claim")
        return session_from(user_id, claims, self._settings.tag_claims)

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims once every check above has passed."""
        header = _unverified_header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._settings.algorithms:
            raise SessionRejected(ALG_REFUSED, challenge=INVALID_TOKEN)
        kid = header.get("kid")
        key = self._keys.key_for(kid if isinstance(kid, str) else None, alg)
        try:
            claims = jwt.decode(token, key, algorithms=[alg]).claims
        except BadSignatureError:
            raise SessionRejected(BAD_SIGNATURE, challenge=INVALID_TOKEN) from None
        except JoseError:
            raise SessionRejected(MALFORMED, challenge=INVALID_TOKEN) from None
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock()),
            leeway=self._settings.leeway,
            exp={"essential": True},
            iss={"essential": True, "value": self._settings.issuer},
            aud={"essential": True, "value": self._settings.audience},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise SessionRejected(EXPIRED, challenge=INVALID_TOKEN) from None
        except MissingClaimError:
            raise SessionRejected(
                f"The bearer token lacks a required claim ({', '.join(REQUIRED_CLAIMS)}).",
                challenge=INVALID_TOKEN,
            ) from None
        except InvalidClaimError as exc:
            message = CLAIM_MESSAGES.get(str(exc.claim), CLAIM_INVALID)
            raise SessionRejected(message, challenge=INVALID_TOKEN) from None
        return claims


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, read before any key is chosen (only to pick the key and check alg)."""
    if len(token) > MAX_JWT_LENGTH or token.count(".") != 2:
        raise SessionRejected(MALFORMED, challenge=INVALID_TOKEN)
    try:
        header = jws.extract_compact(token.encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeError, binascii.Error, json.JSONDecodeError):
        raise SessionRejected(MALFORMED, challenge=INVALID_TOKEN) from None
    return dict(header)
