"""Random (version 4) UUIDs as text, for request ids and pool and identity ids."""

from __future__ import annotations

import os

__all__ = ["random_uuid"]


def random_uuid() -> str:
    """``str(uuid.uuid4())``, the same 122 random bits in the same places (RFC 9562 section
    5.4: version nibble 4, variant bits 10), at half the cost: two are made per token
    request, and ``uuid.UUID`` builds an int and checks its arguments for each."""
    h = os.urandom(16).hex()
    variant = "89ab"[int(h[16], 16) & 3]  # the octet's top two bits set to 10
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"
