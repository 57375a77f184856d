"""Small Flask glue shared by the blueprints."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app, request

from broker.services import Services

EXTENSION = "identity_broker"


def services() -> Services:
    svc: Services = current_app.extensions[EXTENSION]
    return svc


def read_body(limit: int, too_large: Callable[[], Exception]) -> bytes:
    """The request body, at most ``limit`` bytes: a larger declared Content-Length is
    refused before reading, and a body without one (chunked) is read one byte past the
    limit to tell. ``too_large`` makes the door's own error."""
    length = request.content_length
    if length is not None and length > limit:
        raise too_large()
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise too_large()
    return body
