"""AWS JSON 1.1 responses: the success envelope and the one error renderer (contract §1)."""

from __future__ import annotations

from typing import Any

from broker.errors import BrokerError
from broker.http.exchange import Reply, json_reply

#: This format's name in the edge's renderer registry (``broker.http.renderers``).
FORMAT = "aws-json-1.1"
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_HEADER_MESSAGE = 1024  # x-amzn-ErrorMessage is cut here


def success(output: dict[str, Any]) -> Reply:
    return json_reply(output, CONTENT_TYPE)


def error(err: BrokerError) -> Reply:
    # Header values must be printable ASCII on one line; the body keeps the full text.
    headers = (
        ("x-amzn-ErrorType", f"{err.error_type}:"),
        ("x-amzn-ErrorMessage", printable(err.message, MAX_HEADER_MESSAGE)),
    )
    body = {"__type": err.error_type, "message": err.message}
    return json_reply(body, CONTENT_TYPE, err.status, headers)


def error_answer(err: BrokerError) -> tuple[Reply, str]:
    """The registry's renderer: the answer and its outcome label (the error type)."""
    return error(err), err.error_type


def printable(text: str, limit: int) -> str:
    """At most ``limit`` characters of ``text``, each outside printable ASCII as ``?``: fit
    for a header value, or for echoing a client's header in a message."""
    return "".join(c if " " <= c <= "~" else "?" for c in text[:limit])
