"""The current request's id (``x-amzn-RequestId``), for every log line written meanwhile.

A context variable rather than Flask's ``g``: the two API doors (``broker.http.pipeline``) run
without Flask's request context, and the log formatter must find the id either way.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

from broker.identity.ids import random_uuid

CURRENT: ContextVar[str | None] = ContextVar("broker_request_id", default=None)


def begin() -> tuple[str, Token[str | None]]:
    """A fresh id, made current; give the token to :func:`end` when the request is done."""
    request_id = random_uuid()
    return request_id, CURRENT.set(request_id)


def end(token: Token[str | None]) -> None:
    CURRENT.reset(token)
