"""One GET of a JSON document over HTTP(S), within a total deadline.

The deadline covers every step: the name lookup (in :class:`BoundedCalls` threads, since
``getaddrinfo`` takes no timeout), each connect attempt, the TLS handshake (Python bounds a
handshake as a whole by the socket's timeout), sending the request, and every read of the
status line, headers and body: before each read the socket's timeout is set to the time
left, so a server that trickles a byte at a time is cut off when the time is up, not after
its last byte. Also: at most ``max_bytes`` of body (a larger ``Content-Length`` is refused
before any body is read), http.client's limits on the head (65,536 bytes a line, 100
header fields), no redirect followed (RFC 8725 section 3.10's advice for key URLs: a
redirect is an error), ``Connection: close`` and no compression asked for.

The JSON must be strict RFC 8259 text in UTF-8: no ``NaN``/``Infinity``, nested at most
``max_depth`` levels. Python's parser recurses once per level and raises RecursionError
around 1,000 levels; that is caught and reported like any other malformed document.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from typing import Any, Final, NoReturn
from urllib.parse import urlsplit

from broker.outbound.calls import BoundedCalls
from broker.outbound.errors import (
    BadStatus,
    DeadlineExceeded,
    MalformedDocument,
    OutboundError,
    TooLarge,
    Unreachable,
)

#: A JWKS is 4 levels deep ({"keys": [{"x5c": [...]}]}), a discovery document 2 or 3.
DEFAULT_MAX_DEPTH: Final = 16
READ_SIZE: Final = 65536
USER_AGENT: Final = "identity-broker"
DEFAULT_PORTS: Final = {"http": 80, "https": 443}
#: Name lookups in flight at once per process (each bounded by the caller's deadline).
RESOLVER_THREADS: Final = 4

_resolver = BoundedCalls(RESOLVER_THREADS, "outbound-resolver")
_tls: ssl.SSLContext | None = None
_tls_lock = threading.Lock()


def get_json(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    max_depth: int = DEFAULT_MAX_DEPTH,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """GET ``url`` and parse its JSON body; every failure is an :class:`OutboundError`.

    ``timeout`` is the total time in seconds the whole call may take."""
    deadline = time.monotonic() + timeout
    body = get(url, deadline=deadline, max_bytes=max_bytes, headers=headers)
    return parse_json(body, max_depth)


def get(
    url: str,
    *,
    deadline: float,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """The body of a 200 answer to ``GET url`` by ``deadline`` (``time.monotonic()``)."""
    try:
        return _get(url, deadline, max_bytes, headers or {})
    except OutboundError:
        raise
    except TimeoutError:
        raise DeadlineExceeded("the call did not finish in time") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # refused, reset, TLS, bad HTTP, a bad URL or port, an unencodable host name
        raise Unreachable(type(exc).__name__) from None


def parse_json(body: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Strict JSON (RFC 8259) in UTF-8, at most ``max_depth`` levels of arrays and objects."""
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except RecursionError:
        raise MalformedDocument("JSON nested too deeply") from None
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise MalformedDocument("not JSON") from None
    if _deeper_than(document, max_depth):
        raise MalformedDocument(f"JSON nested deeper than {max_depth} levels")
    return document


def _get(url: str, deadline: float, max_bytes: int, headers: Mapping[str, str]) -> bytes:
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        raise Unreachable("not an http(s) URL without credentials")
    host = parts.hostname
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    sock = _connect(host, port, deadline)
    try:
        if parts.scheme == "https":
            sock.settimeout(_left(deadline))
            sock = _tls_context().wrap_socket(sock, server_hostname=host)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [
            f"GET {target} HTTP/1.1",
            f"Host: {parts.netloc}",
            "Accept: application/json",
            "Accept-Encoding: identity",
            f"User-Agent: {USER_AGENT}",
            "Connection: close",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        sock.settimeout(_left(deadline))
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        response = http.client.HTTPResponse(_Wire(sock, deadline), method="GET")  # type: ignore[arg-type]
        response.begin()
        if response.status != 200:
            raise BadStatus(response.status)
        declared = response.getheader("Content-Length")
        if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
            raise TooLarge(f"the body declares more than {max_bytes} bytes")
        body = bytearray()
        while len(body) <= max_bytes:
            chunk = response.read(min(READ_SIZE, max_bytes + 1 - len(body)))
            if not chunk:
                break
            body += chunk
        if len(body) > max_bytes:
            raise TooLarge(f"the body is larger than {max_bytes} bytes")
        if response.length:  # Content-Length promised more than came before the close
            raise Unreachable("the body was cut short")
        return bytes(body)
    finally:
        sock.close()


def _connect(host: str, port: int, deadline: float) -> socket.socket:
    """A connected socket: each address in turn, within the time left."""
    last: OSError | None = None
    for family, kind, proto, _, address in _addresses(host, port, deadline):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(_left(deadline))
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            if isinstance(exc, TimeoutError) or time.monotonic() >= deadline:
                raise DeadlineExceeded("no connection in time") from None
            last = exc
    raise Unreachable(type(last).__name__ if last else "no address") from None


def _addresses(host: str, port: int, deadline: float) -> list[Any]:
    """``getaddrinfo``, in a resolver thread unless ``host`` is an IP address already."""

    def lookup() -> list[Any]:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _resolver.run(lookup, deadline - time.monotonic())
    return lookup()


def _tls_context() -> ssl.SSLContext:
    """The system's trust store, loaded once per process (it takes milliseconds)."""
    global _tls
    with _tls_lock:
        if _tls is None:
            _tls = ssl.create_default_context()
        return _tls


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("the call did not finish in time")
    return left


class _Wire:
    """What http.client's response reads from: the socket, through reads bounded by the
    time left until the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._raw = _DeadlineReader(sock, deadline)

    def makefile(self, mode: str, *args: object, **kwargs: object) -> io.BufferedReader:
        return io.BufferedReader(self._raw)


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.settimeout(_left(self._deadline))
        try:
            return self._sock.recv_into(buffer)
        except TimeoutError:
            raise DeadlineExceeded("the call did not finish in time") from None


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _deeper_than(document: Any, limit: int) -> bool:
    """Arrays and objects nested more than ``limit`` levels (a walk with a stack of its own:
    the document may be as deep as the parser allowed)."""
    if not isinstance(document, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
