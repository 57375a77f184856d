"""Settings of the backend front door (``POST /v1/token``), read by ``Settings.from_env``.

Why a module of its own: the sidecar door has three session translators, each with its own
variables, and ``config/settings.py`` stays readable. Like the rest of ``config/``,
``BackendSettings.from_env`` is pure (it reads only the mapping it is given; key files and
JWKS URLs are opened later, when the app is built) and fails fast with a :class:`ConfigError`
naming the variable. Secrets are kept out of ``repr`` so a logged settings object leaks none.

When ``BROKER_BACKEND_AUTH`` is unset the door is off: the broker starts and ``/v1/token``
answers UNAVAILABLE with a message that names the variable. A variable of a translator other
than the chosen one is refused, so a typo in the mode is never silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from config.aws_model import DEVELOPER_PROVIDER_NAME_PATTERN as PROVIDER_PATTERN
from config.aws_model import MAX_ID_LENGTH as MAX_POOL_ID_LENGTH
from config.aws_model import (  # the service model's limits (constraints.md)
    MAX_POOL_NAME_LENGTH,
    MAX_TAG_KEY_LENGTH,
    POOL_ID_PATTERN,
    POOL_NAME_PATTERN,
)
from config.aws_model import MAX_PROVIDER_NAME_LENGTH as MAX_PROVIDER_LENGTH
from config.env import (
    BETWEEN_0_AND_60_SECONDS,
    is_loopback,
    matches,
    read_choice,
    read_float,
    read_int,
    required,
    text,
)
from config.errors import ConfigError

AUTH_MODES: Final = ("jwt", "cookie", "api_key")


#: RFC 7518 section 3.2: an HMAC key at least as long as the hash output (HS256: 32 bytes).
MIN_HS_SECRET_LENGTH: Final = 32
MIN_API_KEY_LENGTH: Final = 32
MIN_COOKIE_SECRET_LENGTH: Final = 16
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
DEFAULT_COOKIE_SALT: Final = "cookie-session"  # Flask's SecureCookieSessionInterface.salt
DEFAULT_COOKIE_NAME: Final = "session"  # Flask's SESSION_COOKIE_NAME
DEFAULT_COOKIE_USER_KEY: Final = "user_id"
DEFAULT_COOKIE_MAX_AGE: Final = 31 * 24 * 3600  # Flask's PERMANENT_SESSION_LIFETIME
DEFAULT_CACHE_MIN_REMAINING: Final = 0.5

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
COOKIE_VARS: Final = (
    "BROKER_BACKEND_COOKIE_SECRET",
    "BROKER_BACKEND_COOKIE_SALT",
    "BROKER_BACKEND_COOKIE_NAME",
    "BROKER_BACKEND_COOKIE_USER_KEY",
    "BROKER_BACKEND_COOKIE_MAX_AGE",
    "BROKER_BACKEND_COOKIE_TAG_KEYS",
)
API_KEY_VARS: Final = ("BROKER_BACKEND_API_KEYS",)
_MODE_VARS: Final = {"jwt": JWT_VARS, "cookie": COOKIE_VARS, "api_key": API_KEY_VARS}


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


@dataclass(frozen=True)
class CookieSettings:
    """Mode ``cookie``: the backend's Flask SECRET_KEY and session cookie conventions."""

    secret: str = field(repr=False)
    salt: str = DEFAULT_COOKIE_SALT
    name: str = DEFAULT_COOKIE_NAME
    user_key: str = DEFAULT_COOKIE_USER_KEY
    max_age: int = DEFAULT_COOKIE_MAX_AGE
    tag_keys: Mapping[str, str] = field(default_factory=dict)  # session key -> principal tag


@dataclass(frozen=True)
class BackendSettings:
    auth: str | None = None  # None: the door answers UNAVAILABLE (not configured)
    pool_id: str | None = None
    pool_name: str | None = None
    developer_provider: str | None = None
    jwt: JwtSettings | None = None
    cookie: CookieSettings | None = None
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    cache_min_remaining: float = DEFAULT_CACHE_MIN_REMAINING

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> BackendSettings:
        auth = read_choice(
            environ, "BROKER_BACKEND_AUTH", AUTH_MODES, None, "{name} must be one of {choices}"
        )
        for mode, names in _MODE_VARS.items():
            stray = [name for name in names if text(environ, name)]
            if stray and mode != auth:
                raise ConfigError(
                    f"{stray[0]} is set but BROKER_BACKEND_AUTH is not {mode!r}; "
                    f"set BROKER_BACKEND_AUTH={mode} or unset it"
                )
        pool_id, pool_name, provider = _pool(environ)
        if auth is not None and pool_id is None and pool_name is None:
            raise ConfigError(
                "BROKER_BACKEND_AUTH is set but no pool is: set BROKER_BACKEND_POOL_ID, or "
                "BROKER_BACKEND_POOL_NAME and BROKER_BACKEND_DEVELOPER_PROVIDER"
            )
        # The share of a token's lifetime that must be left for the cache to hand it out;
        # 1 turns the cache off (no token is ever fresh enough).
        share = read_float(
            environ,
            "BROKER_BACKEND_CACHE_MIN_REMAINING",
            DEFAULT_CACHE_MIN_REMAINING,
            high=1,
            invalid="{name} must be a fraction such as 0.5, got {raw!r}",
            bounds="{name} must be above 0 and at most 1, got {raw!r}",
        )
        return cls(
            auth=auth,
            pool_id=pool_id,
            pool_name=pool_name,
            developer_provider=provider,
            jwt=_jwt(environ) if auth == "jwt" else None,
            cookie=_cookie(environ) if auth == "cookie" else None,
            api_keys=_api_keys(environ) if auth == "api_key" else (),
            cache_min_remaining=share,
        )


