"""A parsed request as a WSGI environ (PEP 3333), and the application's answer as bytes."""

from __future__ import annotations

import io
import re
import sys
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import Any, Final
from urllib.parse import unquote_to_bytes

import httptools

from broker.server.parsing import Request

STATUS: Final = re.compile(r"[2-5][0-9][0-9] [^\r\n\0]*")  # no 1xx: the worker sends those
TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # a header name (RFC 9110 5.6.2)
UNSAFE_VALUE: Final = re.compile(r"[\r\n\0]")
SOFTWARE: Final = "identity-broker"


class BadTarget(ValueError):
    """The request target is not a path (nor an absolute URL) that can be served."""


class Server:
    """What every environ of one listening socket shares."""

    def __init__(
        self, name: str, port: str, multiprocess: bool, *, multithread: bool = False
    ) -> None:
        self.base: dict[str, Any] = {
            "SCRIPT_NAME": "",
            "SERVER_SOFTWARE": SOFTWARE,
            "SERVER_NAME": name,
            "SERVER_PORT": port,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": multithread,  # requests served in threads too (offload)
            "wsgi.multiprocess": multiprocess,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,  # the whole body is in wsgi.input, and no more
        }


def environ_for(request: Request, server: Server, peer: tuple[str, int] | None) -> dict[str, Any]:
    """The WSGI environ. Header names holding ``_`` are dropped (gunicorn's default, so that
    ``X-Auth_Token`` cannot pose as ``X-Auth-Token``); repeated headers are joined by a
    comma, as RFC 9110 allows for the headers the broker reads."""
    raw = request.target.decode("latin-1")
    path, query = _split_target(request.target)
    environ = dict(server.base)
    environ.update(
        {
            "REQUEST_METHOD": request.method,
            "PATH_INFO": (unquote_to_bytes(path) if b"%" in path else path).decode("latin-1"),
            "QUERY_STRING": query.decode("latin-1"),
            "RAW_URI": raw,
            "REQUEST_URI": raw,
            "SERVER_PROTOCOL": f"HTTP/{request.version}",
            "REMOTE_ADDR": peer[0] if peer else "",
            "REMOTE_PORT": str(peer[1]) if peer else "",
            "wsgi.input": io.BytesIO(request.body),
        }
    )
    for name, value in request.headers:
        key = _environ_key(name)
        if key is None:
            continue
        text = value.decode("latin-1")
        if key in environ:
            environ[key] = environ[key] + "," + text
        else:
            environ[key] = text
    return environ


_KEYS: dict[bytes, str | None] = {}  # header name as sent -> environ key (None: dropped)
_MAX_KEYS = 512


def _environ_key(name: bytes) -> str | None:
    """``X-Amz-Date`` -> ``HTTP_X_AMZ_DATE``; None for a name holding ``_``. Remembered for
    the names clients keep sending (a bounded table: others are worked out each time)."""
    key = _KEYS.get(name, "")
    if key != "":
        return key
    if b"_" in name:
        key = None
    else:
        key = name.decode("latin-1").upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
    if len(_KEYS) < _MAX_KEYS:
        _KEYS[name] = key
    return key


def _split_target(target: bytes) -> tuple[bytes, bytes]:
    if target.startswith(b"/"):
        path, _, query = target.partition(b"#")[0].partition(b"?")
        return path, query
    try:  # absolute form (RFC 9112 section 3.2.2): what a proxy sends
        url = httptools.parse_url(target)
    except httptools.HttpParserInvalidURLError:
        raise BadTarget(target[:64].decode("latin-1")) from None
    if url.schema not in (b"http", b"https") or url.host is None:
        raise BadTarget(target[:64].decode("latin-1"))  # "*", an authority, another scheme
    return url.path or b"/", url.query or b""


class Response:
    """Collects what the application answers through ``start_response`` and its body."""

    __slots__ = ("body_length", "headers", "head_method", "status", "version", "written")

    def __init__(self, version: str, method: str) -> None:
        self.version = version
        self.head_method = method == "HEAD"
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.body_length = 0  # bytes of body sent (the access log's "bytes")
        self.written: list[bytes] = []  # through the legacy write() callable (PEP 3333)

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        """Nothing is sent before the application returns, so a second call (with
        ``exc_info``, PEP 3333) simply replaces the first. A malformed status or header is
        the application's fault: ValueError, answered 500 by the worker."""
        if self.status and exc_info is None:
            raise AssertionError("start_response called twice without exc_info")
        if not isinstance(status, str) or not STATUS.fullmatch(status):
            raise ValueError(f"invalid status line from the application: {status!r}")
        for name, value in headers:
            if not isinstance(name, str) or not TOKEN.fullmatch(name):
                raise ValueError(f"invalid response header name {name!r}")
            if not isinstance(value, str) or UNSAFE_VALUE.search(value):
                raise ValueError(f"invalid value of response header {name!r}")
        self.status = status
        self.headers = headers
        return self.written.append

    def encode(self, chunks: Iterable[bytes], keep_alive: bool) -> bytes:
        """Status line, headers and body in one buffer. The body is gathered first so that
        its length is known: the broker's answers are small."""
        body = b"".join(self.written) + b"".join(chunks) if self.written else b"".join(chunks)
        if not self.status:
            raise ValueError("the application returned without calling start_response")
        code = self.status[:3]
        bodiless = self.head_method or code in ("204", "304")
        lines = [f"HTTP/{self.version} {self.status}"]
        has_length = False
        for name, value in self.headers:
            lower = name.lower()
            if lower == "content-length":
                has_length = True
                value = str(len(body)) if not self.head_method else value
            elif lower in ("connection", "transfer-encoding", "keep-alive"):
                continue  # the worker decides these
            lines.append(f"{name}: {value}")
        if not has_length and not bodiless:
            lines.append(f"Content-Length: {len(body)}")
        lines.append(f"Date: {http_date()}")
        if not keep_alive:
            lines.append("Connection: close")
        elif self.version == "1.0":
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if bodiless:
            return head
        self.body_length = len(body)
        return head + body


_date: tuple[int, str] = (0, "")


def http_date() -> str:
    """The Date header's value, formatted once a second."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, formatdate(now, usegmt=True))
    return _date[1]
