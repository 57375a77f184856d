"""One request as a door sees it (:class:`Exchange`), what a door answers (:class:`Reply`),
and the JSON that answers are written in (no Flask here).

The JSON encoders are made once: ``json.dumps`` builds a new ``JSONEncoder`` on every call
given options (``separators``, ``ensure_ascii``), which costs more than encoding a small
object. ``COMPACT_JSON.encode(v)`` is ``json.dumps(v, separators=(",", ":"),
ensure_ascii=False)`` and ``PLAIN_JSON.encode(v)`` is ``json.dumps(v, ensure_ascii=False)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_cookie
from werkzeug.wsgi import get_content_length, get_input_stream

from broker.errors import BrokerError, SerializationException

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

COMPACT_JSON: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
PLAIN_JSON: Final = json.JSONEncoder(ensure_ascii=False)

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


def json_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON; a text holding an unpaired surrogate (which UTF-8 cannot carry)
    is written with ASCII escapes instead, still valid JSON."""
    text = COMPACT_JSON.encode(value)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def json_reply(
    value: Any, content_type: str, status: int = 200, headers: tuple[tuple[str, str], ...] = ()
) -> Reply:
    """A compact JSON answer (UTF-8, non-ASCII as is)."""
    return Reply(status, json_bytes(value), content_type, headers)
