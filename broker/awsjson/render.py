"""AWS JSON 1.1 responses: the success envelope and the one error renderer (contract §1)."""

from __future__ import annotations

import json
from typing import Any

from flask import Response

from broker.errors import BrokerError

CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_HEADER_MESSAGE = 1024  # x-amzn-ErrorMessage is cut here


def success(output: dict[str, Any], request_id: str) -> Response:
    body = json.dumps(output, separators=(",", ":"), ensure_ascii=False)
    response = Response(body, status=200, content_type=CONTENT_TYPE)
    response.headers["x-amzn-RequestId"] = request_id
    return response


def error(err: BrokerError, request_id: str) -> Response:
    body = json.dumps({"__type": err.error_type, "message": err.message}, ensure_ascii=False)
    response = Response(body, status=err.status, content_type=CONTENT_TYPE)
    response.headers["x-amzn-RequestId"] = request_id
    response.headers["x-amzn-ErrorType"] = f"{err.error_type}:"
    # Header values must be printable ASCII on one line; the body keeps the full text.
    response.headers["x-amzn-ErrorMessage"] = printable(err.message, MAX_HEADER_MESSAGE)
    return response


def printable(text: str, limit: int) -> str:
    """At most ``limit`` characters of ``text``, each outside printable ASCII as ``?``: fit
    for a header value, or for echoing a client's header in a message."""
    return "".join(c if " " <= c <= "~" else "?" for c in text[:limit])
