"""The AWS JSON 1.1 front door: ``POST /`` with ``X-Amz-Target`` (contract sections 1-2).

The steps run in a fixed order, each failing with the contract's error before the next
one starts: target (a header), body size (checked before the body is parsed), content
type, SigV4, members, handler.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, g, request

from broker.awsjson import render, sigv4, validation
from broker.awsjson.operations import OPERATIONS, TARGET_PREFIX, Operation
from broker.errors import (
    BrokerError,
    RequestTooLargeException,
    SerializationException,
    UnknownOperationException,
)
from broker.web import read_body, services

bp = Blueprint("awsjson", __name__)

ACCEPTED_CONTENT_TYPES = ("application/x-amz-json-1.1", "application/json")
MISSING_TARGET = (
    "Missing X-Amz-Target header: name the operation in the header "
    f"'X-Amz-Target: {TARGET_PREFIX}.<Operation>' (a URL fragment never reaches the server)."
)
UNKNOWN_TARGET = "Unknown operation in the X-Amz-Target header: '{target}'."
BAD_CONTENT_TYPE = "Content-Type must be application/x-amz-json-1.1 or application/json."
BODY_TOO_LARGE = "Request body exceeds the limit of {limit} bytes."
MAX_ECHOED_TARGET = 128  # characters of an unknown X-Amz-Target quoted back


@bp.post("/")
def dispatch() -> Response:
    svc = services()
    name, operation = _operation()
    g.operation = name
    limit = svc.settings.max_body_bytes
    body = read_body(limit, lambda: RequestTooLargeException(BODY_TOO_LARGE.format(limit=limit)))
    _check_content_type()
    headers = dict(request.headers)
    if operation.signed or sigv4.has_authorization(headers):
        g.access_key_id = sigv4.verify_request(
            request.method,
            request.environ.get("RAW_URI", request.path).partition("?")[0],
            request.query_string.decode("latin-1"),
            headers,
            body,
            credentials=svc.settings.credentials,
            region=svc.settings.region,
            now=datetime.fromtimestamp(svc.clock(), UTC),
        )
        svc.limits.check_access_key(g.access_key_id)
    params = validation.load_request(name, body)
    output = operation.handler(svc, params)
    return render.success(output, g.request_id)


def _operation() -> tuple[str, Operation]:
    target = request.headers.get("X-Amz-Target", "").strip()
    if not target:
        raise UnknownOperationException(MISSING_TARGET)
    prefix, _, name = target.partition(".")
    operation = OPERATIONS.get(name) if prefix == TARGET_PREFIX else None
    if operation is None:
        raise UnknownOperationException(
            UNKNOWN_TARGET.format(target=render.printable(target, MAX_ECHOED_TARGET))
        )
    return name, operation


def _check_content_type() -> None:
    mimetype = request.mimetype
    if mimetype and mimetype not in ACCEPTED_CONTENT_TYPES:
        raise SerializationException(BAD_CONTENT_TYPE)


def render_error(err: BrokerError) -> Response:
    return render.error(err, g.get("request_id", ""))
