"""The token cache's rules: what makes two requests the same, when a cached token is still
good to hand out, and how concurrent misses share one signature.

Why: AWS's advice to callers is to cache tokens for their duration (contract section 8);
the sidecar does it for them. A request is the same when it would yield the same claims:
same issuer, pool, identity, developer login, tags and duration. The backend door's key
hashes all but the identity (``login_cache_key``) and each entry names the identity it was
signed for: a login has one identity at a time, and an entry is a hit only while it names
the identity the login resolves to now, so the door reads the entry in the same Redis round
trip that resolves the login (``RedisStore.resolve_login`` with ``peek``). Upstream mode keys by
the identity itself (``cache_key``).
A cached token is handed out while more than ``min_remaining`` of its lifetime is left
(default half), so a caller always gets a useful token and never an expired one; time is the
app's clock. Concurrent misses for one key are coalesced: the first takes a short lock
(``SET NX PX``) and signs; the others poll the entry for a bounded time and only then sign
themselves, so a burst signs once or a few times, not once per request.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from broker.errors import StoreUnavailable
from broker.http.exchange import COMPACT_JSON
from broker.store.token_cache import CachedToken, RedisTokenCache, entry_key

LOCK_TTL_MS: Final = 5_000  # longer than any signature takes; a dead holder frees it
WAIT_SECONDS: Final = 1.0  # how long a coalesced miss waits before signing itself
POLL_SECONDS: Final = 0.005


@dataclass(frozen=True)
class CacheKey:
    pool_id: str
    entry: str


def cache_key(
    *,
    issuer: str,
    pool_id: str,
    identity_id: str,
    provider: str,
    user_id: str,
    tags: Mapping[str, str],
    duration: int,
) -> CacheKey:
    """Everything the token's claims depend on except the time, hashed (SHA-256) so the key
    stays short and holds no user id or tag value in clear."""
    return _key(pool_id, [issuer, identity_id, provider, user_id, sorted(tags.items()), duration])


def login_cache_key(
    *,
    issuer: str,
    pool_id: str,
    provider: str,
    user_id: str,
    tags: Mapping[str, str],
    duration: int,
) -> CacheKey:
    """As :func:`cache_key` but without the identity, which the entry names instead (so the
    key is known before the login is resolved)."""
    return _key(pool_id, ["login", issuer, provider, user_id, sorted(tags.items()), duration])


def _key(pool_id: str, material: list[object]) -> CacheKey:
    text = COMPACT_JSON.encode(material)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return CacheKey(pool_id, entry_key(pool_id, digest))


def is_fresh(cached: CachedToken, now: float, min_remaining: float) -> bool:
    """More than ``min_remaining`` of the lifetime left (and so, never expired)."""
    lifetime = cached.expires_at - cached.issued_at
    left = cached.expires_at - now
    return left > 0 and left > min_remaining * lifetime


class CoalescingTokenCache:
    def __init__(
        self,
        store: RedisTokenCache,
        *,
        min_remaining: float,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._min_remaining = min_remaining
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self._min_remaining < 1

    def get_or_sign(
        self,
        key: CacheKey,
        sign: Callable[[], CachedToken],
        *,
        identity_id: str,
        seen: str | None,
    ) -> tuple[CachedToken, bool]:
        """The token for ``key`` and whether it came from the cache: only an entry signed
        for ``identity_id`` is a hit. ``seen`` is the entry's raw value as the caller read it
        with the login (None: absent), so the first look costs no round trip."""
        if not self.enabled:
            token = sign()
            self._store.count_signature(key.pool_id)
            return token, False
        hit = self._usable(None if seen is None else CachedToken.decode(seen), identity_id)
        if hit is not None:
            return hit, True
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            holder = self._store.try_lock(key.entry, LOCK_TTL_MS)
            if holder is not None:
                return self._sign_holding(key, sign, holder, identity_id)
            if time.monotonic() >= deadline:
                return self._sign_and_put(key, sign, None), False  # waited enough
            time.sleep(POLL_SECONDS)
            hit = self._fresh(key, identity_id)
            if hit is not None:
                return hit, True

    def _sign_holding(
        self, key: CacheKey, sign: Callable[[], CachedToken], holder: str, identity_id: str
    ) -> tuple[CachedToken, bool]:
        try:
            hit = self._fresh(key, identity_id)  # a holder before this one may have stored it
            if hit is not None:
                self._store.release(key.entry, holder)
                return hit, True
            return self._sign_and_put(key, sign, holder), False
        except BaseException:
            with contextlib.suppress(StoreUnavailable):  # keep the original error
                self._store.release(key.entry, holder)
            raise

    def _sign_and_put(
        self, key: CacheKey, sign: Callable[[], CachedToken], holder: str | None
    ) -> CachedToken:
        token = sign()
        fresh_for = (token.expires_at - token.issued_at) * (1 - self._min_remaining)
        identity_id = token.identity_id
        if identity_id is None:
            raise ValueError("a cached token must name the identity it was signed for")
        self._store.put(key.pool_id, key.entry, token, math.ceil(fresh_for), holder, identity_id)
        return token

    def _fresh(self, key: CacheKey, identity_id: str) -> CachedToken | None:
        return self._usable(self._store.get(key.entry), identity_id)

    def _usable(self, cached: CachedToken | None, identity_id: str) -> CachedToken | None:
        if cached is None or not is_fresh(cached, self._clock(), self._min_remaining):
            return None
        if cached.identity_id != identity_id:
            return None  # signed for an identity the login no longer has
        return cached
