"""The parts one broker process works with, built once per app from the settings."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from broker.identity.models import pool_arn
from broker.paging import PageTokens
from broker.store.client import RedisConnector
from broker.store.redis_store import RedisStore
from broker.store.signing_keys import RedisPagingSecret, RedisSigningKeys
from broker.tokens.keys import FileKeySource, KeyRing, KeySource, RedisKeySource
from broker.tokens.signer import TokenSigner
from config.settings import Settings

Clock = Callable[[], float]


@dataclass(frozen=True)
class Services:
    settings: Settings
    connector: RedisConnector
    store: RedisStore
    keyring: KeyRing
    signer: TokenSigner
    pages: PageTokens
    clock: Clock

    @classmethod
    def build(cls, settings: Settings, clock: Clock = time.time) -> Services:
        connector = RedisConnector(settings.redis_url, settings.redis_timeout)
        source: KeySource
        if settings.signing_key_file:
            source = FileKeySource(settings.signing_key_file)
        else:
            source = RedisKeySource(RedisSigningKeys(connector), clock)
        keyring = KeyRing(source)
        return cls(
            settings=settings,
            connector=connector,
            store=RedisStore(connector),
            keyring=keyring,
            signer=TokenSigner(keyring),
            pages=PageTokens(RedisPagingSecret(connector)),
            clock=clock,
        )

    def pool_arn(self, pool_id: str) -> str:
        return pool_arn(self.settings.region, self.settings.account_id, pool_id)
