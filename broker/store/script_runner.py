"""The Redis client of one store and the Lua scripts it has registered.

Scripts are registered once per client (EVALSHA, falling back to EVAL after a Redis
restart), and again when a forked worker builds its own client.
"""

from __future__ import annotations

from typing import Any

import redis

from broker.store.client import RedisConnector


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

    def _run(self, source: str, keys: list[str], args: list[Any] | None = None) -> Any:
        return self._script(source)(keys=keys, args=args or [])
