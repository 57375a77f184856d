"""Settings of the backend front door (``POST /v1/token``), read by ``Settings.from_env``.

Why a module of its own: the sidecar door has three session translators, each with its own
variables (one module each: ``config/backend_jwt.py``, ``backend_cookie.py``,
``backend_api_key.py``), and ``config/settings.py`` stays readable. Like the rest of ``config/``,
``BackendSettings.from_env`` is pure (it reads only the mapping it is given; key files and
JWKS URLs are opened later, when the app is built) and fails fast with a :class:`ConfigError`
naming the variable. Secrets are kept out of ``repr`` so a logged settings object leaks none.

When ``BROKER_BACKEND_AUTH`` is unset and the service listens on loopback, the door runs on
the documented development key (:data:`DEV_API_KEY`, pool ``default``, provider
``login.broker.dev``); off loopback, or with ``BROKER_BACKEND_AUTH=off``, the door is off:
the broker starts and ``/v1/token`` answers UNAVAILABLE with a message that names the
variable. A variable of a translator other
than the chosen one is refused, so a typo in the mode is never silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from config.aws_model import DEVELOPER_PROVIDER_NAME_PATTERN as PROVIDER_PATTERN
from config.aws_model import MAX_ID_LENGTH as MAX_POOL_ID_LENGTH
from config.aws_model import (  # the service model's limits (constraints.md)
    MAX_POOL_NAME_LENGTH,
    POOL_ID_PATTERN,
    POOL_NAME_PATTERN,
)
from config.aws_model import MAX_PROVIDER_NAME_LENGTH as MAX_PROVIDER_LENGTH
from config.backend_api_key import API_KEY_VARS, read_api_keys
from config.backend_cookie import COOKIE_VARS, CookieSettings
from config.backend_jwt import JWT_VARS, JwtSettings
from config.env import matches, read_choice, read_float, text
from config.errors import ConfigError

AUTH_MODES: Final = ("jwt", "cookie", "api_key", "off")
#: The door's development default (docs/backend.md): without BROKER_BACKEND_AUTH, while the
#: service listens on loopback only, the door trusts this documented key (``X-Api-Key``) on
#: a broker-owned pool, so that the sidecar's main job works with no configuration, like
#: the development AWS key pair. Off loopback it is refused, as a default and when named.
DEV_API_KEY: Final = "broker-development-api-key-loopback-only"
DEV_POOL_NAME: Final = "default"
DEV_DEVELOPER_PROVIDER: Final = "login.broker.dev"
DEV_KEY_OFF_LOOPBACK: Final = (
    "BROKER_BACKEND_API_KEYS names the documented development key, which works on loopback "
    "only: set your own key (32 or more characters) when BROKER_BIND is not loopback"
)
DEFAULT_CACHE_MIN_REMAINING: Final = 0.5
_MODE_VARS: Final = {"jwt": JWT_VARS, "cookie": COOKIE_VARS, "api_key": API_KEY_VARS}


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
    #: True: the development default (no BROKER_BACKEND_AUTH, loopback): DEV_API_KEY only.
    development_key: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, loopback: bool = False) -> BackendSettings:
        """``loopback``: the service listens on loopback only (BROKER_BIND), where the door
        runs on the development key when BROKER_BACKEND_AUTH is not set."""
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
        if auth is None and (pool_id is not None or pool_name is not None):
            named = "BROKER_BACKEND_POOL_ID" if pool_id is not None else "BROKER_BACKEND_POOL_NAME"
            raise ConfigError(
                f"{named} is set but BROKER_BACKEND_AUTH is not: set BROKER_BACKEND_AUTH "
                "(api_key, jwt or cookie) for the door to serve that pool, or unset "
                f"{named} (the development door on loopback keeps a pool of its own, "
                f"{DEV_POOL_NAME!r}, and never trusts its public key on yours)"
            )
        if auth not in (None, "off") and pool_id is None and pool_name is None:
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
        if auth == "off":
            return cls(cache_min_remaining=share)
        if auth is None and loopback:
            return cls(
                auth="api_key",
                pool_name=DEV_POOL_NAME,
                developer_provider=DEV_DEVELOPER_PROVIDER,
                api_keys=(DEV_API_KEY,),
                cache_min_remaining=share,
                development_key=True,
            )
        api_keys = read_api_keys(environ) if auth == "api_key" else ()
        if DEV_API_KEY in api_keys and not loopback:
            raise ConfigError(DEV_KEY_OFF_LOOPBACK)
        return cls(
            auth=auth,
            pool_id=pool_id,
            pool_name=pool_name,
            developer_provider=provider,
            jwt=JwtSettings.from_env(environ) if auth == "jwt" else None,
            cookie=CookieSettings.from_env(environ) if auth == "cookie" else None,
            api_keys=api_keys,
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
