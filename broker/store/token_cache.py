"""Redis primitives of the backend door's token cache (the rules are in
``broker.backend.cache``).

Every key carries the pool's hash tag, as ``keys.PoolKeys`` does, so an entry, its lock,
the identity's variants and the pool's signature counter share one Redis Cluster slot and
one script reaches them all.

- entry ``ib:{<pool>}:token-cache:<digest>``: JSON ``{"t": token, "iat": ..., "exp": ...,
  "i": identity id}`` (``i``: the identity the token was signed for, when the key does not
  name it), expiring when it stops being fresh;
- lock ``<entry>:lock``: ``SET NX PX``, held by the one request that signs on a miss;
- variants ``ib:{<pool>}:token-cache:variants:<identity id>``: a list of the identity's
  entries, newest first. One identity may ask for many variants of its token (each
  duration and set of tags is an entry); only the newest ``MAX_VARIANTS`` are kept, so one
  user cannot grow Redis without bound;
- counter ``ib:{<pool>}:token-cache:signed``: tokens this door signed for the pool (a
  metric; refreshed to expire a day after the last signature).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any, Final

from broker.store.faults import translates_faults
from broker.store.keys import pool_prefix
from broker.store.script_runner import DELETE_IF_EQUAL, ScriptRunner

COUNTER_TTL_SECONDS: Final = 86400
#: Cached tokens kept per identity (its most recent variants: durations, tags).
MAX_VARIANTS: Final = 4

# KEYS: entry, lock, counter, variants
# ARGV: the entry's value, its ttl (s), the lock holder ('' for none), the counter's ttl (s),
#       how many variants to keep
# Stores the entry, counts the signature, releases the lock, and records the entry as the
# identity's newest variant; answers the entries that fell off the list (the caller
# unlinks them: a script touches only the keys it is given).
STORE_SIGNED: Final = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[4])
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
redis.call('LREM', KEYS[4], 0, KEYS[1])
redis.call('LPUSH', KEYS[4], KEYS[1])
local keep = tonumber(ARGV[5])
local evicted = redis.call('LRANGE', KEYS[4], keep, -1)
redis.call('LTRIM', KEYS[4], 0, keep - 1)
if redis.call('TTL', KEYS[4]) < tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[4], ARGV[2]) end
return evicted
"""

# KEYS: counter   ARGV: its ttl (s)
COUNT_SIGNATURE: Final = """
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
"""


def entry_key(pool_id: str, digest: str) -> str:
    return f"{pool_prefix(pool_id)}:token-cache:{digest}"


def lock_key(entry: str) -> str:
    return f"{entry}:lock"


def signed_counter_key(pool_id: str) -> str:
    return f"{pool_prefix(pool_id)}:token-cache:signed"


def variants_key(pool_id: str, identity_id: str) -> str:
    return f"{pool_prefix(pool_id)}:token-cache:variants:{identity_id}"


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


@translates_faults
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
        self,
        pool_id: str,
        entry: str,
        cached: CachedToken,
        ttl_seconds: int,
        holder: str | None,
        identity_id: str,
    ) -> None:
        """Store a freshly signed token for ``identity_id``, count the signature, release
        the lock, and drop the identity's variants past ``MAX_VARIANTS``."""
        evicted = self._run(
            STORE_SIGNED,
            [
                entry,
                lock_key(entry),
                signed_counter_key(pool_id),
                variants_key(pool_id, identity_id),
            ],
            [cached.encode(), max(1, ttl_seconds), holder or "", COUNTER_TTL_SECONDS, MAX_VARIANTS],
        )
        if evicted:
            self.redis.unlink(*evicted)

    def count_signature(self, pool_id: str) -> None:
        """Count a signature that was not cached (the cache is turned off)."""
        self._run(COUNT_SIGNATURE, [signed_counter_key(pool_id)], [COUNTER_TTL_SECONDS])
