"""Private keys at rest in Redis: sealed with AES-256-GCM under the key-encryption key
(``BROKER_KEY_ENCRYPTION_KEY``) when one is configured (NIST SP 800-38D; the kid is the
additional authenticated data, so a sealed key cannot be swapped under another kid)."""

from __future__ import annotations

import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc.util import urlsafe_b64decode, urlsafe_b64encode

SEALED = "A256GCM"
NONCE_BYTES = 12


class KeyEncryptionError(RuntimeError):
    """Stored keys cannot be opened: sealed but no key-encryption key, or the wrong one.
    The service refuses to start rather than generate a key nobody else can verify."""


class KeySealer:
    def __init__(self, kek: bytes | None) -> None:
        self._aead = AESGCM(kek) if kek is not None else None

    @property
    def sealing(self) -> bool:
        """A key-encryption key is set: keys are written sealed."""
        return self._aead is not None

    def seal(self, kid: str, pem: str) -> dict[str, Any]:
        """The record fields holding ``pem``: sealed when a KEK is set, plain otherwise."""
        if self._aead is None:
            return {"pem": pem}
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, pem.encode(), kid.encode())
        return {"sealed": {"alg": SEALED, "nonce": _text(nonce), "ct": _text(sealed)}}

    def open(self, kid: str, record: dict[str, Any]) -> str:
        if "pem" in record:
            return str(record["pem"])
        sealed = record.get("sealed") or {}
        if sealed.get("alg") != SEALED:
            raise KeyEncryptionError(f"signing key {kid} is stored in an unknown form")
        if self._aead is None:
            raise KeyEncryptionError(
                "the signing keys in Redis are encrypted and BROKER_KEY_ENCRYPTION_KEY is not "
                "set: refusing to start"
            )
        try:
            plain = self._aead.decrypt(_bytes(sealed["nonce"]), _bytes(sealed["ct"]), kid.encode())
        except (InvalidTag, ValueError, KeyError, TypeError, AttributeError):
            raise KeyEncryptionError(
                f"signing key {kid} does not open with BROKER_KEY_ENCRYPTION_KEY (wrong key?): "
                "refusing to start"
            ) from None
        return plain.decode()


def _text(data: bytes) -> str:
    return urlsafe_b64encode(data).decode()


def _bytes(text: str) -> bytes:
    return urlsafe_b64decode(text.encode("ascii"))
