"""The backend front door: ``POST /v1/token`` (served by the edge, ``broker.http.pipeline``)
and its OpenAPI document (a Flask route).

The steps run in a fixed order, each failing in the envelope before the next starts:
configured at all, the session (before the body is even read, so an unauthenticated caller
learns nothing about validation), the body's size and media type, its members, then the
core (``broker.backend.tokens``). A Redis fault becomes UNAVAILABLE, quickly.
"""

from __future__ import annotations

import logging
from typing import Final

from flask import Blueprint, Response, jsonify

from broker.backend import envelope, openapi
from broker.backend.errors import BackendNotConfigured
from broker.backend.schemas import load_token_request
from broker.backend.tokens import TokenSource
from broker.backend.translators import Credentials, SessionTranslator
from broker.errors import ValidationException
from broker.http.exchange import Exchange, Reply
from broker.observability import metrics
from broker.services import current_services

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
    """``POST /v1/token``, served by the edge (``broker.http.pipeline``: plain WSGI, no Flask
    request). Built once per app (per gunicorn worker) by the composition root
    (``broker.app.wiring``), which chooses its token source: the local store, or in upstream
    mode AWS (docs/upstream.md)."""

    metrics_door = METRICS_DOOR
    error_format = envelope.FORMAT
    log = logging.getLogger("broker.backend")
    log_prefix = "backend door: "

    def __init__(
        self, translator: SessionTranslator | None, tokens: TokenSource, max_body_bytes: int
    ) -> None:
        self._translator = translator
        self._tokens = tokens
        self._max_body_bytes = max_body_bytes

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


@bp.get("/openapi.json")
def openapi_document() -> Response:
    return jsonify(openapi.document(current_services().settings.backend))


def _read_body(exchange: Exchange, limit: int) -> bytes:
    body = exchange.body(limit, lambda: ValidationException(BODY_TOO_LARGE.format(limit=limit)))
    if body and exchange.mimetype != "application/json":
        raise ValidationException(NOT_JSON)
    return body
