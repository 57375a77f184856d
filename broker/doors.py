"""The two API front doors as plain WSGI handlers, mounted in front of Flask.

``POST /`` (AWS JSON 1.1, ``broker.awsjson.door``) and ``POST /v1/token`` (the backend door,
``broker.backend.door``) carry every token the broker signs. Flask's request machinery
(contexts, URL matching, before/after hooks, response objects) cost as much per request as
the rest of a returning user's token path without the signature (docs/benchmarks.md), so
these two paths are served here directly; every other route (health, discovery, JWKS,
metrics, the OpenAPI document) stays with Flask, which gets every request not in
:data:`ROUTES`.

What a door does is the same as before, in the same order; what this module adds is what
Flask's hooks and error handlers did for them, once for both:

- a request id (``x-amzn-RequestId`` on every answer, and on every log line meanwhile);
- one error path: a :class:`~broker.errors.BrokerError` is rendered by the door in its own
  format; a Redis fault, which the store turned into ``StoreUnavailable`` (and logged with
  its cause), is counted and answered (AWS: InternalErrorException; backend: UNAVAILABLE);
  a werkzeug
  HTTP error (a client that hung up mid-body) is the door's client error; anything else is
  logged with its traceback and answered as an internal error, never with its text;
- the request metrics (door, operation, outcome, duration);
- 405 for any other method on a door's path (OPTIONS: 200), with ``Allow: OPTIONS, POST``;
- a last resort: should a door's own error rendering fail, an internal error made when the
  door was mounted;
- outbound calls off the keep-alive worker's loop (``broker.blocking``): the door's code
  learns whether it may wait here, and a :class:`~broker.blocking.WouldBlock` it raises
  goes through to the worker, which serves the request again in a thread (nothing is
  answered, counted or logged for the first try). ``may_block(environ)`` names the
  requests that would wait on every call (:func:`by_target`: AWS door operations by
  ``X-Amz-Target``), which the worker sends to a thread at once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, Protocol

from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_cookie
from werkzeug.wsgi import get_content_length, get_input_stream

from broker import blocking, jsontext, metrics, request_id
from broker.blocking import WouldBlock
from broker.errors import (
    INTERNAL_MESSAGE,
    BrokerError,
    InternalErrorException,
    SerializationException,
    StoreUnavailable,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("broker")

BODY_UNREADABLE: Final = "The request body could not be read (cut short or badly chunked)."

#: Status code -> the status line WSGI wants.
STATUS_LINES: Final = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}


@dataclass(frozen=True, slots=True)
class Reply:
    """What a door answers: status, body and the headers of its own format."""

    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


class Exchange:
    """One request as a door sees it, and what the door learned while serving it."""

    __slots__ = ("_headers", "environ", "operation", "outcome", "request_id")

    def __init__(self, environ: WSGIEnvironment, request_id: str) -> None:
        self.environ = environ
        self.request_id = request_id
        self.operation = "unknown"  # the metrics' operation label, once the door knows it
        self.outcome = "success"  # the metrics' outcome label: a door's error names its own
        self._headers: dict[str, str] | None = None

    @property
    def method(self) -> str:
        method: str = self.environ.get("REQUEST_METHOD", "")
        return method

    @property
    def raw_path(self) -> str:
        """The path as sent on the wire (still percent-encoded), without the query."""
        raw: str = self.environ.get("RAW_URI") or self.environ.get("PATH_INFO") or "/"
        return raw.partition("?")[0]

    @property
    def remote_addr(self) -> str:
        """The client's address as the server saw it (a proxy's, behind a proxy)."""
        address: str = self.environ.get("REMOTE_ADDR") or ""
        return address

    @property
    def query_string(self) -> str:
        query: str = self.environ.get("QUERY_STRING", "")
        return query

    @property
    def headers(self) -> dict[str, str]:
        """Every request header under its lower-case name, as werkzeug reads them from the
        environ (one value a name), read once."""
        if self._headers is None:
            self._headers = _lower_case_headers(self.environ)
        return self._headers

    def header(self, name: str) -> str:
        """One header by its lower-case name; empty when absent."""
        return self.headers.get(name, "")

    def header_source(self) -> EnvironHeaders:
        """The headers as werkzeug's case-insensitive mapping (for the session translators)."""
        return EnvironHeaders(self.environ)

    def cookies(self) -> Mapping[str, str]:
        return parse_cookie(self.environ)

    @property
    def mimetype(self) -> str:
        """The Content-Type's media type, lower case, without parameters."""
        content_type: str = self.environ.get("CONTENT_TYPE", "")
        return content_type.partition(";")[0].strip(" \t").lower()  # HTTP's whitespace only

    def body(self, limit: int, too_large: Callable[[], BrokerError]) -> bytes:
        """The request body, at most ``limit`` bytes: a larger declared Content-Length is
        refused before reading, and a body without one (chunked) is read one byte past the
        limit to tell. ``too_large`` makes the door's own error. werkzeug's stream keeps a
        read within the declared length and raises its 400 for a client that hangs up."""
        length = get_content_length(self.environ)
        if length is not None and length > limit:
            raise too_large()
        try:
            body = get_input_stream(self.environ).read(limit + 1)
        except HTTPException:
            raise  # werkzeug's own 400 (a client that hung up): the door's client error
        except Exception:  # the server's reader: a bad chunk, a client gone mid-body
            raise SerializationException(BODY_UNREADABLE) from None
        if len(body) > limit:
            raise too_large()
        return body


