"""Bytes from one connection in, whole HTTP/1.1 requests out, within gunicorn's limits.

The parsing itself is llhttp's (through ``httptools``), strict mode: it rejects what
request smuggling needs (Content-Length beside Transfer-Encoding, two lengths, a bad chunk
size, bare CR or LF, obsolete line folding, a space before a header's colon). What this
module adds: gunicorn's limits (``limit_request_line``, ``limit_request_fields``,
``limit_request_field_size``) and a bound on a whole request head, a cap on the body held
in memory, HTTP/1.0 and 1.1 only, one ``Host``, no protocol upgrade, trailers kept out of
the headers, and requests as plain values.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final

import httptools

# Status and message of each refusal; the worker answers with these and closes.
BAD_REQUEST: Final = (400, "The request is not valid HTTP/1.1.")
BAD_VERSION: Final = (400, "Only HTTP/1.0 and HTTP/1.1 are served.")
BAD_HOST: Final = (400, "An HTTP/1.1 request needs exactly one Host header.")
URI_TOO_LONG: Final = (414, "The request line is too long.")
HEADERS_TOO_LARGE: Final = (431, "Too many request headers, or a header too large.")
REQUEST_TOO_LARGE: Final = (413, "The request's body or trailers are too large.")
UPGRADE_REFUSED: Final = (400, "Protocol upgrades and CONNECT are not served here.")
EXPECTATION_FAILED: Final = (417, "The only expectation served is 100-continue.")

HEAD_LIMIT: Final = 64 * 1024  # bytes of one request head (request line and headers)


class Refused(Exception):
    """The connection's input cannot be served: answer ``status`` and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class Request:
    method: str = ""
    target: bytes = b""  # the request target as sent (origin form, or absolute form)
    version: str = "1.1"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    content_length: int | None = None  # as declared; None when absent (chunked)
    keep_alive: bool = True
    expects_continue: bool = False
    continued: bool = False  # "100 Continue" was sent for it
    upgrade: bool = False  # asked for a protocol upgrade (or CONNECT): refused
    # The body went past the cap: ``body`` holds its first cap + 1 bytes only, the rest is
    # not read, and the connection closes after the answer.
    oversized: bool = False


@dataclass(frozen=True, slots=True)
class Limits:
    request_line: int = 4094  # gunicorn's defaults; 0 means unlimited, as in gunicorn
    fields: int = 100
    field_size: int = 8190
    body: int = 1024 * 1024


