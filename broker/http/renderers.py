"""The error renderers of the edge: one per answer format, in one registry.

Every error a route meets is first made one :class:`~broker.errors.BrokerError` (the one
error model, ``broker.http.pipeline.error_of``) and then answered by the renderer of the
route's format, named by the route: the AWS door's ``aws-json-1.1``
(``broker.awsjson.render``), the backend door's ``backend-envelope``
(``broker.backend.envelope``) and :data:`PLAIN_JSON` here for every route Flask serves.
The composition root (``broker.app.wiring.renderers``) builds the registry, explicitly,
from those three.

A renderer returns the answer and its outcome label for the request metrics (the error
type, or the backend door's envelope code).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from broker.errors import BrokerError
from broker.http.exchange import Reply, json_reply

#: An error -> the answer and its outcome label.
ErrorRenderer = Callable[[BrokerError], tuple[Reply, str]]

#: The format of the routes Flask serves (health, discovery, JWKS, metrics, OpenAPI).
PLAIN_JSON: Final = "json"
PLAIN_CONTENT_TYPE: Final = "application/json"


def plain_json(err: BrokerError) -> tuple[Reply, str]:
    """``{"error": <type>, "message": <text>}`` with the error's status."""
    body = {"error": err.error_type, "message": err.message}
    return json_reply(body, PLAIN_CONTENT_TYPE, err.status), err.error_type


def routing_error(err: HTTPException) -> Response:
    """Flask's own answers (no such route, method not allowed) in the same plain JSON:
    werkzeug's name and description, with its status and its headers (a 405's ``Allow``)
    (Flask's handler for HTTPException)."""
    body = {"error": err.name, "message": err.description}
    reply = json_reply(body, PLAIN_CONTENT_TYPE, err.code or 500)
    response = Response(reply.body, reply.status, content_type=reply.content_type)
    for name, value in err.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


@dataclass(frozen=True)
class Renderers:
    """Format name -> its renderer. Unknown names fail when the doors are mounted, not on
    a request (:meth:`require`)."""

    by_format: Mapping[str, ErrorRenderer]

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_format", MappingProxyType(dict(self.by_format)))

    def require(self, name: str) -> ErrorRenderer:
        renderer = self.by_format.get(name)
        if renderer is None:
            raise KeyError(f"no error renderer for the format {name!r}")
        return renderer

    def render(self, name: str, err: BrokerError) -> tuple[Reply, str]:
        return self.require(name)(err)
