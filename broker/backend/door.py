"""The backend front door: ``POST /v1/token`` (served by ``broker.doors``) and its OpenAPI
document (a Flask route).

The steps run in a fixed order, each failing in the envelope before the next starts:
configured at all, the session (before the body is even read, so an unauthenticated caller
learns nothing about validation), the body's size and media type, its members, then the
core (``broker.backend.tokens``). A Redis fault becomes UNAVAILABLE, quickly.
"""

from __future__ import annotations

import logging
from typing import Final

import redis
from flask import Blueprint, Response, jsonify

from broker import metrics
from broker.backend import envelope, openapi
from broker.backend.cache import CoalescingTokenCache
from broker.backend.errors import BackendNotConfigured
from broker.backend.pool import PoolResolver
from broker.backend.schemas import load_token_request
from broker.backend.tokens import BackendTokens
from broker.backend.translators import Credentials, build_translator
from broker.doors import Exchange, Reply
from broker.errors import (
    BrokerError,
    ValidationException,
)
from broker.services import Services
from broker.store.backend_pool import RedisPoolNames
from broker.store.token_cache import RedisTokenCache
from broker.upstream.tokens import UpstreamTokens
from broker.web import services

log = logging.getLogger("broker.backend")

bp = Blueprint("backend", __name__)

PATH: Final = "/v1/token"
METRICS_DOOR: Final = "backend"  # the metrics' door label
NOT_CONFIGURED: Final = (
    "The backend door is not configured: set BROKER_BACKEND_AUTH (jwt, cookie or api_key) "
    "and its variables (docs/backend.md)."
)
BODY_TOO_LARGE: Final = "The request body exceeds the limit of {limit} bytes."
NOT_JSON: Final = "Content-Type must be application/json."


class BackendTokenDoor:
    """``POST /v1/token``, served by ``broker.doors`` (plain WSGI, no Flask request). Built
    once per app (per gunicorn worker), with only the parts of the mode in use: tokens from
    the local store (a named pool is created now when it can be; a failure is retried on
    the first request) or, in upstream mode, from AWS (docs/upstream.md)."""

    metrics_door = METRICS_DOOR
    log = logging.getLogger("broker.backend")
    log_prefix = "backend door: "

    def __init__(self, svc: Services) -> None:
        settings = svc.settings
        self._translator = build_translator(settings.backend, svc.clock)
        self._max_body_bytes = settings.max_body_bytes
        self._tokens: BackendTokens | UpstreamTokens
        if settings.upstream.enabled:
            self._tokens = UpstreamTokens.from_services(svc)
            self._tokens.warm()
            return
        pools = PoolResolver(settings, svc.store, RedisPoolNames(svc.connector), svc.clock)
        cache = CoalescingTokenCache(
            RedisTokenCache(svc.connector),
            min_remaining=settings.backend.cache_min_remaining,
            clock=svc.clock,
        )
        self._tokens = BackendTokens(
            store=svc.store,
            tokens=svc.tokens,
            pools=pools,
            cache=cache,
            region=settings.region,
            clock=svc.clock,
            limit_identity=svc.limits.check_identity,
            providers=svc.providers,
        )
        if settings.backend.pool_id is not None or settings.backend.pool_name is not None:
            _prepare_pool(pools)

    def handle(self, exchange: Exchange) -> Reply:
        exchange.operation = openapi.OPERATION_ID
        translator = self._translator
        if translator is None:
            raise BackendNotConfigured(NOT_CONFIGURED)
        session = translator.translate(Credentials(exchange.header_source(), exchange.cookies()))
        token_request = load_token_request(
            _read_body(exchange, self._max_body_bytes), trusted=translator.names_user_in_body
        )
        issued = self._tokens.issue(session, token_request)
        metrics.count_token(METRICS_DOOR, new_identity=issued.new_identity, cached=issued.cached)
        return envelope.success(
            {
                "identity_id": issued.identity_id,
                "token": issued.token,
                "expires_at": envelope.iso8601(issued.expires_at),
                "created_at": envelope.iso8601(issued.identity_created),
                "cached": issued.cached,
            }
        )

    def render_error(self, err: BrokerError, exchange: Exchange) -> Reply:
        reply, exchange.outcome = envelope.render_error(err)
        return reply


def _prepare_pool(pools: PoolResolver) -> None:
    try:
        pool = pools.current()
        log.info("backend door: pool %s, developer provider %s", pool.id, pool.developer_provider)
    except (BrokerError, redis.RedisError) as exc:
        log.warning("backend door: pool not ready at start (%s)", type(exc).__name__)


@bp.get("/openapi.json")
def openapi_document() -> Response:
    return jsonify(openapi.document(services().settings.backend))


def _read_body(exchange: Exchange, limit: int) -> bytes:
    body = exchange.body(limit, lambda: ValidationException(BODY_TOO_LARGE.format(limit=limit)))
    if body and exchange.mimetype != "application/json":
        raise ValidationException(NOT_JSON)
    return body
