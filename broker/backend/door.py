"""The backend front door: ``POST /v1/token`` and ``POST /v1/credentials`` (served by the
edge, ``broker.http.pipeline``) and their OpenAPI document (a Flask route).

The steps run in a fixed order, each failing in the envelope before the next starts:
configured at all, the session (before the body is even read, so an unauthenticated caller
learns nothing about validation), the body's size and media type, its members, then the
core (``broker.backend.tokens``, ``broker.backend.credentials``). A Redis fault becomes
UNAVAILABLE, quickly.
"""

from __future__ import annotations

import logging
from typing import Final

from flask import Blueprint, Response, jsonify

from broker.backend import envelope, openapi
from broker.backend.credentials import CredentialsSource
from broker.backend.errors import BackendNotConfigured
from broker.backend.schemas import load_credentials_request, load_token_request
from broker.backend.tokens import TokenSource
from broker.backend.translators import Credentials, Session, SessionTranslator
from broker.errors import ValidationException
from broker.http.exchange import Exchange, Reply
from broker.observability import metrics
from broker.services import current_services

log = logging.getLogger("broker.backend")

bp = Blueprint("backend", __name__)

PATH: Final = openapi.TOKEN_PATH
CREDENTIALS_PATH: Final = openapi.CREDENTIALS_PATH
METRICS_DOOR: Final = "backend"  # the metrics' door label
NOT_CONFIGURED: Final = (
    "The backend door is not configured: set BROKER_BACKEND_AUTH (jwt, cookie or api_key) "
    "and its variables (docs/backend.md)."
)
BODY_TOO_LARGE: Final = "The request body exceeds the limit of {limit} bytes."
NOT_JSON: Final = "Content-Type must be application/json."


class SessionDoor:
    """What both paths of the backend door do first: the session, then the body. Served by
    the edge (``broker.http.pipeline``: plain WSGI, no Flask request); built once per app
    (per gunicorn worker) by the composition root (``broker.app.wiring``)."""

    metrics_door = METRICS_DOOR
    error_format = envelope.FORMAT
    log = logging.getLogger("broker.backend")
    log_prefix = "backend door: "

    def __init__(self, translator: SessionTranslator | None, max_body_bytes: int) -> None:
        self._translator = translator
        self._max_body_bytes = max_body_bytes

    def _session(self, exchange: Exchange) -> tuple[Session, bytes, bool]:
        """The session (refused before the body is read), the body, and whether the body
        names the user (trusted mode)."""
        translator = self._translator
        if translator is None:
            raise BackendNotConfigured(NOT_CONFIGURED)
        session = translator.translate(Credentials(exchange.header_source(), exchange.cookies()))
        body = _read_body(exchange, self._max_body_bytes)
        return session, body, translator.names_user_in_body


class BackendTokenDoor(SessionDoor):
    """``POST /v1/token``. Its token source is the local store, or in upstream mode AWS
    (docs/upstream.md), as the composition root chooses."""

    def __init__(
        self, translator: SessionTranslator | None, tokens: TokenSource, max_body_bytes: int
    ) -> None:
        super().__init__(translator, max_body_bytes)
        self._tokens = tokens

    def handle(self, exchange: Exchange) -> Reply:
        exchange.operation = openapi.OPERATION_ID
        session, body, trusted = self._session(exchange)
        issued = self._tokens.issue(session, load_token_request(body, trusted=trusted))
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


class BackendCredentialsDoor(SessionDoor):
    """``POST /v1/credentials``: the session's identity and AWS credentials for it
    (docs/credentials.md). The answer is never cached (``Cache-Control: no-store``) and its
    secret parts are never logged."""

    def __init__(
        self,
        translator: SessionTranslator | None,
        credentials: CredentialsSource,
        max_body_bytes: int,
    ) -> None:
        super().__init__(translator, max_body_bytes)
        self._credentials = credentials

    def handle(self, exchange: Exchange) -> Reply:
        exchange.operation = openapi.CREDENTIALS_OPERATION_ID
        session, body, trusted = self._session(exchange)
        issued = self._credentials.credentials(
            session, load_credentials_request(body, trusted=trusted)
        )
        if issued.new_identity:
            metrics.count_identity_created()
        given = issued.credentials
        return envelope.success(
            {
                "identity_id": issued.identity_id,
                "credentials": {
                    "access_key_id": given.access_key_id,
                    "secret_key": given.secret_key,
                    "session_token": given.session_token,
                    "expires_at": envelope.iso8601(given.expiration),
                },
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
