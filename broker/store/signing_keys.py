"""Generated signing keys and the paging secret in Redis.

Keys live in one hash (kid -> JSON record) beside the current kid and a hash of retired
kids -> the time they stopped signing; all three share the ``{signing}`` hash tag so the
rotation script may touch them together.
"""

from __future__ import annotations

import secrets

from broker.store import keys, scripts
from broker.store.connection import RedisConnector, always
from broker.store.faults import translates_faults
from broker.store.script_runner import ScriptRunner
from broker.tokens.keys import StoredKeySet

RETIRED = keys.SIGNING_KEYS.replace(":keys", ":retired")
#: Hash: kid -> the time a staged key starts signing (published before it signs).
PENDING = keys.SIGNING_KEYS.replace(":keys", ":pending")

# Drops keys retired before ARGV[4] (their tokens have all expired). KEYS[1], KEYS[3] as below.
_PRUNE = """
local retired = redis.call('HGETALL', KEYS[3])
for i = 1, #retired, 2 do
  if tonumber(retired[i + 1]) < tonumber(ARGV[4]) then
    redis.call('HDEL', KEYS[1], retired[i])
    redis.call('HDEL', KEYS[3], retired[i])
  end
end
"""

# KEYS: keys hash, current kid, retired hash
# ARGV: new kid, new record, now, prune keys retired before this time
ROTATE_SIGNING_KEY = (
    """
local old = redis.call('GET', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1])
if old and old ~= ARGV[1] then redis.call('HSET', KEYS[3], old, ARGV[3]) end
"""
    + _PRUNE
    + "return old"
)

# KEYS: keys hash, current kid, retired hash, pending hash
# ARGV: new kid, new record, activation time, prune keys retired before this time
STAGE_SIGNING_KEY = (
    """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
"""
    + _PRUNE
    + "return redis.call('GET', KEYS[2])"
)

# KEYS: keys hash, current kid, retired hash, pending hash   ARGV: kid, now
# Idempotent: every worker may find the key due; only the first promotes it.
PROMOTE_SIGNING_KEY = """
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 0 then return 0 end
local old = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], ARGV[1])
if old and old ~= ARGV[1] then redis.call('HSET', KEYS[3], old, ARGV[2]) end
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
"""

# KEYS: keys hash   ARGV: kid, the record as read, its replacement
# Compare-and-set: of several processes sealing the same clear key, only the first writes.
REPLACE_SIGNING_KEY = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


@translates_faults
class RedisSigningKeys(ScriptRunner):
    """Every write is confirmed by the replicas when REDIS_WAIT_REPLICAS asks for it: a key
    lost in a failover would leave tokens it signed unverifiable."""

    def load_keys(self) -> StoredKeySet:
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys.SIGNING_CURRENT)
        pipe.hgetall(keys.SIGNING_KEYS)
        pipe.hgetall(RETIRED)
        pipe.hgetall(PENDING)
        current, records, retired, pending = pipe.execute()
        return StoredKeySet(
            current=current,
            records=records,
            retired={kid: float(at) for kid, at in retired.items()},
            pending={kid: float(at) for kid, at in pending.items()},
        )

    def ensure_key(self, kid: str, record: str) -> tuple[str, str]:
        """Store the candidate unless a current key exists; return the current one."""
        current, raw = self._run(
            scripts.ENSURE_SIGNING_KEY,
            [keys.SIGNING_KEYS, keys.SIGNING_CURRENT],
            [kid, record],
            confirm=always,
        )
        return str(current), str(raw)

    def rotate(self, kid: str, record: str, now: float, prune_before: float) -> str | None:
        old = self._run(
            ROTATE_SIGNING_KEY,
            [keys.SIGNING_KEYS, keys.SIGNING_CURRENT, RETIRED],
            [kid, record, repr(now), repr(prune_before)],
            confirm=always,
        )
        return str(old) if old else None

    def stage(self, kid: str, record: str, activate_at: float, prune_before: float) -> str | None:
        current = self._run(
            STAGE_SIGNING_KEY,
            [keys.SIGNING_KEYS, keys.SIGNING_CURRENT, RETIRED, PENDING],
            [kid, record, repr(activate_at), repr(prune_before)],
            confirm=always,
        )
        return str(current) if current else None

    def promote(self, kid: str, now: float) -> bool:
        promoted = self._run(
            PROMOTE_SIGNING_KEY,
            [keys.SIGNING_KEYS, keys.SIGNING_CURRENT, RETIRED, PENDING],
            [kid, repr(now)],
            confirm=always,
        )
        return bool(promoted)

    def replace(self, kid: str, old: str, new: str) -> bool:
        """Write ``new`` as ``kid``'s record if it still holds ``old``."""
        replaced = self._run(
            REPLACE_SIGNING_KEY, [keys.SIGNING_KEYS], [kid, old, new], confirm=always
        )
        return bool(replaced)


@translates_faults
class RedisPagingSecret:
    """The secret NextToken keys derive from: created once in Redis, shared by every process."""

    def __init__(self, connector: RedisConnector) -> None:
        self._connector = connector

    def __call__(self) -> bytes:
        client = self._connector.client()
        client.set(keys.PAGING_SECRET, secrets.token_hex(32), nx=True)
        value = client.get(keys.PAGING_SECRET)
        return bytes.fromhex(str(value))
