"""Generated signing keys and the paging secret in Redis.

Keys live in one hash (kid -> JSON record) beside the current kid and a hash of retired
kids -> the time they stopped signing; all three share the ``{signing}`` hash tag so the
rotation script may touch them together.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from broker.store import keys, scripts
from broker.store.client import RedisConnector

RETIRED = keys.SIGNING_KEYS.replace(":keys", ":retired")

# KEYS: keys hash, current kid, retired hash
# ARGV: new kid, new record, now, prune keys retired before this time
ROTATE_SIGNING_KEY = """
local old = redis.call('GET', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1])
if old and old ~= ARGV[1] then redis.call('HSET', KEYS[3], old, ARGV[3]) end
local retired = redis.call('HGETALL', KEYS[3])
for i = 1, #retired, 2 do
  if tonumber(retired[i + 1]) < tonumber(ARGV[4]) then
    redis.call('HDEL', KEYS[1], retired[i])
    redis.call('HDEL', KEYS[3], retired[i])
  end
end
return old
"""


class RedisSigningKeys:
    def __init__(self, connector: RedisConnector) -> None:
        self._connector = connector

    def load_keys(self) -> tuple[str | None, Mapping[str, str], Mapping[str, float]]:
        pipe = self._connector.client().pipeline(transaction=False)
        pipe.get(keys.SIGNING_CURRENT)
        pipe.hgetall(keys.SIGNING_KEYS)
        pipe.hgetall(RETIRED)
        current, records, retired = pipe.execute()
        return current, records, {kid: float(at) for kid, at in retired.items()}

    def ensure_key(self, kid: str, record: str) -> tuple[str, str]:
        """Store the candidate unless a current key exists; return the current one."""
        client = self._connector.client()
        current, raw = client.eval(
            scripts.ENSURE_SIGNING_KEY, 2, keys.SIGNING_KEYS, keys.SIGNING_CURRENT, kid, record
        )
        return str(current), str(raw)

    def rotate(self, kid: str, record: str, now: float, prune_before: float) -> str | None:
        old = self._connector.client().eval(
            ROTATE_SIGNING_KEY,
            3,
            keys.SIGNING_KEYS,
            keys.SIGNING_CURRENT,
            RETIRED,
            kid,
            record,
            repr(now),
            repr(prune_before),
        )
        return str(old) if old else None


class RedisPagingSecret:
    """The secret NextToken keys derive from: created once in Redis, shared by every process."""

    def __init__(self, connector: RedisConnector) -> None:
        self._connector = connector

    def __call__(self) -> bytes:
        client = self._connector.client()
        client.set(keys.PAGING_SECRET, secrets.token_hex(32), nx=True)
        value = client.get(keys.PAGING_SECRET)
        return bytes.fromhex(str(value))
