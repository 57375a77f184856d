"""Optional rate limits (off by default), shared by every worker through Redis.

``BROKER_RATE_LIMIT_PER_ACCESS_KEY``: requests per second one access key may make to the
AWS API. ``BROKER_RATE_LIMIT_PER_IDENTITY``: tokens per second one identity may get (AWS
applies 5 GetOpenIdToken calls per second per identity; contract section 8).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from config.env import read_int, text

MAX_RATE = 1_000_000


@dataclass(frozen=True)
class RateLimitSettings:
    per_access_key: int | None = None
    per_identity: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RateLimitSettings:
        return cls(
            per_access_key=_rate(environ, "BROKER_RATE_LIMIT_PER_ACCESS_KEY"),
            per_identity=_rate(environ, "BROKER_RATE_LIMIT_PER_IDENTITY"),
        )


def _rate(environ: Mapping[str, str], name: str) -> int | None:
    if text(environ, name).lower() == "off":
        return None
    invalid = "{name} must be requests per second (a whole number) or off"
    return read_int(environ, name, None, low=1, high=MAX_RATE, invalid=invalid)
