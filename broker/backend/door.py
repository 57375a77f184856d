"""The backend front door: ``POST /v1/token`` (served by ``broker.doors``) and its OpenAPI
document (a Flask route).

The steps run in a fixed order, each failing in the envelope before the next starts:
configured at all, the session (before the body is even read, so an unauthenticated caller
learns nothing about validation), the body's size and media type, its members, then the
core (``broker.backend.tokens``). A Redis fault becomes UNAVAILABLE, quickly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

import redis
from flask import Blueprint, Response, current_app, jsonify

from broker import metrics
from broker.backend import envelope, openapi
from broker.backend.cache import CoalescingTokenCache
from broker.backend.errors import BackendNotConfigured
from broker.backend.pool import PoolResolver
from broker.backend.schemas import load_token_request
from broker.backend.tokens import BackendTokens
from broker.backend.translators import Credentials, SessionTranslator, build_translator
from broker.doors import Exchange, Reply
from broker.errors import (
    BrokerError,
    ValidationException,
)
from broker.services import Services
from broker.store.backend_pool import RedisPoolNames
from broker.store.token_cache import RedisTokenCache
from broker.upstream.tokens import UpstreamTokens
from broker.web import EXTENSION

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


@dataclass(frozen=True)
class BackendDoor:
    """The door's parts, built once per app (per gunicorn worker)."""

    translator: SessionTranslator | None
    tokens: BackendTokens | UpstreamTokens  # upstream mode: from AWS (docs/upstream.md)
    pools: PoolResolver
    max_body_bytes: int

    @classmethod
    def build(cls, svc: Services) -> BackendDoor:
        settings = svc.settings
        pools = PoolResolver(settings, svc.store, RedisPoolNames(svc.connector), svc.clock)
        cache = CoalescingTokenCache(
            RedisTokenCache(svc.connector),
            min_remaining=settings.backend.cache_min_remaining,
            clock=svc.clock,
        )
        tokens = BackendTokens(
            store=svc.store,
            tokens=svc.tokens,
            pools=pools,
            cache=cache,
            region=settings.region,
            clock=svc.clock,
            limit_identity=svc.limits.check_identity,
            providers=svc.providers,
        )
        return cls(
            translator=build_translator(settings.backend, svc.clock),
            tokens=UpstreamTokens.from_services(svc) if settings.upstream.enabled else tokens,
            pools=pools,
            max_body_bytes=settings.max_body_bytes,
        )


class BackendTokenDoor:
    """``POST /v1/token``, served by ``broker.doors`` (plain WSGI, no Flask request)."""

    metrics_door = METRICS_DOOR
    log = logging.getLogger("broker.backend")
    log_prefix = "backend door: "

    def __init__(self, door: BackendDoor) -> None:
        self._door = door

    def handle(self, exchange: Exchange) -> Reply:
        exchange.operation = openapi.OPERATION_ID
        door = self._door
        if door.translator is None:
            raise BackendNotConfigured(NOT_CONFIGURED)
        credentials = Credentials(exchange.header_source(), exchange.cookies())
        session = door.translator.translate(credentials)
        token_request = load_token_request(
            _read_body(exchange, door.max_body_bytes),
            trusted=door.translator.names_user_in_body,
        )
        issued = door.tokens.issue(session, token_request)
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


def build(svc: Services) -> BackendTokenDoor:
    """The door for one app (one gunicorn worker); a named pool is created now when it can
    be (a failure is retried on the first request)."""
    door = BackendDoor.build(svc)
    backend = svc.settings.backend
    if isinstance(door.tokens, UpstreamTokens):  # the pool is at AWS, not in the local store
        door.tokens.warm()
    elif backend.pool_id is not None or backend.pool_name is not None:
        try:
            pool = door.pools.current()
            log.info(
                "backend door: pool %s, developer provider %s", pool.id, pool.developer_provider
            )
        except (BrokerError, redis.RedisError) as exc:
            log.warning("backend door: pool not ready at start (%s)", type(exc).__name__)
    return BackendTokenDoor(door)


@bp.get("/openapi.json")
def openapi_document() -> Response:
    svc: Services = current_app.extensions[EXTENSION]
    return jsonify(openapi.document(svc.settings.backend))


def _read_body(exchange: Exchange, limit: int) -> bytes:
    body = exchange.body(limit, lambda: ValidationException(BODY_TOO_LARGE.format(limit=limit)))
    if body and exchange.mimetype != "application/json":
        raise ValidationException(NOT_JSON)
    return body
