"""``KeepAliveWorker``: a gunicorn worker class that serves WSGI with persistent connections.

One thread, one selector: the listening sockets and every open connection. A connection
whose input holds a whole request has it served at once, synchronously, as gunicorn's sync
worker would (the broker's requests are short and wait only on Redis); a connection that
is idle, or still sending its request, costs nothing while it waits. So, unlike the sync
worker, slow or idle clients do not hold the worker, and a client that sends many requests
does not pay for a new TCP connection and a gunicorn request setup each time.

Kept from gunicorn: the arbiter, signals and graceful shutdown, the heartbeat (``notify``),
``max_requests``, ``timeout`` (the longest a request may take to arrive), ``keepalive`` (how
long an idle connection stays open), ``worker_connections``, the request limits and the
access log (``logger_class``). Refusals (bad HTTP, limits) are answered in JSON.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import selectors
import socket
import time
from datetime import timedelta
from typing import Any

from gunicorn.workers.base import Worker

from broker.server.parsing import Limits, Refused, Request, RequestReader
from broker.server.wsgi import BadTarget, Response, Server, environ_for

READ_SIZE = 65536
DRAIN_SECONDS = 2.0  # lingering on a connection closed with unread input (RFC 9112 9.6)
DRAIN_BYTES = 65536
ACCEPT_DELAY_PER_CONNECTION = 0.0002  # seconds a worker defers an accept per connection held
MAX_ACCEPT_DELAY = 0.005
SWEEP_SECONDS = 0.25  # how often connections past their deadline are looked for
STATUS_PHRASES = {
    400: "Bad Request",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


class Connection:
    __slots__ = (
        "addr",
        "deadline",
        "drained",
        "draining",
        "in_request",
        "reader",
        "server",
        "sock",
    )

    def __init__(self, sock: socket.socket, addr: Any, reader: RequestReader, server: Server):
        self.sock = sock
        self.addr = addr if isinstance(addr, tuple) else None
        self.reader = reader
        self.server = server
        self.deadline = 0.0  # monotonic: closed when reached (idle, slow request, drain)
        self.in_request = False  # part of a request has arrived
        self.draining = False  # answered and half-closed: reading what is left, then closing
        self.drained = 0


class KeepAliveWorker(Worker):  # type: ignore[misc]
    # What gunicorn's (untyped) base class provides.
    alive: bool
    nr: int
    max_requests: int
    timeout: int
    ppid: int
    cfg: Any
    log: Any
    sockets: list[socket.socket]
    PIPE: tuple[int, int]
    wsgi: Any

    def init_process(self) -> None:
        from config.settings import Settings  # the app's own settings: the body limit

        cfg = self.cfg
        if cfg.is_ssl:
            raise RuntimeError("TLS is not served by this worker: terminate it in front")
        self._limits = Limits(
            request_line=cfg.limit_request_line,
            fields=cfg.limit_request_fields,
            field_size=cfg.limit_request_field_size,
            body=Settings.from_env(os.environ).max_body_bytes,
        )
        self._keepalive = float(cfg.keepalive)
        # gunicorn hands its workers half the timeout (they notify twice per period)
        self._request_timeout = float(cfg.timeout or 30)
        self._max_connections = max(1, int(cfg.worker_connections))
        self._connections: dict[int, Connection] = {}
        self._selector = selectors.DefaultSelector()
        self._servers: dict[int, Server] = {}
        self._last_notify = 0.0
        self._listening = False
        self._accept_at = 0.0  # when a deferred accept is due (0: none)
        self._next_sweep = 0.0  # when to close the connections past their deadline
        super().init_process()

    # --- the loop --------------------------------------------------------------------------
    def run(self) -> None:
        selector = self._selector
        for listener in self.sockets:
            listener.setblocking(False)
            name = listener.getsockname()
            host, port = (name[0], str(name[1])) if isinstance(name, tuple) else (str(name), "")
            self._servers[listener.fileno()] = Server(host, port, self.cfg.workers > 1)
        selector.register(self.PIPE[0], selectors.EVENT_READ, self.PIPE[0])
        self._listen(True)
        while self.alive:
            self._turn()
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                break
        self._shut_down()

    def _turn(self) -> None:
        """One pass: wait for input (a second at most), serve what is whole, keep time."""
        self._heartbeat()
        timeout = 1.0
        if self._accept_at:
            timeout = max(0.0, min(timeout, self._accept_at - time.monotonic()))
        for key, _ in self._selector.select(timeout):
            data = key.data
            if isinstance(data, Connection):
                self._readable(data)
            elif data is None:
                self._listener_ready(key.fileobj)  # type: ignore[arg-type]
            else:
                _drain_pipe(self.PIPE[0])
        now = time.monotonic()
        if self._accept_at and now >= self._accept_at and self.alive:
            self._accept_at = 0.0
            for listener in self.sockets:
                self._accept(listener)
            self._listen(True)
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_SECONDS
            for conn in [c for c in self._connections.values() if c.deadline < now]:
                self._close(conn)

    def _shut_down(self) -> None:
        """Graceful: take no new connection, close the idle ones, and finish the requests
        that are arriving, until gunicorn's graceful timeout (the arbiter kills after it)."""
        self._accept_at = 0.0
        self._listen(False)
        deadline = time.monotonic() + float(self.cfg.graceful_timeout)
        while time.monotonic() < deadline:
            for conn in [c for c in self._connections.values() if not c.in_request]:
                self._close(conn)
            if not self._connections:
                break
            self._turn()
        for conn in list(self._connections.values()):
            self._close(conn)

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_notify >= 1.0:
            self._last_notify = now
            self.notify()

    def _listen(self, on: bool) -> None:
        """Watch the listening sockets, or stop watching them (while full, or while letting
        the other workers take a new connection first)."""
        on = on and self.alive and len(self._connections) < self._max_connections
        if on == self._listening:
            return
        self._listening = on
        for listener in self.sockets:
            if on:
                self._selector.register(listener, selectors.EVENT_READ, None)
            else:
                self._selector.unregister(listener)

    def _listener_ready(self, listener: socket.socket) -> None:
        """A connection waits. Every worker is woken for it; the one holding the fewest
        connections should take it, so each waits a little per connection it already holds
        before accepting: kept-alive connections then spread evenly over the workers
        (otherwise the first worker awake takes most of them, and its clients queue)."""
        held = len(self._connections)
        if held == 0:
            self._accept(listener)
            self._listen(True)
            return
        self._accept_at = time.monotonic() + min(
            held * ACCEPT_DELAY_PER_CONNECTION, MAX_ACCEPT_DELAY
        )
        self._listen(False)

    def _accept(self, listener: socket.socket) -> None:
        """At most one connection: the other workers take their share."""
        if len(self._connections) >= self._max_connections:
            return
        try:
            sock, addr = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno in (errno.ECONNABORTED, errno.EMFILE, errno.ENFILE):
                return
            raise
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server = self._servers[listener.fileno()]
        conn = Connection(sock, addr, RequestReader(self._limits), server)
        conn.deadline = time.monotonic() + self._keepalive
        self._connections[sock.fileno()] = conn
        self._selector.register(sock, selectors.EVENT_READ, conn)

    def _readable(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if conn.draining:
            conn.drained += len(data)
            if not data or conn.drained > DRAIN_BYTES:
                self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        reader = conn.reader
        refusal: Refused | None = None
        try:
            reader.feed(data)
        except Refused as refused:
            refusal = refused  # after the requests that came whole before it
        served = False
        while reader.ready:
            if not self._serve(conn, reader.ready.popleft()):
                return
            served = True
        if refusal is not None:
            self._refuse(conn, refusal.status, refusal.message)
            return
        now = time.monotonic()
        if reader.started:
            # A request is arriving: all of it must within the timeout.
            if served or not conn.in_request:
                conn.in_request = True
                conn.deadline = now + self._request_timeout
            if reader.take_continue():
                self._send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
        else:
            conn.in_request = False
            conn.deadline = now + self._keepalive

    # --- one request -----------------------------------------------------------------------
    def _serve(self, conn: Connection, request: Request) -> bool:
        """Answer one request; False when the connection was closed."""
        started = time.monotonic()
        keep_alive = request.keep_alive and self.alive and not request.oversized
        self.nr += 1
        if self.nr >= self.max_requests:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
            keep_alive = False
        try:
            environ = environ_for(request, conn.server, conn.addr)
        except BadTarget:
            self._refuse(conn, 400, "The request target is not a path.")
            return False
        response = Response(request.version, request.method)
        try:
            result = self.wsgi(environ, response.start_response)
            try:
                payload = response.encode(result, keep_alive)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            self.log.exception("Error handling request %s", environ.get("PATH_INFO", ""))
            self._refuse(conn, 500, "Internal server error.")
            return False
        sent = self._send(conn, payload)
        self._access(response, request, environ, time.monotonic() - started)
        if not sent:
            return False
        if not keep_alive:
            self._finish(conn, unread=request.oversized)
            return False
        return True

    def _access(
        self, response: Response, request: Request, environ: dict[str, Any], seconds: float
    ) -> None:
        try:
            self.log.access(_AccessResponse(response), request, environ, timedelta(seconds=seconds))
        except Exception:
            self.log.exception("access log line not written")

    # --- answers that are not the application's ---------------------------------------------
    def _refuse(self, conn: Connection, status: int, message: str) -> None:
        body = json.dumps({"error": STATUS_PHRASES.get(status, ""), "message": message}).encode()
        head = (
            f"HTTP/1.1 {status} {STATUS_PHRASES.get(status, '')}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")
        if self._send(conn, head + body):
            self._finish(conn, unread=True)

    # --- the socket ------------------------------------------------------------------------
    def _send(self, conn: Connection, data: bytes) -> bool:
        """Write all of ``data`` (waiting for the client up to the request timeout);
        False, with the connection closed, when it cannot be delivered."""
        sock = conn.sock
        view = memoryview(data)
        deadline = 0.0
        while view:
            try:
                n = sock.send(view)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                self._close(conn)
                return False
            view = view[n:]
            if view:
                now = time.monotonic()
                deadline = deadline or now + self._request_timeout
                if now > deadline or not _wait_writable(sock, deadline - now):
                    self._close(conn)
                    return False
        return True

    def _finish(self, conn: Connection, *, unread: bool) -> None:
        """Close after an answer; with input possibly unread, half-close and drain first so
        that the kernel does not reset the connection before the client read the answer."""
        if not unread:
            self._close(conn)
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.draining = True
        conn.deadline = time.monotonic() + DRAIN_SECONDS

    def _close(self, conn: Connection) -> None:
        fd = conn.sock.fileno()
        if self._connections.pop(fd, None) is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(conn.sock)
        with contextlib.suppress(OSError):
            conn.sock.close()
        if not self._listening and not self._accept_at and self.alive:
            self._listen(True)  # room again after being full


def _drain_pipe(fd: int) -> None:
    """The wake-up pipe (gunicorn's signal handlers write to it)."""
    with contextlib.suppress(BlockingIOError):
        os.read(fd, 64)


class _AccessResponse:
    """The attributes of gunicorn's response object that its loggers read."""

    def __init__(self, response: Response) -> None:
        self.status = response.status
        self.headers = response.headers
        self.sent = response.body_length
        self.response_length = response.body_length


def _wait_writable(sock: socket.socket, timeout: float) -> bool:
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_WRITE)
        return bool(sel.select(timeout))
