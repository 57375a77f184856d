"""The AWS JSON 1.1 front door: ``POST /`` with ``X-Amz-Target`` (contract sections 1-2).

The steps run in a fixed order, each failing with the contract's error before the next
one starts: target (a header), for an operation served without SigV4 the rate limit of its
source address (before the body is even read), body size (checked before the body is
parsed), content type, SigV4, members, handler (which limits an unsigned operation per
pool once it has found the pool). Served by ``broker.http.pipeline`` (plain WSGI, no Flask request).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from broker.awsjson import render, sigv4, validation
from broker.awsjson.operations import OPERATIONS, TARGET_PREFIX, Operation
from broker.errors import (
    RequestTooLargeException,
    SerializationException,
    UnknownOperationException,
)
from broker.http.exchange import Exchange, Reply
from broker.services import Services

PATH = "/"
ACCEPTED_CONTENT_TYPES = ("application/x-amz-json-1.1", "application/json")
MISSING_TARGET = (
    "Missing X-Amz-Target header: name the operation in the header "
    f"'X-Amz-Target: {TARGET_PREFIX}.<Operation>' (a URL fragment never reaches the server)."
)
UNKNOWN_TARGET = "Unknown operation in the X-Amz-Target header: '{target}'."
BAD_CONTENT_TYPE = "Content-Type must be application/x-amz-json-1.1 or application/json."
BODY_TOO_LARGE = "Request body exceeds the limit of {limit} bytes."
MAX_ECHOED_TARGET = 128  # characters of an unknown X-Amz-Target quoted back


class AwsJsonDoor:
    metrics_door = "aws"
    error_format = render.FORMAT
    log = logging.getLogger("broker")
    log_prefix = ""

    def __init__(self, svc: Services) -> None:
        self._svc = svc
        limit = svc.settings.max_body_bytes
        self._limit = limit
        self._too_large = lambda: RequestTooLargeException(BODY_TOO_LARGE.format(limit=limit))

    def handle(self, exchange: Exchange) -> Reply:
        svc = self._svc
        name, operation = _operation(exchange.header("x-amz-target"))
        exchange.operation = name
        if not operation.signed:  # anyone may call these: limited per address, signed or not
            svc.limits.check_unsigned_address(exchange.remote_addr)
        body = exchange.body(self._limit, self._too_large)
        mimetype = exchange.mimetype
        if mimetype and mimetype not in ACCEPTED_CONTENT_TYPES:
            raise SerializationException(BAD_CONTENT_TYPE)
        headers = exchange.headers
        if operation.signed or sigv4.has_authorization(headers):
            access_key_id = sigv4.verify_request(
                exchange.method,
                exchange.raw_path,
                exchange.query_string,
                headers,
                body,
                credentials=svc.settings.credentials,
                region=svc.settings.region,
                now=datetime.fromtimestamp(svc.clock(), UTC),
            )
            svc.limits.check_access_key(access_key_id)
        params = validation.load_request(name, body)
        return render.success(operation.handler(svc, params))


def _operation(header: str) -> tuple[str, Operation]:
    target = header.strip()
    if not target:
        raise UnknownOperationException(MISSING_TARGET)
    prefix, _, name = target.partition(".")
    operation = OPERATIONS.get(name) if prefix == TARGET_PREFIX else None
    if operation is None:
        raise UnknownOperationException(
            UNKNOWN_TARGET.format(target=render.printable(target, MAX_ECHOED_TARGET))
        )
    return name, operation
