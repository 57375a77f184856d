"""The base of every store class: the process's Redis connector and how scripts run.

A script runs with EVALSHA on the connection of the node that owns its keys' slot
(``RedisConnector.script``: every key of a script shares one hash slot, checked by
``tests/test_key_slots.py``), loaded again on NOSCRIPT (a Redis restarted, flushed, or a
cluster node met for the first time). ``confirm`` says, from the script's answer, whether it
changed what ``REDIS_WAIT_REPLICAS`` must see confirmed before the call is acknowledged
(identities, logins, pools, keys); the connector then sends WAIT on the same connection.
Subclasses are wrapped by :func:`~broker.store.faults.translates_faults`, so a Redis fault
leaves the store as :class:`~broker.errors.StoreUnavailable`, its cause logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from broker.store.connection import Confirm, RedisConnector, never

# KEYS: one key   ARGV: the value it must still hold. A compare-and-delete: a lock's holder
# releasing it, or a name dropped only while it names what the caller saw.
DELETE_IF_EQUAL: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class ScriptRunner:
    def __init__(self, connector: RedisConnector) -> None:
        self._connector = connector

    @property
    def redis(self) -> Any:
        """redis-py's client of the topology (``redis.Redis`` or ``RedisCluster``)."""
        return self._connector.client()

    def _run(
        self,
        source: str,
        keys: Sequence[str],
        args: Sequence[Any] = (),
        *,
        confirm: Confirm = never,
    ) -> Any:
        return self._connector.script(source, keys, args, confirm)

    def _call(self, slot_key: str, *command: Any, confirm: Confirm = never) -> Any:
        """One plain command on the slot's own connection (so WAIT can follow it)."""
        return self._connector.call(slot_key, *command, confirm=confirm)
