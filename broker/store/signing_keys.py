"""Generated signing keys in Redis (see ``broker.tokens.keys.RedisKeySource``)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from broker.store import keys, scripts
from broker.store.client import RedisConnector


class RedisSigningKeys:
    def __init__(self, connector: RedisConnector) -> None:
        self._connector = connector

    def load_keys(self) -> tuple[str | None, Mapping[str, str]]:
        pipe = self._connector.client().pipeline(transaction=False)
        pipe.get(keys.SIGNING_CURRENT)
        pipe.hgetall(keys.SIGNING_KEYS)
        current, records = pipe.execute()
        return current, records

    def ensure_key(self, kid: str, record: str) -> tuple[str, str]:
        """Store the candidate unless a current key exists; return the current one."""
        client = self._connector.client()
        current, raw = client.eval(
            scripts.ENSURE_SIGNING_KEY, 2, keys.SIGNING_KEYS, keys.SIGNING_CURRENT, kid, record
        )
        return str(current), str(raw)


class RedisPagingSecret:
    """The NextToken HMAC secret: created once in Redis, shared by every process."""

    def __init__(self, connector: RedisConnector) -> None:
        self._connector = connector

    def __call__(self) -> bytes:
        client = self._connector.client()
        client.set(keys.PAGING_SECRET, secrets.token_hex(32), nx=True)
        value = client.get(keys.PAGING_SECRET)
        return bytes.fromhex(str(value))
