"""Settings of the signing keys: encryption at rest, refresh and retention.

``BROKER_KEY_ENCRYPTION_KEY`` is a key-encryption key (32 bytes, as 64 hex digits or
unpadded/padded base64url) for the private keys the broker keeps in Redis: with it, each
stored key is sealed with AES-256-GCM. Pure like the rest of ``config/``; the secret is
kept out of ``repr``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from config.aws_model import MAX_TOKEN_DURATION
from config.env import read_float, read_int, text
from config.errors import ConfigError

KEK_BYTES: Final = 32
DEFAULT_REFRESH_SECONDS: Final = 10.0
#: The longest TokenDuration (contract section 5) plus the clock skew a verifier may allow:
#: a retired key stays published this long, so every token it signed has expired by then.
CLOCK_SKEW: Final = 300
DEFAULT_RETENTION_SECONDS: Final = MAX_TOKEN_DURATION + CLOCK_SKEW


@dataclass(frozen=True)
class KeySettings:
    encryption_key: bytes | None = field(default=None, repr=False)
    refresh_seconds: float = DEFAULT_REFRESH_SECONDS
    retention_seconds: int = DEFAULT_RETENTION_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> KeySettings:
        return cls(
            encryption_key=_kek(text(environ, "BROKER_KEY_ENCRYPTION_KEY")),
            refresh_seconds=read_float(
                environ,
                "BROKER_KEY_REFRESH_SECONDS",
                DEFAULT_REFRESH_SECONDS,
                high=3600,
                zero=True,
                invalid="{name} must be a number, got {raw!r}",
                bounds="{name} must be 0 to 3600, got {raw!r}",
            ),
            retention_seconds=_retention(environ),
        )


def _kek(raw: str) -> bytes | None:
    if not raw:
        return None
    decoded: bytes | None = None
    if len(raw) == 2 * KEK_BYTES:
        try:
            decoded = bytes.fromhex(raw)
        except ValueError:
            decoded = None
    if decoded is None:
        try:
            decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        except (binascii.Error, ValueError):
            decoded = None
    if decoded is None or len(decoded) != KEK_BYTES:
        raise ConfigError(
            f"BROKER_KEY_ENCRYPTION_KEY must be {KEK_BYTES} random bytes as 64 hex digits or "
            'base64url (generate one with: python3 -c "import secrets; '
            'print(secrets.token_hex(32))")'
        )
    return decoded


def _retention(environ: Mapping[str, str]) -> int:
    name = "BROKER_KEY_RETENTION_SECONDS"
    value = read_int(
        environ,
        name,
        DEFAULT_RETENTION_SECONDS,
        invalid="{name} must be whole seconds, got {raw!r}",
    )
    if value < DEFAULT_RETENTION_SECONDS:
        raise ConfigError(
            f"{name} must be at least {DEFAULT_RETENTION_SECONDS} "
            "(the longest token lifetime plus clock skew), or tokens would outlive their key"
        )
    return value
