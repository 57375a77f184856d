"""Redis primitives of the backend door's token cache (the rules are in
``broker.backend.cache``).

Every key carries the pool's hash tag, as ``keys.PoolKeys`` does, so an entry, its lock and
the pool's signature counter share one Redis Cluster slot and one pipeline reaches them all.

- entry ``ib:{<pool>}:token-cache:<digest>``: JSON ``{"t": token, "iat": ..., "exp": ...,
  "i": identity id}`` (``i``: the identity the token was signed for, when the key does not
  name it), expiring when it stops being fresh;
- lock ``<entry>:lock``: ``SET NX PX``, held by the one request that signs on a miss;
- counter ``ib:{<pool>}:token-cache:signed``: tokens this door signed for the pool (a
  metric; refreshed to expire a day after the last signature).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any, Final

from broker.store.keys import pool_prefix
from broker.store.script_runner import DELETE_IF_EQUAL, ScriptRunner

COUNTER_TTL_SECONDS: Final = 86400


def entry_key(pool_id: str, digest: str) -> str:
    return f"{pool_prefix(pool_id)}:token-cache:{digest}"


def lock_key(entry: str) -> str:
    return f"{entry}:lock"


def signed_counter_key(pool_id: str) -> str:
    return f"{pool_prefix(pool_id)}:token-cache:signed"


@dataclass(frozen=True)
class CachedToken:
    token: str
    issued_at: int
    expires_at: int
    identity_id: str | None = None  # the identity it was signed for (backend door entries)

    def encode(self) -> str:
        record: dict[str, Any] = {"t": self.token, "iat": self.issued_at, "exp": self.expires_at}
        if self.identity_id is not None:
            record["i"] = self.identity_id
        return json.dumps(record)

    @classmethod
    def decode(cls, raw: str) -> CachedToken | None:
        try:
            record = json.loads(raw)
            identity = record.get("i")
            return cls(
                str(record["t"]),
                int(record["iat"]),
                int(record["exp"]),
                None if identity is None else str(identity),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None  # an unreadable entry is a miss, and is overwritten


class RedisTokenCache(ScriptRunner):
    def get(self, entry: str) -> CachedToken | None:
        raw = self.redis.get(entry)
        return None if raw is None else CachedToken.decode(str(raw))

    def try_lock(self, entry: str, ttl_ms: int) -> str | None:
        """Take the entry's lock; return the holder's token, or None when another holds it."""
        holder = secrets.token_hex(16)
        taken = self.redis.set(lock_key(entry), holder, nx=True, px=ttl_ms)
        return holder if taken else None

    def release(self, entry: str, holder: str) -> None:
        """Delete the lock only if this holder still owns it."""
        self._run(DELETE_IF_EQUAL, [lock_key(entry)], [holder])

    def put(
        self, pool_id: str, entry: str, cached: CachedToken, ttl_seconds: int, holder: str | None
    ) -> None:
        """Store a freshly signed token, count the signature, and release the lock, in one
        round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(entry, cached.encode(), ex=max(1, ttl_seconds))
        self._count(pipe, pool_id)
        if holder is not None:
            self._run(DELETE_IF_EQUAL, [lock_key(entry)], [holder], client=pipe)
        pipe.execute()

    def count_signature(self, pool_id: str) -> None:
        """Count a signature that was not cached (the cache is turned off)."""
        pipe = self.redis.pipeline(transaction=False)
        self._count(pipe, pool_id)
        pipe.execute()

    @staticmethod
    def _count(pipe: Any, pool_id: str) -> None:
        counter = signed_counter_key(pool_id)
        pipe.incr(counter)
        pipe.expire(counter, COUNTER_TTL_SECONDS)
