"""Rate limits, shared by every worker through Redis (fixed one-second windows).

``BROKER_RATE_LIMIT_PER_ACCESS_KEY``: requests per second one access key may make to the
AWS API. ``BROKER_RATE_LIMIT_PER_IDENTITY``: tokens per second one identity may get (AWS
applies 5 GetOpenIdToken calls per second per identity; contract section 8). Both are off
unless set.

The unsigned operations (GetId, GetOpenIdToken, UnlinkIdentity, GetCredentialsForIdentity)
need no credentials, so anyone who can reach the broker can call them: GetId on a pool
that allows unauthenticated identities writes a new identity (about 520 bytes of Redis)
per call. They are limited ON BY DEFAULT (issue 14 item 5), with values meant never to
stop an application that works within Cognito's own quotas (contract section 8: GetId 25
and GetOpenIdToken 200 requests per second for a whole account):

``BROKER_RATE_LIMIT_UNSIGNED_PER_ADDRESS`` (default 50): calls per second from one source
address, the four operations together. A device calls GetId once and GetOpenIdToken once
per token (600 s), so 50 a second serves some 30,000 devices behind one NAT address; it
is twice what AWS allows a whole account for GetId. Behind a reverse proxy every request
comes from the proxy's address: raise it, or set it off and limit at the proxy.

``BROKER_RATE_LIMIT_UNSIGNED_PER_POOL`` (default 500): calls per second for one identity
pool, from all addresses together: above the sum of AWS's per-account GetId and
GetOpenIdToken quotas, and a bound on how fast a pool can grow (500 identities a second).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from config.env import read_int, text

MAX_RATE: Final = 1_000_000
DEFAULT_UNSIGNED_PER_ADDRESS: Final = 50
DEFAULT_UNSIGNED_PER_POOL: Final = 500


@dataclass(frozen=True)
class RateLimitSettings:
    per_access_key: int | None = None
    per_identity: int | None = None
    unsigned_per_address: int | None = DEFAULT_UNSIGNED_PER_ADDRESS
    unsigned_per_pool: int | None = DEFAULT_UNSIGNED_PER_POOL

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RateLimitSettings:
        return cls(
            per_access_key=_rate(environ, "BROKER_RATE_LIMIT_PER_ACCESS_KEY", None),
            per_identity=_rate(environ, "BROKER_RATE_LIMIT_PER_IDENTITY", None),
            unsigned_per_address=_rate(
                environ, "BROKER_RATE_LIMIT_UNSIGNED_PER_ADDRESS", DEFAULT_UNSIGNED_PER_ADDRESS
            ),
            unsigned_per_pool=_rate(
                environ, "BROKER_RATE_LIMIT_UNSIGNED_PER_POOL", DEFAULT_UNSIGNED_PER_POOL
            ),
        )


def _rate(environ: Mapping[str, str], name: str, default: int | None) -> int | None:
    if text(environ, name).lower() == "off":
        return None
    invalid = "{name} must be requests per second (a whole number) or off"
    return read_int(environ, name, default, low=1, high=MAX_RATE, invalid=invalid)
