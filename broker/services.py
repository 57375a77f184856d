"""The parts one broker process works with, built once per app from the settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app

from broker.identity.developer import DeveloperProviders
from broker.identity.linking import LoginVerifier
from broker.identity.models import pool_arn
from broker.identity.ports import RoleAssumer
from broker.paging import PageTokens
from broker.ratelimit.limiter import RateLimiter
from broker.store.connection import RedisConnector
from broker.store.redis_store import RedisStore
from broker.tokens.issuing import TokenIssuer
from broker.tokens.keys import KeyRing, KeySource
from broker.tokens.signer import TokenSigner
from config.settings import Settings

Clock = Callable[[], float]

#: The key of ``Flask.extensions`` under which the app keeps its :class:`Services`.
EXTENSION = "identity_broker"


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
    #: Verifies public-provider login tokens (contract section 9; ``broker.providers``).
    logins: LoginVerifier
    #: STS AssumeRoleWithWebIdentity for GetCredentialsForIdentity (``broker.sts``).
    sts: RoleAssumer

    def pool_arn(self, pool_id: str) -> str:
        return pool_arn(self.settings.region, self.settings.account_id, pool_id)


def current_services() -> Services:
    """The services of the Flask app serving this request (or running this CLI command)."""
    svc: Services = current_app.extensions[EXTENSION]
    return svc
