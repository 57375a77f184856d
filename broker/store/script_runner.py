"""The Redis client of one store and the Lua scripts it has registered.

Scripts are registered once per client and run with EVALSHA (loading the script again
after a Redis restart answers NOSCRIPT), and again when a forked worker builds its own
client. Every store that runs a script goes through here, so none sends the whole script
with each call.
"""

from __future__ import annotations

from typing import Any, Final

import redis

from broker.store.client import RedisConnector

# KEYS: one key   ARGV: the value it must still hold. A compare-and-delete: a lock's holder
# releasing it, or a name dropped only while it names what the caller saw.
DELETE_IF_EQUAL: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class ScriptRunner:
    def __init__(self, connector: RedisConnector) -> None:
        self._connector = connector
        self._scripts: dict[str, Any] = {}
        self._scripts_client: redis.Redis | None = None

    @property
    def redis(self) -> redis.Redis:
        return self._connector.client()

    def _script(self, source: str) -> Any:
        client = self.redis
        if client is not self._scripts_client:
            self._scripts = {}
            self._scripts_client = client
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = client.register_script(source)
        return script

    def _run(
        self, source: str, keys: list[str], args: list[Any] | None = None, client: Any = None
    ) -> Any:
        """Run the script; ``client`` may be a pipeline, which loads it before it executes."""
        return self._script(source)(keys=keys, args=args or [], client=client)
