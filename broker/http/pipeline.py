"""The one request pipeline: the WSGI middleware every request goes through.

``POST /`` (AWS JSON 1.1, ``broker.awsjson.door``) and ``POST /v1/token`` (the backend door,
``broker.backend.door``) carry every token the broker signs. Flask's request machinery
(contexts, URL matching, before/after hooks, response objects) cost as much per request as
the rest of a returning user's token path without the signature (docs/benchmarks.md), so
these two paths are served here directly, by the door mounted on the path; every other
route (health, discovery, JWKS, metrics, the OpenAPI document) goes on to Flask.

What this middleware does for every request, door or Flask route:

- a request id (``x-amzn-RequestId`` on every answer, and on every log line meanwhile);
- one error path (:func:`error_of`): a :class:`~broker.errors.BrokerError` is kept; a Redis
  fault, which the store turned into ``StoreUnavailable`` (and logged with its cause), is
  counted; a werkzeug HTTP error (a client that hung up mid-body) is the client's error;
  anything else is logged with its traceback and becomes an internal error, never with its
  text. The result is answered by the renderer of the route's format
  (``broker.http.renderers``): the door's own, or plain JSON for Flask's routes (Flask
  propagates their exceptions to here; only its routing answers, 404 and 405, it renders
  itself, through ``renderers.routing_error``).

And for the doors:

- the request metrics (door, operation, outcome, duration);
- 405 for any other method on a door's path (OPTIONS: 200), with ``Allow: OPTIONS, POST``;
- a last resort: should a door's error rendering fail, an internal error rendered when the
  door was mounted;
- outbound calls off the keep-alive worker's loop (``broker.blocking``): the door's code
  learns whether it may wait here, and a :class:`~broker.blocking.WouldBlock` it raises
  goes through to the worker, which serves the request again in a thread (nothing is
  answered, counted or logged for the first try). ``may_block(environ)`` names the
  requests that would wait on every call (:func:`by_target`: AWS door operations by
  ``X-Amz-Target``), which the worker sends to a thread at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

from werkzeug.exceptions import HTTPException

from broker import blocking
from broker.blocking import WouldBlock
from broker.errors import (
    INTERNAL_MESSAGE,
    BrokerError,
    InternalErrorException,
    SerializationException,
    StoreUnavailable,
)
from broker.http.exchange import STATUS_LINES, Exchange, Reply, json_bytes
from broker.http.renderers import PLAIN_JSON, ErrorRenderer, Renderers
from broker.observability import metrics, request_id

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("broker")

REQUEST_ID_HEADER: Final = "x-amzn-RequestId"
ALLOW: Final = "OPTIONS, POST"


class Door(Protocol):
    """One API front door: its metrics label, its error format, its logger and its work."""

    metrics_door: str
    error_format: str  # a name in the renderer registry
    log: logging.Logger  # where its unexpected errors are logged
    log_prefix: str  # e.g. "backend door: "

    def handle(self, exchange: Exchange) -> Reply:
        """The answer; raises a BrokerError (or anything) for the edge to render."""
        ...


def client_error(err: HTTPException) -> BrokerError:
    """A werkzeug HTTP error met while reading a request (a body cut short, say)."""
    message = err.description or err.name
    if (err.code or 500) < 500:
        return SerializationException(message)
    return InternalErrorException(message)


def error_of(exc: Exception, where: logging.Logger, prefix: str = "") -> BrokerError:
    """Any exception a route raised -> the one error model (logged when unexpected)."""
    if isinstance(exc, BrokerError):
        if isinstance(exc, StoreUnavailable) and exc.redis_fault:
            metrics.REDIS_ERRORS.inc()
        return exc
    if isinstance(exc, HTTPException):
        return client_error(exc)
    where.error("%sunexpected error", prefix, exc_info=exc)
    return InternalErrorException(INTERNAL_MESSAGE)


#: A path's blocking hint: will this request (its environ) wait on an outbound call?
Hint = Callable[[Mapping[str, Any]], bool]


def always(environ: Mapping[str, Any]) -> bool:
    """The hint of a path whose every request waits on another service."""
    return True


def by_target(targets: Collection[str]) -> Hint:
    """The AWS door's hint: the operations named by ``X-Amz-Target`` (full values, e.g.
    ``AWSCognitoIdentityService.GetId``) that call other services."""
    waiting = frozenset(targets)

    def hint(environ: Mapping[str, Any]) -> bool:
        return str(environ.get("HTTP_X_AMZ_TARGET", "")).strip() in waiting

    return hint


class _Mounted:
    """A door on its path, with its renderer and its last-resort answer, made at mount."""

    __slots__ = ("door", "last_resort", "render")

    def __init__(self, door: Door, render: ErrorRenderer) -> None:
        self.door = door
        self.render = render
        # Made now, while nothing is wrong, so that answering it cannot fail.
        self.last_resort = render(InternalErrorException(INTERNAL_MESSAGE))[0]


class FrontDoors:
    """The WSGI app in front of Flask: the doors' paths here, every other path to Flask."""

    def __init__(
        self,
        fallback: WSGIApplication,
        routes: Mapping[str, Door],
        renderers: Renderers,
        blocking: Mapping[str, Hint] | None = None,
    ) -> None:
        self._fallback = fallback
        self._routes = {
            path: _Mounted(door, renderers.require(door.error_format))
            for path, door in routes.items()
        }
        self._plain = renderers.require(PLAIN_JSON)
        self._blocking = {path: hint for path, hint in (blocking or {}).items() if path in routes}

    def may_block(self, environ: Mapping[str, Any]) -> bool:
        """Will this request wait on an outbound call? (Read by the keep-alive worker before
        it serves the request; it must be cheap and must not read the body.)"""
        hint = self._blocking.get(environ.get("PATH_INFO") or "/")
        return hint is not None and environ.get("REQUEST_METHOD") == "POST" and hint(environ)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"  # empty: a request for the mount point itself
        mounted = self._routes.get(path)
        rid, token = request_id.begin()
        try:
            if mounted is None:
                return self._flask(environ, start_response, rid)
            return self._door(mounted, environ, start_response, rid)
        finally:
            request_id.end(token)

    def _flask(
        self, environ: WSGIEnvironment, start_response: StartResponse, rid: str
    ) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if not any(name.lower() == "x-amzn-requestid" for name, _ in headers):
                headers.append((REQUEST_ID_HEADER, rid))
            return start_response(status, headers, exc_info)

        try:
            return self._fallback(environ, start)
        except Exception as exc:  # a Flask route's error (Flask propagates them to here)
            reply, _ = self._plain(error_of(exc, log))
            return _answer(start_response, reply, rid)

    def _door(
        self,
        mounted: _Mounted,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        rid: str,
    ) -> Iterable[bytes]:
        started = time.perf_counter()
        door = mounted.door
        waiting = blocking.begin(environ)
        try:
            method = str(environ.get("REQUEST_METHOD", "")).upper()
            if method != "POST":
                return _not_post(start_response, rid, options=method == "OPTIONS")
            exchange = Exchange(environ, rid)
            try:
                reply = door.handle(exchange)
            except WouldBlock:
                raise  # to the worker, which serves the request again in a thread
            except Exception as exc:
                try:
                    reply, exchange.outcome = mounted.render(
                        error_of(exc, door.log, door.log_prefix)
                    )
                except Exception:  # the rendering failed: nothing of it is trusted
                    door.log.exception(
                        "%sunexpected error while answering an error", door.log_prefix
                    )
                    reply, exchange.outcome = mounted.last_resort, "InternalErrorException"
        finally:
            blocking.end(waiting)
        result = _answer(start_response, reply, rid)
        try:
            metrics.observe_request(
                door.metrics_door,
                exchange.operation,
                exchange.outcome,
                time.perf_counter() - started,
            )
        except Exception:  # the answer is ready; a metrics fault must not turn it into a 500
            log.exception("request metrics not recorded")
        return result


def _answer(start_response: StartResponse, reply: Reply, rid: str) -> list[bytes]:
    headers = [
        ("Content-Type", reply.content_type),
        ("Content-Length", str(len(reply.body))),
        (REQUEST_ID_HEADER, rid),
        *reply.headers,
    ]
    start_response(STATUS_LINES[reply.status], headers)
    return [reply.body]


def _not_post(start_response: StartResponse, rid: str, *, options: bool) -> list[bytes]:
    """OPTIONS: 200 naming the methods (as Flask answers it); anything else: 405."""
    common = [("Allow", ALLOW), (REQUEST_ID_HEADER, rid)]
    if options:
        start_response(STATUS_LINES[200], [("Content-Length", "0"), *common])
        return [b""]
    body = json_bytes(
        {"error": "Method Not Allowed", "message": "This path answers POST requests only."}
    )
    start_response(
        STATUS_LINES[405],
        [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *common],
    )
    return [body]
