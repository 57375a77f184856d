"""The composition root: every part of one broker process is built here, from the settings.

Nothing below the app layer builds its own collaborators: the doors, the token sources and
the store get what they work with as arguments. So one place answers "what does this
process run?": the services (:func:`build_services`), the backend door's token source, local
or upstream (:func:`backend_sources`), the doors on their paths (:func:`doors`) and the error
renderers of every format (:func:`renderers`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

from broker.awsjson import door as awsjson
from broker.awsjson import render as awsjson_render
from broker.backend import door as backend
from broker.backend import envelope
from broker.backend.cache import CoalescingTokenCache
from broker.backend.credentials import BackendCredentials, CredentialsSource
from broker.backend.pool import PoolResolver
from broker.backend.tokens import BackendTokens, TokenSource
from broker.backend.translators import build_translator
from broker.errors import BrokerError
from broker.http.pipeline import Door
from broker.http.renderers import PLAIN_JSON, Renderers, plain_json
from broker.identity.developer import DeveloperProviders
from broker.identity.models import pool_arn
from broker.paging import PageTokens
from broker.providers.verifier import build_login_verifier
from broker.ratelimit.limiter import RateLimiter
from broker.ratelimit.redis_counter import RedisRateCounter
from broker.services import Clock, Services
from broker.store.backend_pool import RedisPoolNames
from broker.store.connection import RedisConnector
from broker.store.redis_store import RedisStore
from broker.store.signing_keys import RedisPagingSecret, RedisSigningKeys
from broker.store.token_cache import RedisTokenCache
from broker.sts.client import StsClient
from broker.tokens.issuing import TokenIssuer
from broker.tokens.keys import FileKeySource, KeyRing, KeySource, RedisKeySource
from broker.tokens.sealing import KeySealer
from broker.tokens.signer import TokenSigner
from broker.upstream import metrics as upstream_metrics
from broker.upstream.client import CognitoUpstream
from broker.upstream.credentials import UpstreamCredentials
from broker.upstream.guard import CircuitBreaker, Guard, Quota
from broker.upstream.guard_store import RedisBreakerState, RedisQuota
from broker.upstream.identity_store import RedisUpstreamIdentities
from broker.upstream.tokens import UpstreamTokens
from config.settings import Settings

log = logging.getLogger("broker")


def build_services(settings: Settings, clock: Clock = time.time) -> Services:
    """The parts both doors and the operator's commands share."""
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
    return Services(
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
        logins=build_login_verifier(settings),
        sts=StsClient(settings.sts),
    )


@dataclass(frozen=True)
class BackendSources:
    """What the backend door's two paths serve from, in this mode."""

    tokens: TokenSource
    credentials: CredentialsSource


def backend_sources(svc: Services) -> BackendSources:
    """The backend door's sources: upstream Cognito in upstream mode (its client and caches
    made now), else the local store and STS (a named pool is created now when it can be; a
    failure is retried on the first request). Both paths share one pool resolver, so they
    serve the same pool and the same identities."""
    if svc.settings.upstream.enabled:
        return upstream_sources(svc)
    settings = svc.settings
    pools = PoolResolver(settings, svc.store, RedisPoolNames(svc.connector), svc.clock)
    sources = BackendSources(local_tokens(svc, pools), local_credentials(svc, pools))
    configured = settings.backend.pool_id is not None or settings.backend.pool_name is not None
    if configured and not settings.backend.development_key:
        _prepare_pool(pools)  # the development pool is made by its first request instead
    return sources


def local_tokens(svc: Services, pools: PoolResolver) -> BackendTokens:
    settings = svc.settings
    cache = CoalescingTokenCache(
        RedisTokenCache(svc.connector),
        min_remaining=settings.backend.cache_min_remaining,
        clock=svc.clock,
    )
    return BackendTokens(
        store=svc.store,
        tokens=svc.tokens,
        pools=pools,
        cache=cache,
        region=settings.region,
        clock=svc.clock,
        limit_identity=svc.limits.check_identity,
        providers=svc.providers,
    )


def local_credentials(svc: Services, pools: PoolResolver) -> BackendCredentials:
    return BackendCredentials(
        store=svc.store,
        tokens=svc.tokens,
        pools=pools,
        sts=svc.sts,
        region=svc.settings.region,
        clock=svc.clock,
        limit_identity=svc.limits.check_identity,
        providers=svc.providers,
    )


def upstream_sources(svc: Services) -> BackendSources:
    """Upstream mode's parts for one process (one gunicorn worker): one client and one
    guard for both paths."""
    settings = svc.settings.upstream
    pool_id = settings.pool_id
    upstream_metrics.initialise()
    guard = Guard(
        CircuitBreaker(RedisBreakerState(svc.connector), pool_id, settings),
        Quota(RedisQuota(svc.connector), pool_id, settings.max_rate),
        settings,
    )
    client = CognitoUpstream(settings)
    tokens = UpstreamTokens(
        settings=settings,
        identities=RedisUpstreamIdentities(svc.connector),
        tokens=RedisTokenCache(svc.connector),
        client=client,
        guard=guard,
        min_remaining=svc.settings.backend.cache_min_remaining,
        clock=svc.clock,
        limit_identity=svc.limits.check_identity,
    )
    tokens.warm()
    credentials = UpstreamCredentials(
        tokens=tokens, client=client, guard=guard, deadline=settings.deadline
    )
    return BackendSources(tokens, credentials)


def _prepare_pool(pools: PoolResolver) -> None:
    try:
        pool = pools.current()
        log.info("backend door: pool %s, developer provider %s", pool.id, pool.developer_provider)
    except BrokerError as exc:
        log.warning("backend door: pool not ready at start (%s)", type(exc).__name__)


def doors(svc: Services) -> Mapping[str, Door]:
    """The API doors, by path (explicit): every other request goes on to Flask."""
    settings = svc.settings
    translator = build_translator(settings.backend, svc.clock)
    sources = backend_sources(svc)
    return {
        awsjson.PATH: awsjson.AwsJsonDoor(svc),
        backend.PATH: backend.BackendTokenDoor(translator, sources.tokens, settings.max_body_bytes),
        backend.CREDENTIALS_PATH: backend.BackendCredentialsDoor(
            translator, sources.credentials, settings.max_body_bytes
        ),
    }


def renderers() -> Renderers:
    """Every answer format's error renderer, by the name its routes give."""
    return Renderers(
        {
            awsjson_render.FORMAT: awsjson_render.error_answer,
            envelope.FORMAT: envelope.render_error,
            PLAIN_JSON: plain_json,
        }
    )
