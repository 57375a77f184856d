"""The parts one broker process works with, built once per app from the settings."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from broker.identity.developer import DeveloperProviders
from broker.identity.models import pool_arn
from broker.paging import PageTokens
from broker.ratelimit import RateLimiter
from broker.store.connection import RedisConnector
from broker.store.rate_limits import RedisRateCounter
from broker.store.redis_store import RedisStore
from broker.store.signing_keys import RedisPagingSecret, RedisSigningKeys
from broker.tokens.issuing import TokenIssuer
from broker.tokens.keys import FileKeySource, KeyRing, KeySource, RedisKeySource
from broker.tokens.sealing import KeySealer
from broker.tokens.signer import TokenSigner
from config.settings import Settings

Clock = Callable[[], float]


@dataclass(frozen=True)
class Services:
    settings: Settings
    connector: RedisConnector
    store: RedisStore
    key_source: KeySource
    keyring: KeyRing
    signer: TokenSigner
    tokens: TokenIssuer  # claims + signature, for both front doors
    pages: PageTokens
    limits: RateLimiter
    providers: DeveloperProviders
    clock: Clock

    @classmethod
    def build(cls, settings: Settings, clock: Clock = time.time) -> Services:
        connector = RedisConnector(settings.redis)
        source: KeySource
        if settings.signing_key_file:
            source = FileKeySource(settings.signing_key_file)
        else:
            source = RedisKeySource(
                RedisSigningKeys(connector),
                clock,
                KeySealer(settings.keys.encryption_key),
                settings.keys.retention_seconds,
            )
        keyring = KeyRing(source, settings.keys.refresh_seconds)
        signer = TokenSigner(keyring)
        arn = partial(pool_arn, settings.region, settings.account_id)
        return cls(
            settings=settings,
            connector=connector,
            store=RedisStore(connector),
            key_source=source,
            keyring=keyring,
            signer=signer,
            tokens=TokenIssuer(signer, issuer=settings.issuer, pool_arn=arn),
            pages=PageTokens(RedisPagingSecret(connector)),
            providers=DeveloperProviders(),
            limits=RateLimiter(settings.limits, RedisRateCounter(connector), clock),
            clock=clock,
        )

    def pool_arn(self, pool_id: str) -> str:
        return pool_arn(self.settings.region, self.settings.account_id, pool_id)
