"""Translator ``api_key`` (trusted mode): the backend itself authenticates with an API key
and names the user in the body.

The key arrives as ``X-Api-Key: <key>`` or ``Authorization: Bearer <key>`` (RFC 6750
section 2.1). It is compared in constant time with every configured key (``hmac``'s
``compare_digest`` over SHA-256 digests, so neither the length nor the position of a
mismatch shows in the timing), and every key is compared, so which key matched does not
show either.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Final

from broker.backend.errors import SessionRejected
from broker.backend.translators.session import Credentials, Session, bearer_token

HEADER: Final = "X-Api-Key"
CHALLENGE: Final = 'Bearer realm="identity-broker"'
MISSING: Final = "Missing API key: send 'X-Api-Key: <key>' or 'Authorization: Bearer <key>'."
WRONG: Final = "The API key is not valid."
TWO_KEYS: Final = "Send the API key once: X-Api-Key and Authorization disagree."


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class ApiKeyTranslator:
    names_user_in_body = True

    def __init__(self, keys: tuple[str, ...]) -> None:
        if not keys:
            raise ValueError("trusted mode needs at least one API key")
        self._digests = tuple(_digest(key) for key in keys)

    @classmethod
    def from_settings(cls, keys: tuple[str, ...], clock: Callable[[], float]) -> ApiKeyTranslator:
        return cls(keys)

    def translate(self, credentials: Credentials) -> Session:
        header = credentials.headers.get(HEADER, "").strip() or None
        bearer = bearer_token(credentials.headers)
        if header is not None and bearer is not None and header != bearer:
            raise SessionRejected(TWO_KEYS, challenge=CHALLENGE)
        presented = header or bearer
        if presented is None:
            raise SessionRejected(MISSING, challenge=CHALLENGE)
        digest = _digest(presented)
        matched = False
        for known in self._digests:
            matched |= hmac.compare_digest(digest, known)
        if not matched:
            raise SessionRejected(WRONG, challenge=CHALLENGE)
        return Session(user_id=None)
