"""Session translators, chosen by ``BROKER_BACKEND_AUTH`` through one explicit table.

Each entry builds its translator from the settings and the app's clock; an unknown mode is
refused by ``config.backend`` before it gets here, and no mode means no translator (the
door then answers UNAVAILABLE).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from broker.backend.translators.api_key import ApiKeyTranslator
from broker.backend.translators.flask_cookie import FlaskCookieTranslator
from broker.backend.translators.jwt_bearer import JwtTranslator
from broker.backend.translators.session import Credentials, Session, SessionTranslator
from config.backend import BackendSettings
from config.errors import ConfigError

__all__ = ["TRANSLATORS", "Credentials", "Session", "SessionTranslator", "build_translator"]

Clock = Callable[[], float]

#: Settings built by hand rather than by ``config.backend`` may name a mode without its part.
MISSING_SETTINGS: Final = "BROKER_BACKEND_AUTH={mode} but the settings hold no {mode} section"


def _jwt(settings: BackendSettings, clock: Clock) -> SessionTranslator:
    if settings.jwt is None:  # config.backend builds it for mode "jwt"
        raise ConfigError(MISSING_SETTINGS.format(mode="jwt"))
    return JwtTranslator.from_settings(settings.jwt, clock)


def _cookie(settings: BackendSettings, clock: Clock) -> SessionTranslator:
    if settings.cookie is None:  # config.backend builds it for mode "cookie"
        raise ConfigError(MISSING_SETTINGS.format(mode="cookie"))
    return FlaskCookieTranslator.from_settings(settings.cookie, clock)


def _api_key(settings: BackendSettings, clock: Clock) -> SessionTranslator:
    return ApiKeyTranslator.from_settings(settings.api_keys, clock)


#: BROKER_BACKEND_AUTH -> how to build that translator.
TRANSLATORS: Final[dict[str, Callable[[BackendSettings, Clock], SessionTranslator]]] = {
    "jwt": _jwt,
    "cookie": _cookie,
    "api_key": _api_key,
}


def build_translator(settings: BackendSettings, clock: Clock) -> SessionTranslator | None:
    if settings.auth is None:
        return None
    return TRANSLATORS[settings.auth](settings, clock)