def _lower_case_headers(environ: WSGIEnvironment) -> dict[str, str]:
    """What ``{name.lower(): value for name, value in EnvironHeaders(environ).items()}``
    gives, in the same order, read straight from the environ: werkzeug's iterator builds
    each name in title case first, which costs as much again on every request. The
    ``isascii`` test keeps that detour for a non-ASCII name (no server sends one), where
    ``title().lower()`` and ``lower()`` may differ."""
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            if key in _CONTENT_HEADERS_AS_HTTP:  # werkzeug skips these duplicates
                continue
            name = key[5:].replace("_", "-")
        elif key in _CONTENT_HEADERS and value:
            name = key.replace("_", "-")
        else:
            continue
        headers[name.lower() if name.isascii() else name.title().lower()] = value
    return headers


_CONTENT_HEADERS: Final = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH"})
_CONTENT_HEADERS_AS_HTTP: Final = frozenset({"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"})


class Door(Protocol):
    """One API front door: its metrics label, its logger, its work and its error format."""

    metrics_door: str
    log: logging.Logger  # where its Redis faults and unexpected errors are logged
    log_prefix: str  # e.g. "backend door: "

    def handle(self, exchange: Exchange) -> Reply: ...

    def render_error(self, err: BrokerError, exchange: Exchange) -> Reply:
        """The door's answer for ``err``; sets ``exchange.outcome``."""
        ...


def client_error(err: HTTPException) -> BrokerError:
    """A werkzeug HTTP error met while reading a request (a body cut short, say)."""
    message = err.description or err.name
    if (err.code or 500) < 500:
        return SerializationException(message)
    return InternalErrorException(message)


#: A path's blocking hint: will this request (its environ) wait on an outbound call?
Hint = Callable[[Mapping[str, Any]], bool]


def by_target(targets: Collection[str]) -> Hint:
    """The AWS door's hint: the operations named by ``X-Amz-Target`` (full values, e.g.
    ``AWSCognitoIdentityService.GetId``) that call other services."""
    waiting = frozenset(targets)

    def hint(environ: Mapping[str, Any]) -> bool:
        return str(environ.get("HTTP_X_AMZ_TARGET", "")).strip() in waiting

    return hint