def _pool(environ: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
    pool_id = text(environ, "BROKER_BACKEND_POOL_ID") or None
    name = text(environ, "BROKER_BACKEND_POOL_NAME") or None
    provider = text(environ, "BROKER_BACKEND_DEVELOPER_PROVIDER") or None
    if pool_id is not None:
        if name is not None or provider is not None:
            raise ConfigError(
                "BROKER_BACKEND_POOL_ID excludes BROKER_BACKEND_POOL_NAME and "
                "BROKER_BACKEND_DEVELOPER_PROVIDER (the pool's own provider is used)"
            )
        if not matches(POOL_ID_PATTERN, pool_id, MAX_POOL_ID_LENGTH):
            raise ConfigError(
                f"BROKER_BACKEND_POOL_ID must look like us-east-1:<uuid>, got {pool_id!r}"
            )
        return pool_id, None, None
    if (name is None) != (provider is None):
        raise ConfigError(
            "BROKER_BACKEND_POOL_NAME and BROKER_BACKEND_DEVELOPER_PROVIDER go together"
        )
    if name is not None and not matches(POOL_NAME_PATTERN, name, MAX_POOL_NAME_LENGTH):
        raise ConfigError(
            f"BROKER_BACKEND_POOL_NAME must match {POOL_NAME_PATTERN} "
            f"(1..{MAX_POOL_NAME_LENGTH} characters), got {name!r}"
        )
    if provider is not None and not matches(PROVIDER_PATTERN, provider, MAX_PROVIDER_LENGTH):
        raise ConfigError(
            f"BROKER_BACKEND_DEVELOPER_PROVIDER must match {PROVIDER_PATTERN} "
            f"(1..{MAX_PROVIDER_LENGTH} characters), got {provider!r}"
        )
    return None, name, provider


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
        tag_claims=_tag_map(environ, "BROKER_BACKEND_JWT_TAG_CLAIMS"),
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


def _cookie(environ: Mapping[str, str]) -> CookieSettings:
    secret = required(environ, "BROKER_BACKEND_COOKIE_SECRET", "the backend's Flask SECRET_KEY")
    if len(secret) < MIN_COOKIE_SECRET_LENGTH:
        raise ConfigError(
            f"BROKER_BACKEND_COOKIE_SECRET must be at least {MIN_COOKIE_SECRET_LENGTH} characters"
        )
    return CookieSettings(
        secret=secret,
        salt=text(environ, "BROKER_BACKEND_COOKIE_SALT") or DEFAULT_COOKIE_SALT,
        name=text(environ, "BROKER_BACKEND_COOKIE_NAME") or DEFAULT_COOKIE_NAME,
        user_key=text(environ, "BROKER_BACKEND_COOKIE_USER_KEY") or DEFAULT_COOKIE_USER_KEY,
        max_age=read_int(
            environ, "BROKER_BACKEND_COOKIE_MAX_AGE", DEFAULT_COOKIE_MAX_AGE, low=1, high=10**9
        ),
        tag_keys=_tag_map(environ, "BROKER_BACKEND_COOKIE_TAG_KEYS"),
    )


def _api_keys(environ: Mapping[str, str]) -> tuple[str, ...]:
    name = "BROKER_BACKEND_API_KEYS"
    keys = tuple(k.strip() for k in text(environ, name).split(",") if k.strip())
    if not keys:
        raise ConfigError(f"BROKER_BACKEND_AUTH=api_key needs {name} (comma-separated keys)")
    for index, key in enumerate(keys, 1):
        if len(key) < MIN_API_KEY_LENGTH or not key.isprintable() or " " in key:
            raise ConfigError(
                f"{name}: key #{index} must be at least {MIN_API_KEY_LENGTH} printable "
                "characters without spaces"
            )
    return keys


def _tag_map(environ: Mapping[str, str], name: str) -> dict[str, str]:
    """``source:tag,source2:tag2`` -> {source: tag}; the tag is a principal tag key."""
    result: dict[str, str] = {}
    raw = text(environ, name)
    for item in (i.strip() for i in raw.split(",") if i.strip()):
        source, sep, tag = (part.strip() for part in item.partition(":"))
        if not sep or not source or not tag:
            raise ConfigError(f"{name} must be comma-separated SOURCE:TAG pairs, got {item!r}")
        if len(tag) > MAX_TAG_KEY_LENGTH:
            raise ConfigError(
                f"{name}: tag {tag[:20]!r}... is over {MAX_TAG_KEY_LENGTH} characters"
            )
        if tag in result.values():
            raise ConfigError(f"{name}: tag {tag!r} is named twice")
        result[source] = tag
    return result
