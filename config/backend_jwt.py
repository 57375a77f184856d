"""Settings of the backend door's ``jwt`` mode (``BROKER_BACKEND_AUTH=jwt``): the session is
a JWT in ``Authorization: Bearer``, checked against exactly one key source (an HMAC secret,
a PEM public key file or a JWKS URL). Read by ``config.backend``; pure like the rest of
``config/`` (the key file and the JWKS are opened when the app is built)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from config.aws_model import MAX_TAG_KEY_LENGTH
from config.env import (
    BETWEEN_0_AND_60_SECONDS,
    is_loopback,
    read_float,
    read_int,
    read_pairs,
    required,
    text,
)
from config.errors import ConfigError

#: RFC 7518 section 3.2: an HMAC key at least as long as the hash output (HS256: 32 bytes).
MIN_HS_SECRET_LENGTH: Final = 32
#: JWS algorithms by key family (RFC 7518 section 3.1). ``none`` is in no family, ever.
HMAC_ALGORITHMS: Final = ("HS256", "HS384", "HS512")
ASYMMETRIC_ALGORITHMS: Final = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
DEFAULT_LEEWAY: Final = 30
MAX_LEEWAY: Final = 300
DEFAULT_USER_CLAIM: Final = "sub"
#: Host names a JWKS may be fetched from over plain http (besides 127.0.0.0/8 and ::1).
LOOPBACK_NAMES: Final = ("localhost", "localhost.")
DEFAULT_JWKS_TIMEOUT: Final = 3.0
DEFAULT_JWKS_CACHE_SECONDS: Final = 300
DEFAULT_JWKS_MIN_REFETCH_SECONDS: Final = 10

JWT_VARS: Final = (
    "BROKER_BACKEND_JWT_HS_SECRET",
    "BROKER_BACKEND_JWT_PUBLIC_KEY_FILE",
    "BROKER_BACKEND_JWT_JWKS_URL",
    "BROKER_BACKEND_JWT_ISSUER",
    "BROKER_BACKEND_JWT_AUDIENCE",
    "BROKER_BACKEND_JWT_ALGORITHMS",
    "BROKER_BACKEND_JWT_LEEWAY",
    "BROKER_BACKEND_JWT_USER_CLAIM",
    "BROKER_BACKEND_JWT_TAG_CLAIMS",
    "BROKER_BACKEND_JWT_JWKS_TIMEOUT",
    "BROKER_BACKEND_JWT_JWKS_CACHE_SECONDS",
    "BROKER_BACKEND_JWT_JWKS_MIN_REFETCH_SECONDS",
)


@dataclass(frozen=True)
class JwtSettings:
    """Mode ``jwt``: exactly one key source (HMAC secret, PEM public key file, JWKS URL)."""

    issuer: str
    audience: str
    algorithms: tuple[str, ...]
    hs_secret: str | None = field(default=None, repr=False)
    public_key_file: str | None = None
    jwks_url: str | None = None
    leeway: int = DEFAULT_LEEWAY
    user_claim: str = DEFAULT_USER_CLAIM
    tag_claims: Mapping[str, str] = field(default_factory=dict)  # claim -> principal tag
    jwks_timeout: float = DEFAULT_JWKS_TIMEOUT
    jwks_cache_seconds: int = DEFAULT_JWKS_CACHE_SECONDS
    jwks_min_refetch_seconds: int = DEFAULT_JWKS_MIN_REFETCH_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> JwtSettings:
        return _jwt(environ)


def _jwt(environ: Mapping[str, str]) -> JwtSettings:
    secret = text(environ, "BROKER_BACKEND_JWT_HS_SECRET") or None
    key_file = text(environ, "BROKER_BACKEND_JWT_PUBLIC_KEY_FILE") or None
    jwks_url = text(environ, "BROKER_BACKEND_JWT_JWKS_URL") or None
    sources = [s for s in (secret, key_file, jwks_url) if s is not None]
    if len(sources) != 1:
        raise ConfigError(
            "BROKER_BACKEND_AUTH=jwt needs exactly one of BROKER_BACKEND_JWT_HS_SECRET, "
            "BROKER_BACKEND_JWT_PUBLIC_KEY_FILE and BROKER_BACKEND_JWT_JWKS_URL"
        )
    if secret is not None:
        if len(secret.encode()) < MIN_HS_SECRET_LENGTH:
            raise ConfigError(
                f"BROKER_BACKEND_JWT_HS_SECRET must be at least {MIN_HS_SECRET_LENGTH} bytes "
                "(RFC 7518 section 3.2)"
            )
        if "-----BEGIN" in secret:
            raise ConfigError(
                "BROKER_BACKEND_JWT_HS_SECRET looks like a PEM key; a public key is no HMAC "
                "secret (RFC 8725 section 3.1): use BROKER_BACKEND_JWT_PUBLIC_KEY_FILE"
            )
    if jwks_url is not None:
        _check_jwks_url(jwks_url)
    family = HMAC_ALGORITHMS if secret is not None else ASYMMETRIC_ALGORITHMS
    default = "HS256" if secret is not None else "RS256"
    return JwtSettings(
        issuer=required(environ, "BROKER_BACKEND_JWT_ISSUER", "the expected 'iss' claim"),
        audience=required(environ, "BROKER_BACKEND_JWT_AUDIENCE", "the expected 'aud' claim"),
        algorithms=_algorithms(environ, family, default),
        hs_secret=secret,
        public_key_file=key_file,
        jwks_url=jwks_url,
        leeway=read_int(
            environ, "BROKER_BACKEND_JWT_LEEWAY", DEFAULT_LEEWAY, low=0, high=MAX_LEEWAY
        ),
        user_claim=text(environ, "BROKER_BACKEND_JWT_USER_CLAIM") or DEFAULT_USER_CLAIM,
        tag_claims=read_pairs(environ, "BROKER_BACKEND_JWT_TAG_CLAIMS", MAX_TAG_KEY_LENGTH),
        jwks_timeout=read_float(
            environ,
            "BROKER_BACKEND_JWT_JWKS_TIMEOUT",
            DEFAULT_JWKS_TIMEOUT,
            high=60,
            bounds=BETWEEN_0_AND_60_SECONDS,
        ),
        jwks_cache_seconds=read_int(
            environ,
            "BROKER_BACKEND_JWT_JWKS_CACHE_SECONDS",
            DEFAULT_JWKS_CACHE_SECONDS,
            low=1,
            high=86400,
        ),
        jwks_min_refetch_seconds=read_int(
            environ,
            "BROKER_BACKEND_JWT_JWKS_MIN_REFETCH_SECONDS",
            DEFAULT_JWKS_MIN_REFETCH_SECONDS,
            low=0,
            high=3600,
        ),
    )


def _check_jwks_url(url: str) -> None:
    """The keys that decide who a user is must come over TLS: https, or http to a loopback
    host only (an issuer on the same machine, or tests), where nobody sits in between."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced IPv6 bracket, say
        raise ConfigError(
            f"BROKER_BACKEND_JWT_JWKS_URL must be an https URL, got {url!r}"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"BROKER_BACKEND_JWT_JWKS_URL must be an https URL, got {url!r}")
    if parts.scheme == "http" and not is_loopback(parts.hostname.lower(), LOOPBACK_NAMES):
        raise ConfigError(
            "BROKER_BACKEND_JWT_JWKS_URL must be an https URL (http only for a loopback "
            f"host: 127.0.0.0/8, ::1, localhost), got {url!r}"
        )


def _algorithms(
    environ: Mapping[str, str], family: tuple[str, ...], default: str
) -> tuple[str, ...]:
    name = "BROKER_BACKEND_JWT_ALGORITHMS"
    raw = text(environ, name) or default
    algorithms = tuple(dict.fromkeys(a.strip() for a in raw.split(",") if a.strip()))
    for alg in algorithms:
        if alg.lower() == "none":
            raise ConfigError(f"{name}: 'none' is never accepted (RFC 8725 section 3.1)")
        if alg not in HMAC_ALGORITHMS + ASYMMETRIC_ALGORITHMS:
            raise ConfigError(f"{name}: unknown JWS algorithm {alg!r}")
        if alg not in family:
            raise ConfigError(
                f"{name}: {alg} does not fit the configured key (an HMAC secret takes HS*, a "
                "public key or JWKS takes RS*/PS*/ES*/EdDSA; RFC 8725 section 3.1)"
            )
    if not algorithms:
        raise ConfigError(f"{name} must name at least one algorithm")
    return algorithms
