"""Settings of the backend door's ``cookie`` mode (``BROKER_BACKEND_AUTH=cookie``): the
session is the backend's own Flask session cookie, opened with its SECRET_KEY and Flask's
conventions (salt, cookie name, lifetime). Read by ``config.backend``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from config.aws_model import MAX_TAG_KEY_LENGTH
from config.env import read_int, read_pairs, required, text
from config.errors import ConfigError

MIN_COOKIE_SECRET_LENGTH: Final = 16
DEFAULT_COOKIE_SALT: Final = "cookie-session"  # Flask's SecureCookieSessionInterface.salt
DEFAULT_COOKIE_NAME: Final = "session"  # Flask's SESSION_COOKIE_NAME
DEFAULT_COOKIE_USER_KEY: Final = "user_id"
DEFAULT_COOKIE_MAX_AGE: Final = 31 * 24 * 3600  # Flask's PERMANENT_SESSION_LIFETIME

COOKIE_VARS: Final = (
    "BROKER_BACKEND_COOKIE_SECRET",
    "BROKER_BACKEND_COOKIE_SALT",
    "BROKER_BACKEND_COOKIE_NAME",
    "BROKER_BACKEND_COOKIE_USER_KEY",
    "BROKER_BACKEND_COOKIE_MAX_AGE",
    "BROKER_BACKEND_COOKIE_TAG_KEYS",
)


@dataclass(frozen=True)
class CookieSettings:
    """Mode ``cookie``: the backend's Flask SECRET_KEY and session cookie conventions."""

    secret: str = field(repr=False)
    salt: str = DEFAULT_COOKIE_SALT
    name: str = DEFAULT_COOKIE_NAME
    user_key: str = DEFAULT_COOKIE_USER_KEY
    max_age: int = DEFAULT_COOKIE_MAX_AGE
    tag_keys: Mapping[str, str] = field(default_factory=dict)  # session key -> principal tag

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> CookieSettings:
        return _cookie(environ)


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
        tag_keys=read_pairs(environ, "BROKER_BACKEND_COOKIE_TAG_KEYS", MAX_TAG_KEY_LENGTH),
    )
