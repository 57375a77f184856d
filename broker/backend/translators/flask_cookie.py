"""Translator ``cookie``: the backend's own Flask session cookie, verified as Flask does.

Why it is byte-compatible: Flask's ``SecureCookieSessionInterface`` signs the session with
itsdangerous' ``URLSafeTimedSerializer`` (salt ``cookie-session``, HMAC key derivation,
SHA-1 digest, Flask's tagged JSON). The same construction with the backend's
``SECRET_KEY`` reads the cookie; a changed byte breaks the HMAC (``BadSignature``), and a
cookie older than the backend's ``PERMANENT_SESSION_LIFETIME`` (``max_age``) is expired.
Time comes from the app's clock, so tests can move it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Final

from flask.json.tag import TaggedJSONSerializer
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from broker.backend.errors import SessionRejected
from broker.backend.translators.session import (
    Credentials,
    Session,
    session_from,
    user_id_from,
)
from config.backend_cookie import CookieSettings

MISSING: Final = "Missing session cookie {name!r}: forward the user's Cookie header."
TAMPERED: Final = "The session cookie's signature does not verify."
EXPIRED: Final = "The session cookie has expired."
NOT_A_SESSION: Final = "The session cookie does not hold a session object."
NO_USER: Final = "The session holds no user ({key!r} is missing)."


class ClockedSigner(TimestampSigner):
    """itsdangerous' timestamp signer reading the app's clock instead of ``time.time``."""

    def __init__(self, *args: Any, clock: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())


class FlaskCookieTranslator:
    names_user_in_body = False

    def __init__(self, settings: CookieSettings, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._serializer = URLSafeTimedSerializer(
            settings.secret,
            salt=settings.salt,
            serializer=TaggedJSONSerializer(),
            signer=ClockedSigner,
            signer_kwargs={
                "key_derivation": "hmac",
                "digest_method": hashlib.sha1,
                "clock": clock,
            },
        )

    @classmethod
    def from_settings(
        cls, settings: CookieSettings, clock: Callable[[], float]
    ) -> FlaskCookieTranslator:
        return cls(settings, clock)

    def translate(self, credentials: Credentials) -> Session:
        name = self._settings.name
        cookie = credentials.cookies.get(name)
        if not cookie:
            raise SessionRejected(MISSING.format(name=name))
        try:
            data = self._serializer.loads(cookie, max_age=self._settings.max_age)
        except SignatureExpired:
            raise SessionRejected(EXPIRED) from None
        except BadSignature:  # also BadPayload, BadTimeSignature
            raise SessionRejected(TAMPERED) from None
        except Exception:  # a signed payload the tagged JSON cannot read: still no session
            raise SessionRejected(NOT_A_SESSION) from None
        if not isinstance(data, dict):
            raise SessionRejected(NOT_A_SESSION)
        key = self._settings.user_key
        if data.get(key) is None:
            raise SessionRejected(NO_USER.format(key=key))
        user_id = user_id_from(data[key], what=f"{key!r} value")
        return session_from(user_id, data, self._settings.tag_keys)