class RequestReader:
    """Feed it what the socket gives; take complete requests from ``ready``.

    A request whose body outgrows ``limits.body`` is made ready at once with the part read
    so far (``oversized``), so that the application answers it in its own format; nothing
    after it on the connection is read.
    """

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._parser = httptools.HttpRequestParser(self)
        self.ready: deque[Request] = deque()
        self._current: Request | None = None
        self._headers_done = False
        self._field_count = 0  # header and trailer fields of the current request
        self.stopped = False  # an oversized request was made ready: read no further
        # llhttp hands a header (or a trailer) over only once it is whole, and httptools
        # gathers it meanwhile: bound the bytes one request may take while it stays open.
        self._open_bytes = 0
        self._head_held = 0  # bytes read while the current head is open (for the budget)
        self._head_limit = min(
            HEAD_LIMIT,
            (limits.request_line or HEAD_LIMIT)
            + (limits.fields or 100) * ((limits.field_size or HEAD_LIMIT) + 2),
        )
        self._request_limit = limits.body + 2 * HEAD_LIMIT  # body, chunk framing, trailers

    @property
    def started(self) -> bool:
        """Part of a request has arrived and it is not complete yet."""
        return self._current is not None

    def buffered(self) -> int:
        """Bytes of requests held: the one arriving and those ready."""
        held = sum(len(r.body) for r in self.ready)
        if self._current is not None:
            held += len(self._current.body) + (0 if self._headers_done else self._head_held)
        return held

    def feed(self, data: bytes) -> None:
        """Parse ``data``; raises :class:`Refused` for input that is not served (the
        requests made ready before it stay ready)."""
        if self.stopped:
            return
        open_before = self._current
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.stopped = True
            # llhttp completed the upgrade request before pausing: it is not served
            self.ready = deque(r for r in self.ready if not r.upgrade)
            raise Refused(*UPGRADE_REFUSED) from None
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, _Oversized):
                return
            self.stopped = True
            if isinstance(cause, Refused):  # raised in a callback, wrapped by httptools
                raise cause from None
            raise Refused(*BAD_REQUEST) from None
        head_open = self._current is not None and not self._headers_done
        if head_open:  # at most the whole chunk is this head's: an upper bound
            same = open_before is not None and self._current is open_before
            self._head_held = self._head_held + len(data) if same else len(data)
        if open_before is not None and self._current is open_before:
            # The same request was open before and after: all of this chunk was its own.
            # (The chunk a request begins in is not counted: at most one read, 64 KiB.)
            self._open_bytes += len(data)
            if self._headers_done and self._open_bytes > self._request_limit:
                self.stopped = True
                raise Refused(*REQUEST_TOO_LARGE)
            if not self._headers_done and self._open_bytes > self._head_limit:
                self.stopped = True
                raise Refused(*HEADERS_TOO_LARGE)

    def discard(self) -> None:
        """Drop every request held and read no further (the connection is closing)."""
        self.ready.clear()
        self._current = None
        self._open_bytes = 0
        self._head_held = 0
        self.stopped = True

    def take_continue(self) -> bool:
        """True once for a request whose head is complete, that asked for ``100 Continue``
        (RFC 9110 section 10.1.1) and has sent no body yet: the worker answers it then."""
        request = self._current
        if request is None or not self._headers_done or request.continued or request.body:
            return False
        request.continued = True
        return request.expects_continue

    # --- httptools callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._current = Request()
        self._headers_done = False
        self._field_count = 0
        self._open_bytes = 0
        self._head_held = 0

    def on_url(self, url: bytes) -> None:
        request = self._request()
        request.target += url
        limit = self._limits.request_line
        if limit and len(request.target) > limit:
            raise Refused(*URI_TOO_LONG)

    def on_header(self, name: bytes, value: bytes) -> None:
        request = self._request()
        limits = self._limits
        self._field_count += 1
        if limits.fields and self._field_count > limits.fields:
            raise Refused(*HEADERS_TOO_LARGE)
        # gunicorn counts the whole line: "name: value\r\n"
        if limits.field_size and len(name) + len(value) + 4 > limits.field_size:
            raise Refused(*HEADERS_TOO_LARGE)
        if self._headers_done:
            return  # a trailer (after a chunked body): never one of the request's headers
        request.headers.append((name, value))

    def on_headers_complete(self) -> None:
        request = self._request()
        parser = self._parser
        self._headers_done = True
        request.method = parser.get_method().decode("ascii")
        request.version = parser.get_http_version()
        if request.version not in ("1.0", "1.1"):
            raise Refused(*BAD_VERSION)
        limit = self._limits.request_line
        # gunicorn's limit is the whole request line: "METHOD target HTTP/x.y"
        if limit and len(request.method) + len(request.target) + 10 > limit:
            raise Refused(*URI_TOO_LONG)
        request.keep_alive = parser.should_keep_alive()
        request.upgrade = parser.should_upgrade()
        hosts = 0
        for name, value in request.headers:
            lower = name.lower()
            if lower == b"host":
                hosts += 1
            elif lower == b"content-length":
                request.content_length = int(value)  # llhttp accepted it: digits only
            elif lower == b"expect":
                if value.strip().lower() != b"100-continue":
                    raise Refused(*EXPECTATION_FAILED)
                request.expects_continue = request.version == "1.1"
        if hosts > 1 or (hosts == 0 and request.version == "1.1"):
            raise Refused(*BAD_HOST)
        if request.content_length is not None and request.content_length > self._limits.body:
            self._oversize(request)

    def on_body(self, body: bytes) -> None:
        request = self._request()
        request.body += body
        if len(request.body) > self._limits.body:
            del request.body[self._limits.body + 1 :]
            self._oversize(request)

    def on_message_complete(self) -> None:
        self.ready.append(self._request())
        self._current = None
        self._headers_done = False

    def _oversize(self, request: Request) -> None:
        request.oversized = True
        request.keep_alive = False
        self.ready.append(request)
        self._current = None
        self.stopped = True
        raise _Oversized

    def _request(self) -> Request:
        if self._current is None:  # llhttp calls on_message_begin first, always
            raise Refused(*BAD_REQUEST)
        return self._current


class _Oversized(Exception):
    """Stops llhttp after an oversized request was made ready."""
