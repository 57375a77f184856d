"""Rate limits per access key and per identity (off unless configured), and of the
unsigned operations per source address and per pool (on by default; ``config/limits.py``
says why and with which values).

Answers TooManyRequestsException (HTTP 429, so botocore's default retry mode backs off; the
backend door maps it to RATE_LIMITED). Contract section 8 lists AWS's own quotas.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from broker.errors import TooManyRequestsException
from config.limits import RateLimitSettings

ACCESS_KEY_EXCEEDED = "Rate exceeded: at most {limit} requests per second for access key {key}."
IDENTITY_EXCEEDED = "Rate exceeded: at most {limit} tokens per second for identity '{identity}'."
ADDRESS_EXCEEDED = (
    "Rate exceeded: at most {limit} unsigned requests per second from address {address}."
)
POOL_EXCEEDED = "Rate exceeded: at most {limit} unsigned requests per second for pool '{pool}'."


class RateCounter(Protocol):
    def count(self, scope: str, subject: str, second: int) -> int: ...


class RateLimiter:
    def __init__(
        self, settings: RateLimitSettings, counter: RateCounter, clock: Callable[[], float]
    ) -> None:
        self._settings = settings
        self._counter = counter
        self._clock = clock

    def check_access_key(self, access_key_id: str) -> None:
        limit = self._settings.per_access_key
        if limit is not None and self._hits("key", access_key_id) > limit:
            raise TooManyRequestsException(
                ACCESS_KEY_EXCEEDED.format(limit=limit, key=access_key_id)
            )

    def check_identity(self, identity_id: str) -> None:
        limit = self._settings.per_identity
        if limit is not None and self._hits("identity", identity_id) > limit:
            raise TooManyRequestsException(
                IDENTITY_EXCEEDED.format(limit=limit, identity=identity_id)
            )

    def check_unsigned_address(self, address: str) -> None:
        """An unsigned operation from ``address`` (the client's, as the server saw it)."""
        limit = self._settings.unsigned_per_address
        if limit is not None and self._hits("address", address) > limit:
            raise TooManyRequestsException(ADDRESS_EXCEEDED.format(limit=limit, address=address))

    def check_unsigned_pool(self, pool_id: str) -> None:
        """An unsigned operation on an existing pool (checked once the pool is found, so
        made-up pool ids leave no counter behind)."""
        limit = self._settings.unsigned_per_pool
        if limit is not None and self._hits("pool", pool_id) > limit:
            raise TooManyRequestsException(POOL_EXCEEDED.format(limit=limit, pool=pool_id))

    def _hits(self, scope: str, subject: str) -> int:
        return self._counter.count(scope, subject, int(self._clock()))
