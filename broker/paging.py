"""Opaque, tamper-evident NextToken values.

A token names what it pages (``kind``), whose data (``scope``: a pool id, or "" for the
pool list) and the position after the last item returned. It is HMAC-SHA256-signed with a
secret kept in Redis (created once, shared by every process), so a forged token, or one
from another listing or pool, is refused with InvalidParameterException and never shows
other data. Positions are creation sequence numbers (or, for LookupDeveloperIdentity, the
last developer user id returned, in sorted order), so a walk is stable while data changes:
nothing that existed throughout is skipped or returned twice.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable

from broker.errors import InvalidParameterException

INVALID_TOKEN = "The NextToken is invalid or belongs to another listing."  # noqa: S105


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PageTokens:
    def __init__(self, secret: Callable[[], bytes]) -> None:
        self._secret_source = secret
        self._secret: bytes | None = None

    def _key(self) -> bytes:
        if self._secret is None:
            self._secret = self._secret_source()
        return self._secret

    def encode(self, kind: str, scope: str, after: int | str) -> str:
        payload = _b64(json.dumps([kind, scope, after], separators=(",", ":")).encode())
        mac = hmac.new(self._key(), payload.encode(), hashlib.sha256).digest()
        return f"{payload}.{_b64(mac)}"

    def decode(self, token: str, kind: str, scope: str) -> int:
        """The position of a numeric listing (a creation sequence number)."""
        after = self._decode(token, kind, scope)
        if type(after) is not int:
            raise InvalidParameterException(INVALID_TOKEN)
        return after

    def decode_text(self, token: str, kind: str, scope: str) -> str:
        """The position of a listing ordered by text (the last value returned)."""
        after = self._decode(token, kind, scope)
        if type(after) is not str:
            raise InvalidParameterException(INVALID_TOKEN)
        return after

    def _decode(self, token: str, kind: str, scope: str) -> object:
        payload, _, mac = token.partition(".")
        try:
            expected = hmac.new(self._key(), payload.encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(_unb64(mac), expected):
                raise InvalidParameterException(INVALID_TOKEN)
            token_kind, token_scope, after = json.loads(_unb64(payload))
        except (ValueError, TypeError, binascii.Error, UnicodeError):
            raise InvalidParameterException(INVALID_TOKEN) from None
        if token_kind != kind or token_scope != scope:
            raise InvalidParameterException(INVALID_TOKEN)
        after_value: object = after
        return after_value
