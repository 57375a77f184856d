"""Unpadded base64url (RFC 4648 section 5, padding dropped as in RFC 7515 section 2)."""

from __future__ import annotations

import base64


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64decode(text: str) -> bytes:
    """Padding is optional. Raises ``binascii.Error`` (a ValueError) on a bad length."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