class FrontDoors:
    """The WSGI app in front of Flask: the doors' paths here, every other path to Flask."""

    def __init__(
        self,
        fallback: WSGIApplication,
        routes: Mapping[str, Door],
        blocking: Mapping[str, Hint] | None = None,
    ) -> None:
        self._fallback = fallback
        self._routes = dict(routes)
        self._blocking = {path: hint for path, hint in (blocking or {}).items() if path in routes}
        # What a door answers when even its own error rendering failed: made now, while
        # nothing is wrong, so that answering it cannot fail.
        internal = InternalErrorException(INTERNAL_MESSAGE)
        self._last_resort = {
            path: door.render_error(internal, Exchange({}, "")) for path, door in routes.items()
        }

    def may_block(self, environ: Mapping[str, Any]) -> bool:
        """Will this request wait on an outbound call? (Read by the keep-alive worker before
        it serves the request; it must be cheap and must not read the body.)"""
        hint = self._blocking.get(environ.get("PATH_INFO") or "/")
        return hint is not None and environ.get("REQUEST_METHOD") == "POST" and hint(environ)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"  # empty: a request for the mount point itself
        door = self._routes.get(path)
        if door is None:
            return self._fallback(environ, start_response)
        started = time.perf_counter()
        rid, token = request_id.begin()
        waiting = blocking.begin(environ)
        try:
            method = str(environ.get("REQUEST_METHOD", "")).upper()
            if method != "POST":
                return _not_post(start_response, rid, options=method == "OPTIONS")
            exchange = Exchange(environ, rid)
            try:
                reply = _serve(door, exchange)
            except WouldBlock:
                raise  # to the worker, which serves the request again in a thread
            except Exception:  # a door's error rendering failed: nothing of it is trusted
                door.log.exception("%sunexpected error while answering an error", door.log_prefix)
                reply, exchange.outcome = self._last_resort[path], "InternalErrorException"
        finally:
            blocking.end(waiting)
            request_id.end(token)
        headers = [
            ("Content-Type", reply.content_type),
            ("Content-Length", str(len(reply.body))),
            ("x-amzn-RequestId", rid),
            *reply.headers,
        ]
        start_response(STATUS_LINES[reply.status], headers)
        try:
            metrics.observe_request(
                door.metrics_door,
                exchange.operation,
                exchange.outcome,
                time.perf_counter() - started,
            )
        except Exception:  # the answer is ready; a metrics fault must not turn it into a 500
            log.exception("request metrics not recorded")
        return [reply.body]


def _serve(door: Door, exchange: Exchange) -> Reply:
    try:
        return door.handle(exchange)
    except WouldBlock:
        raise
    except BrokerError as err:
        if isinstance(err, StoreUnavailable):
            metrics.REDIS_ERRORS.inc()
        return door.render_error(err, exchange)
    except HTTPException as err:
        return door.render_error(client_error(err), exchange)
    except Exception:
        door.log.exception("%sunexpected error", door.log_prefix)
        return door.render_error(InternalErrorException(INTERNAL_MESSAGE), exchange)


ALLOW: Final = "OPTIONS, POST"


def _not_post(start_response: StartResponse, rid: str, *, options: bool) -> list[bytes]:
    """OPTIONS: 200 naming the methods (as Flask answers it); anything else: 405."""
    common = [("Allow", ALLOW), ("x-amzn-RequestId", rid)]
    if options:
        start_response(STATUS_LINES[200], [("Content-Length", "0"), *common])
        return [b""]
    body = _json_bytes(
        {"error": "Method Not Allowed", "message": "This path answers POST requests only."}
    )
    start_response(
        STATUS_LINES[405],
        [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *common],
    )
    return [body]


def _json_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON; a text holding an unpaired surrogate (which UTF-8 cannot carry)
    is written with ASCII escapes instead, still valid JSON."""
    text = jsontext.COMPACT.encode(value)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def json_reply(
    value: Any, content_type: str, status: int = 200, headers: tuple[tuple[str, str], ...] = ()
) -> Reply:
    """A compact JSON answer (UTF-8, non-ASCII as is)."""
    return Reply(status, _json_bytes(value), content_type, headers)
