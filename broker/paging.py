"""Opaque, tamper-evident NextToken values.

A token names what it pages (``kind``), whose data (``scope``: a pool id, or "" for the
pool list) and the position after the last item returned. The position is sealed with
AES-256-GCM (random 96-bit nonce) under a key derived by HKDF-SHA256 from a secret kept in
Redis (created once, shared by every process), with kind and scope as associated data. So
a token reveals nothing (LookupDeveloperIdentity's position is a developer user id), and a
forged or changed token, or one from another listing or pool, fails authentication and is
refused with InvalidParameterException, never showing other data. Positions are creation
sequence numbers (or, for LookupDeveloperIdentity, the last developer user id returned, in
sorted order), so a walk is stable while data changes: nothing that existed throughout is
skipped or returned twice.
"""

from __future__ import annotations

import binascii
import json
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc.util import urlsafe_b64decode, urlsafe_b64encode

from broker.errors import InvalidParameterException

INVALID_TOKEN = "The NextToken is invalid or belongs to another listing."  # noqa: S105
KEY_LABEL = b"identity-broker NextToken AES-256-GCM v1"  # HKDF info: this key, this use
NONCE_BYTES = 12
TAG_BYTES = 16


def _associated_data(kind: str, scope: str) -> bytes:
    return json.dumps([kind, scope], separators=(",", ":")).encode()


class PageTokens:
    def __init__(self, secret: Callable[[], bytes]) -> None:
        self._secret_source = secret
        self._aead: AESGCM | None = None

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_LABEL)
            self._aead = AESGCM(hkdf.derive(self._secret_source()))
        return self._aead

    def encode(self, kind: str, scope: str, after: int | str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        plaintext = json.dumps(after, separators=(",", ":")).encode()
        sealed = self._cipher().encrypt(nonce, plaintext, _associated_data(kind, scope))
        return urlsafe_b64encode(nonce + sealed).decode()

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
        try:
            raw = urlsafe_b64decode(token.encode("ascii"))
            spelled_once = urlsafe_b64encode(raw).decode() == token  # one spelling only
            if len(raw) < NONCE_BYTES + TAG_BYTES or not spelled_once:
                raise InvalidParameterException(INVALID_TOKEN)
            nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
            plaintext = self._cipher().decrypt(nonce, sealed, _associated_data(kind, scope))
            after: object = json.loads(plaintext)
        except (InvalidTag, ValueError, binascii.Error, UnicodeError):
            raise InvalidParameterException(INVALID_TOKEN) from None
        return after
