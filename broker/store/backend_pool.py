"""Redis primitives behind the backend door's named pool (the rules are in
``broker.backend.pool``).

One string per name, ``ib:{backend-pools}:<name>``, holds the id of the pool the broker
created for that name, so every worker and every restart agrees on one pool. While the
first process creates the pool the string holds a pending marker (``SET NX PX``: it
vanishes if that process dies); the marker is then swapped for the pool id. Both swaps are
compare-and-set scripts on that one key.
"""

from __future__ import annotations

import secrets
from typing import Final

from broker.store.connection import always
from broker.store.faults import translates_faults
from broker.store.keys import PREFIX
from broker.store.script_runner import DELETE_IF_EQUAL, ScriptRunner

#: Cannot be a pool id (``<region>:<uuid>``): it holds a '~'.
PENDING_PREFIX: Final = "~pending~"

# KEYS: name key   ARGV: expected value, new value
SWAP: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end
return 0
"""


def name_key(name: str) -> str:
    return f"{PREFIX}:{{backend-pools}}:{name}"


def is_pending(value: str) -> bool:
    return value.startswith(PENDING_PREFIX)


@translates_faults
class RedisPoolNames(ScriptRunner):
    def get(self, name: str) -> str | None:
        value = self.redis.get(name_key(name))
        return None if value is None else str(value)

    def claim(self, name: str, ttl_ms: int) -> str | None:
        """Become the one process that creates the pool: the pending marker, or None."""
        marker = PENDING_PREFIX + secrets.token_hex(8)
        taken = self.redis.set(name_key(name), marker, nx=True, px=ttl_ms)
        return marker if taken else None

    def publish(self, name: str, marker: str, pool_id: str) -> bool:
        """Swap this process's pending marker for the pool id (no expiry from now on)."""
        return bool(self._run(SWAP, [name_key(name)], [marker, pool_id], confirm=always))

    def forget(self, name: str, value: str) -> bool:
        """Drop the name if it still holds ``value`` (a marker, or a deleted pool's id)."""
        return bool(self._run(DELETE_IF_EQUAL, [name_key(name)], [value]))
