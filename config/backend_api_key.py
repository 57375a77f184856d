"""Settings of the backend door's ``api_key`` mode (``BROKER_BACKEND_AUTH=api_key``): a
trusted backend names the user in the body and proves itself with one of these keys. Read
by ``config.backend``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from config.env import text
from config.errors import ConfigError

MIN_API_KEY_LENGTH: Final = 32
API_KEY_VARS: Final = ("BROKER_BACKEND_API_KEYS",)


def read_api_keys(environ: Mapping[str, str]) -> tuple[str, ...]:
    name = "BROKER_BACKEND_API_KEYS"
    keys = tuple(k.strip() for k in text(environ, name).split(",") if k.strip())
    if not keys:
        raise ConfigError(f"BROKER_BACKEND_AUTH=api_key needs {name} (comma-separated keys)")
    for index, key in enumerate(keys, 1):
        if len(key) < MIN_API_KEY_LENGTH or not key.isprintable() or " " in key:
            raise ConfigError(
                f"{name}: key #{index} must be at least {MIN_API_KEY_LENGTH} printable "
                "characters without spaces"
            )
    return keys
