"""The connections of one worker whose request is still arriving, oldest first.

Why: a worker holds a bounded number of connections (``worker_connections``), and a client
that sends a request a byte at a time holds one until the request timeout. Kept here, by
the time each request began to arrive: all of them, and per source address, so that the
worker can hold each address to ``limit`` of them (closing that address's oldest past it)
and, when full, give the slot of the request arriving longest to a new connection. Each
change is O(1): two insertion-ordered dicts used as ordered sets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Arriving(Protocol):
    arriving_since: float  # monotonic; 0: no request arriving


C = TypeVar("C", bound=Arriving)


class ArrivingRequests(Generic[C]):
    def __init__(self, limit: int | None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit  # per address; None: no bound
        self._now = monotonic
        self._all: dict[C, None] = {}
        self._by_address: dict[str, dict[C, None]] = {}

    def update(self, conn: C, address: str, arriving: bool) -> C | None:
        """Record whether ``conn`` (from ``address``) has a request arriving now; the
        connection to close when its address went past the bound (its oldest), if any."""
        if arriving == bool(conn.arriving_since):
            return None
        if not arriving:
            conn.arriving_since = 0.0
            self._all.pop(conn, None)
            same = self._by_address.get(address)
            if same is not None:
                same.pop(conn, None)
                if not same:
                    del self._by_address[address]
            return None
        conn.arriving_since = self._now()
        self._all[conn] = None
        same = self._by_address.setdefault(address, {})
        same[conn] = None
        if self._limit is not None and len(same) > self._limit:
            return next(iter(same))
        return None

    def oldest(self, min_age: float) -> C | None:
        """The connection whose request has been arriving longest, if for ``min_age``."""
        oldest = next(iter(self._all), None)
        if oldest is None or self._now() - oldest.arriving_since < min_age:
            return None
        return oldest

    def __len__(self) -> int:
        return len(self._all)
