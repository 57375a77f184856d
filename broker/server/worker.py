"""``KeepAliveWorker``: a gunicorn worker class that serves WSGI with persistent connections.

One thread, one selector: the listening sockets and every open connection. A connection
whose input holds a whole request has it served at once, synchronously, as gunicorn's sync
worker would (the broker's requests are short and wait only on Redis); a connection that
is idle, still sending its request, or slow to read its answer costs nothing while it
waits. So, unlike the sync worker, slow or idle clients do not hold the worker, and a client
that sends many requests does not pay for a new TCP connection and a gunicorn request setup
each time.

Kept from gunicorn: the arbiter, signals and graceful shutdown, the heartbeat (``notify``),
``max_requests``, ``timeout`` (the longest a request may take to arrive, and an answer to be
taken), ``keepalive`` (how long an idle connection stays open; 0: one request per
connection), ``worker_connections``, the request limits and the access log
(``logger_class``). Refusals (bad HTTP, limits) are answered in JSON. Not served: TLS (the
worker refuses to start), gunicorn's request hooks and proxy headers (``wsgi.url_scheme`` is
always ``http``).

A request that is about to wait on an outbound call (a JWKS fetch, upstream Cognito) says
so by raising ``broker.blocking.WouldBlock`` before it has changed anything; the worker
then serves it again in one of a few threads (``broker.server.offload``,
``BROKER_WORKER_THREADS``), so that it holds neither the loop nor the other connections.
Requests the application names in ``may_block(environ)`` go to a thread at once. A
connection whose request is in a thread reads on but serves nothing more until that answer
is written, so answers keep their order.

Connections whose request is still arriving are bounded per source address
(``BROKER_PARTIAL_REQUESTS_PER_ADDRESS``, a tenth of ``worker_connections`` by default):
past the bound, that address's request arriving longest is cut off. And when the worker is
full with nothing idle to close, the request arriving longest (for PARTIAL_MIN_AGE at
least) makes room for the new connection. So clients that trickle partial requests, from
one address or from many, cannot keep new clients out until the request timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import selectors
import socket
import time
from collections import deque
from datetime import timedelta
from typing import Any

from gunicorn.workers.base import Worker

from broker.blocking import ENVIRON_KEY, WouldBlock
from broker.server.arriving import ArrivingRequests
from broker.server.balance import Loads
from broker.server.offload import Hint, Job, Offload, blocking_hint
from broker.server.parsing import Limits, Refused, Request, RequestReader
from broker.server.wsgi import BadTarget, Response, Server, environ_for

READ_SIZE = 65536
DRAIN_SECONDS = 2.0  # lingering on a connection closed with unread input (RFC 9112 9.6)
DRAIN_BYTES = 65536
ACCEPT_DEFERRAL = 0.001  # seconds a worker lets a lighter one take a new connection first
ACCEPT_BURST = 64  # connections taken in one go at most
ACCEPT_BACKOFF = 0.05  # after accept() failed for want of a resource (EMFILE, ENOBUFS...)
SWEEP_SECONDS = 0.25  # how often connections past their deadline are looked for
PIPELINE_TURN = 8  # requests of one connection served per turn: others get theirs between
BUFFER_BUDGET_BODIES = 16  # bytes of requests a worker holds: this many maximal bodies
PARTIAL_MIN_AGE = 1.0  # seconds a request must have been arriving to make room when full
EVICTION_LOG_SECONDS = 10.0  # cut-off partial requests are logged as one line this often
STATUS_PHRASES = {
    400: "Bad Request",
    413: "Content Too Large",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
BUSY = (503, "The server holds too many partial requests; retry.")


class Connection:
    __slots__ = (
        "addr",
        "arriving_since",
        "closing",
        "deadline",
        "drained",
        "draining",
        "held",
        "in_request",
        "job",
        "out",
        "reader",
        "refusal",
        "server",
        "sock",
    )

    def __init__(self, sock: socket.socket, addr: Any, reader: RequestReader, server: Server):
        self.sock = sock
        self.addr = addr if isinstance(addr, tuple) else None
        self.reader = reader
        self.server = server
        self.deadline = 0.0  # monotonic: closed when reached (idle, slow request, drain)
        self.in_request = False  # part of a request has arrived, or an answer is unsent
        self.out = b""  # answer bytes the client has not taken yet
        self.closing = False  # close (gracefully) once ``out`` is sent
        self.draining = False  # answered and half-closed: reading what is left, then closing
        self.drained = 0
        self.held = 0  # request bytes buffered (the worker's budget)
        self.refusal: Refused | None = None  # to answer once the requests before it are
        self.job: Job | None = None  # a request of it being served in a thread
        self.arriving_since = 0.0  # monotonic: when its partial request began (0: none)


class KeepAliveWorker(Worker):  # type: ignore[misc]
    # What gunicorn's (untyped) base class provides.
    alive: bool
    nr: int
    max_requests: int
    timeout: int
    ppid: int
    age: int
    cfg: Any
    log: Any
    sockets: list[socket.socket]
    PIPE: tuple[int, int]
    wsgi: Any

    shared_loads: Loads | None = None  # made in the master by the first worker, for all

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # in the master, before the fork
        if KeepAliveWorker.shared_loads is None:
            KeepAliveWorker.shared_loads = Loads(max(16, 4 * int(self.cfg.workers)))
        self._loads = KeepAliveWorker.shared_loads  # the fork keeps the mapping shared

    def init_process(self) -> None:
        from config.server import ServerSettings
        from config.settings import Settings  # the app's own settings: the body limit

        cfg = self.cfg
        if cfg.is_ssl:
            raise RuntimeError("TLS is not served by this worker: terminate it in front")
        body = Settings.from_env(os.environ).max_body_bytes
        self._server_settings = ServerSettings.from_env(
            os.environ, max(1, int(cfg.worker_connections))
        )
        self._limits = Limits(
            request_line=cfg.limit_request_line,
            fields=cfg.limit_request_fields,
            field_size=cfg.limit_request_field_size,
            body=body,
        )
        self._budget = BUFFER_BUDGET_BODIES * (body + 65536)
        self._buffered = 0
        self._keepalive = float(cfg.keepalive)
        # gunicorn hands its workers half the timeout (they notify twice per period)
        self._request_timeout = float(cfg.timeout or 30)
        self._max_connections = max(1, int(cfg.worker_connections))
        self._connections: dict[int, Connection] = {}
        self._backlog: deque[Connection] = deque()  # ready requests left for the next turn
        self._selector = selectors.DefaultSelector()
        self._servers: dict[int, Server] = {}
        self._last_notify = 0.0
        self._listening = False
        self._accept_at = 0.0  # when a deferred accept is due (0: none)
        self._next_sweep = 0.0
        self._offload: Offload | None = None  # made in run(), once the app is loaded
        self._may_block: Hint | None = None
        self._arriving: ArrivingRequests[Connection] = ArrivingRequests(
            self._server_settings.partial_per_address
        )
        self._cut_off = 0  # partial requests closed since the last log line
        self._cut_off_logged = 0.0
        self._loads.claim(self.age)
        super().init_process()

    # --- the loop --------------------------------------------------------------------------
    def run(self) -> None:
        threads = self._server_settings.threads
        if threads:
            self._may_block = blocking_hint(self.wsgi)
            self._offload = Offload(self.wsgi, threads, self.log)
            self._selector.register(self._offload.wake, selectors.EVENT_READ, self._offload)
        for listener in self.sockets:
            listener.setblocking(False)
            name = listener.getsockname()
            host, port = (name[0], str(name[1])) if isinstance(name, tuple) else (str(name), "")
            self._servers[listener.fileno()] = Server(
                host, port, self.cfg.workers > 1, multithread=self._offload is not None
            )
        self._selector.register(self.PIPE[0], selectors.EVENT_READ, self.PIPE[0])
        self._listen(True)
        try:
            while self.alive:
                self._turn()
                if self.ppid != os.getppid():
                    self.log.info("Parent changed, shutting down: %s", self)
                    self.alive = False
                    break
            self._shut_down()
        finally:
            self._loads.release()
            if self._offload is not None:
                self._offload.close()

    def _turn(self, max_wait: float = SWEEP_SECONDS) -> None:
        """One pass: wait for sockets (``max_wait`` at most), serve what is whole, keep
        time (deadlines are looked at every SWEEP_SECONDS)."""
        self._heartbeat()
        timeout = max(0.0, max_wait)
        if self._backlog:
            timeout = 0.0
        elif self._accept_at:
            timeout = max(0.0, min(timeout, self._accept_at - time.monotonic()))
        events = self._selector.select(timeout)
        for key, mask in events:  # requests already here first: then new connections
            data = key.data
            if isinstance(data, Connection):
                self._guarded(data, mask)
            elif isinstance(data, Offload):
                for job in data.finished():  # answers computed in a thread
                    self._guarded_job(job)
            elif data is not None:
                _drain_pipe(self.PIPE[0])
        for key, _ in events:
            if key.data is None and self._listening:
                self._listener_ready(key.fileobj)  # type: ignore[arg-type]
        for _ in range(len(self._backlog)):
            conn = self._backlog.popleft()
            if conn.sock.fileno() in self._connections and not conn.out:
                self._guarded(conn, 0)
        self._accept_if_due()
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_SECONDS
            for conn in [c for c in self._connections.values() if c.deadline < now]:
                self._close(conn)
            if not self._listening and not self._accept_at:
                self._listen(True)  # full a moment ago: a connection may have gone idle
            if self._cut_off and now - self._cut_off_logged >= EVICTION_LOG_SECONDS:
                self.log.warning(
                    "closed %d connections whose requests were still arriving (over "
                    "BROKER_PARTIAL_REQUESTS_PER_ADDRESS, or to make room)",
                    self._cut_off,
                )
                self._cut_off, self._cut_off_logged = 0, now

    def _guarded(self, conn: Connection, mask: int) -> None:
        """Whatever goes wrong with one connection ends that connection, not the worker."""
        try:
            if mask & selectors.EVENT_WRITE:
                self._flush(conn)
            elif mask & selectors.EVENT_READ:
                self._readable(conn)
            else:
                self._serve_ready(conn)
        except Exception:
            self.log.exception("Error on a connection; closing it")
            self._close(conn)

    def _guarded_job(self, job: Job) -> None:
        conn: Connection = job.conn
        try:
            self._job_done(conn, job)
        except Exception:
            self.log.exception("Error on a connection; closing it")
            self._close(conn)

    def _shut_down(self) -> None:
        """Graceful: take no new connection; serve what idle connections already sent
        (answered with ``Connection: close``), close the others, finish requests that are
        arriving and answers being taken, until just before gunicorn's graceful timeout
        (the arbiter kills the worker at it)."""
        self.alive = False
        self._accept_at = 0.0
        self._listen(False)
        for conn in list(self._connections.values()):
            if not conn.in_request and not conn.draining:
                self._guarded(conn, selectors.EVENT_READ)  # reads nothing: EAGAIN
        deadline = time.monotonic() + max(0.0, float(self.cfg.graceful_timeout) - 1.0)
        while True:
            for conn in [c for c in self._connections.values() if not c.in_request]:
                if not conn.draining:
                    self._close(conn)
            left = deadline - time.monotonic()
            if not self._connections or left <= 0:
                break
            self._turn(max_wait=min(left, SWEEP_SECONDS))
        for conn in list(self._connections.values()):
            self._close(conn)

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_notify >= 1.0:
            self._last_notify = now
            self.notify()

    # --- connections in ----------------------------------------------------------------------
    def _listen(self, on: bool) -> None:
        """Watch the listening sockets, or stop (while full, backing off, or letting a
        lighter worker take a new connection first)."""
        on = on and self.alive
        if on == self._listening:
            return
        self._listening = on
        for listener in self.sockets:
            if on:
                self._selector.register(listener, selectors.EVENT_READ, None)
            else:
                self._selector.unregister(listener)

    def _listener_ready(self, listener: socket.socket) -> None:
        """Connections wait, and every worker was woken for them. The one holding the
        fewest takes them, as long as it stays the lightest; the others wait a millisecond
        first, then take one if it is still there (the lighter worker may be busy)."""
        if self._accept_at:
            return  # already deferred, or backing off
        if self._lighter_elsewhere():
            self._accept_at = time.monotonic() + ACCEPT_DEFERRAL
            self._listen(False)
            return
        self._accept_while_lightest(listener)

    def _lighter_elsewhere(self) -> bool:
        """Another worker holds at least two connections fewer (one of slack lets a burst
        be taken two at a time per worker, and still spreads within one)."""
        return self._loads.lighter_than(len(self._connections) - 1)

    def _accept_if_due(self) -> None:
        """A deferred accept whose time has come (checked between requests too): the
        lighter worker did not take the connection, so this one does (without closing an
        idle connection of its own for it while a lighter worker has room)."""
        if not self._accept_at or time.monotonic() < self._accept_at or not self.alive:
            return
        self._accept_at = 0.0
        evict = not self._lighter_elsewhere()
        for listener in self.sockets:
            if self._accept(listener, evict=evict):
                self._accept_while_lightest(listener)
        if not self._accept_at:  # not backing off after a failed accept()
            self._listen(True)

    def _accept_while_lightest(self, listener: socket.socket) -> None:
        """A burst of connections (a client pool opening) is taken at once, not one per
        wake-up, so that none waits long for its first request to be read."""
        for _ in range(ACCEPT_BURST):
            if not self._accept(listener, evict=True) or self._lighter_elsewhere():
                return

    def _accept(self, listener: socket.socket, *, evict: bool) -> bool:
        """One connection, if one waits and there is room; when full and ``evict``, room is
        made by closing the connection idle longest, but only for a connection known to
        wait. True when one was taken."""
        if len(self._connections) >= self._max_connections and not (
            evict and _waiting(listener) and (self._evict_idle() or self._evict_arriving())
        ):
            self._listen(False)  # full of busy connections: the sweep looks again
            return False
        try:
            sock, addr = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return False
        except OSError as exc:  # EMFILE, ENOBUFS, ...: back off rather than spin or die
            self.log.warning("accept() failed: %s; backing off", exc)
            self._accept_at = time.monotonic() + ACCEPT_BACKOFF
            self._listen(False)
            return False
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(sock, addr, RequestReader(self._limits), self._servers[listener.fileno()])
        # The first request must come within the keep-alive time, or the request timeout
        # when connections are not kept alive.
        conn.deadline = time.monotonic() + (self._keepalive or self._request_timeout)
        self._connections[sock.fileno()] = conn
        self._selector.register(sock, selectors.EVENT_READ, conn)
        self._loads.publish(len(self._connections))
        return True

    def _evict_idle(self) -> bool:
        """Full: close the connection idle longest to make room, if one is idle: nothing
        of a request arrived on it, not even unread in the kernel (a peek tells)."""
        idle = [c for c in self._connections.values() if not c.in_request and not c.draining]
        for conn in sorted(idle, key=lambda c: c.deadline):
            try:
                waiting = conn.sock.recv(1, socket.MSG_PEEK)
            except (BlockingIOError, InterruptedError):
                self._close(conn)  # idle indeed
                return True
            except OSError:
                waiting = b""
            if not waiting:  # the client has gone: closing it makes room too
                self._close(conn)
                return True
        return False

    def _evict_arriving(self) -> bool:
        """Full with nothing idle: close the connection whose request has been arriving
        longest, if for PARTIAL_MIN_AGE at least (a burst of new clients does not push each
        other out); a request arriving that slowly is a slow client's, or an attack's."""
        oldest = self._arriving.oldest(PARTIAL_MIN_AGE)
        if oldest is None:
            return False
        self._cut_off += 1
        self._close(oldest)
        return True

    def _track_arriving(self, conn: Connection) -> None:
        """Keep the table of partial requests up to date after ``conn`` read, answered or
        closed; past the bound of its address, that address's oldest is closed."""
        arriving = conn.reader.started and not conn.draining and conn.sock.fileno() >= 0
        over = self._arriving.update(conn, _host(conn.addr), arriving)
        if over is not None:
            self._cut_off += 1
            self._close(over)

    # --- requests ----------------------------------------------------------------------------
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
        try:
            reader.feed(data)
        except Refused as refused:
            conn.refusal = refused  # answered after the requests that came whole before it
        if (reader.started or reader.ready) and not conn.in_request:
            conn.in_request = True  # a request has come: all of it must within the timeout
            conn.deadline = time.monotonic() + self._request_timeout
        self._account(conn)
        self._serve_ready(conn)
        if reader.started or conn.arriving_since:
            self._track_arriving(conn)

    def _serve_ready(self, conn: Connection) -> None:
        """Serve the requests ready on ``conn``, a few per turn; then, with nothing before
        them left unsent, a refusal or a ``100 Continue``. Stops while an answer waits for
        the client to take it."""
        reader = conn.reader
        served = 0
        while reader.ready and not conn.out and conn.job is None:
            if served == PIPELINE_TURN:
                self._backlog.append(conn)  # the rest next turn: others first
                return
            if not self._serve(conn, reader.ready.popleft()):
                return
            served += 1
            self._heartbeat()
            self._accept_if_due()
        if conn.job is not None:
            self._account(conn)  # its answer, once back, carries on (``_job_done``)
            return
        self._after_answers(conn, served > 0)

    def _after_answers(self, conn: Connection, answered: bool) -> None:
        """What follows the answers just written: a refusal or a ``100 Continue`` that
        waited for them, and the connection's next deadline."""
        reader = conn.reader
        if reader.ready or conn.sock.fileno() not in self._connections:
            return  # waiting for the client to take an answer, or closed
        if conn.refusal is not None:
            refusal, conn.refusal = conn.refusal, None
            self._refuse(conn, refusal.status, refusal.message)  # after what is unsent
            return
        if answered:
            self._account(conn)
            # The next request (or the answer's delivery) gets a whole timeout of its own;
            # a connection with nothing left is idle from now.
            busy = bool(conn.out or reader.started)
            conn.in_request = busy
            conn.deadline = time.monotonic() + (self._request_timeout if busy else self._keepalive)
        if not conn.out and reader.take_continue():
            self._write(conn, b"HTTP/1.1 100 Continue\r\n\r\n")

    def _serve(self, conn: Connection, request: Request) -> bool:
        """Answer one request, or hand it to a thread; False when the connection was
        closed or is closing."""
        started = time.monotonic()
        keep_alive = (
            request.keep_alive and self.alive and not request.oversized and self._keepalive > 0
        )
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
        if self._offload is not None:
            if self._wants_thread(environ):
                return self._hand_over(conn, self._job(conn, request, keep_alive, started))
            environ[ENVIRON_KEY] = False  # no outbound call on the loop: WouldBlock instead
        response = Response(request.version, request.method)
        try:
            result = self.wsgi(environ, response.start_response)
            try:
                payload = response.encode(result, keep_alive)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except WouldBlock:  # nothing was answered: serve it again, from the start, in a thread
            return self._hand_over(conn, self._job(conn, request, keep_alive, started))
        except Exception:
            self.log.exception("Error handling request %s", environ.get("PATH_INFO", ""))
            self._refuse(conn, 500, "Internal server error.")
            return False
        self._access(response.status, response.headers, response.body_length, environ, started)
        if not keep_alive:
            conn.closing = True
        self._write(conn, payload)
        return conn.sock.fileno() in self._connections and not conn.closing

    def _wants_thread(self, environ: dict[str, Any]) -> bool:
        """The application's hint: this request waits on an outbound call every time."""
        if self._may_block is None:
            return False
        try:
            return bool(self._may_block(environ))
        except Exception:
            self.log.exception("may_block failed; serving the request on the loop first")
            return False

    def _job(self, conn: Connection, request: Request, keep_alive: bool, started: float) -> Job:
        """The request for a thread, with an environ of its own (the loop's try may have read
        the body and changed the environ)."""
        environ = environ_for(request, conn.server, conn.addr)
        environ[ENVIRON_KEY] = True
        response = Response(request.version, request.method)
        return Job(conn, environ, response, keep_alive, started, len(request.body))

    def _hand_over(self, conn: Connection, job: Job) -> bool:
        """Serve the request in a thread. Its body counts in the worker's budget until the
        answer is back (requests wait in the threads' queue): past the budget it is refused
        (503) instead."""
        if self._offload is None or self._buffered + job.size > self._budget:
            self._refuse(conn, *BUSY)
            return False
        self._buffered += job.size
        conn.job = job
        conn.in_request = True  # its answer must come within the request timeout
        conn.deadline = job.started + self._request_timeout
        self._offload.submit(job)
        return True

    def _job_done(self, conn: Connection, job: Job) -> None:
        """An answer computed in a thread: written as ``_serve`` writes its own, unless the
        connection went meanwhile (its deadline passed, the worker's budget, shutdown)."""
        self._buffered -= job.size
        if conn.job is not job:
            return
        conn.job = None
        if self._connections.get(conn.sock.fileno()) is not conn:
            return  # closed meanwhile: the answer has nowhere to go
        if job.error is not None:
            self._refuse(conn, 500, "Internal server error.")
            return
        keep_alive = job.keep_alive and self.alive  # shutting down since: close after it
        try:
            payload = job.response.encode(job.chunks, keep_alive)
        except Exception:
            self.log.exception("Error handling request %s", job.environ.get("PATH_INFO", ""))
            self._refuse(conn, 500, "Internal server error.")
            return
        response = job.response
        self._access(response.status, response.headers, response.body_length, job.environ,
                     job.started)  # fmt: skip
        if not keep_alive:
            conn.closing = True
        self._write(conn, payload)
        if self._connections.get(conn.sock.fileno()) is not conn or conn.closing:
            return
        if conn.reader.ready and not conn.out:
            self._backlog.append(conn)  # requests that came meanwhile: next turn
        self._after_answers(conn, True)

    def _hold(self, conn: Connection, held: int) -> None:
        """Account the request bytes ``conn`` buffers in the worker's total."""
        self._buffered += held - conn.held
        conn.held = held

    def _account(self, conn: Connection) -> None:
        """Update what ``conn`` holds; past the worker's budget, the connection holding the
        most is refused (503) and its requests dropped, whichever connection read last."""
        self._hold(conn, conn.reader.buffered())
        if self._buffered <= self._budget:
            return
        largest = max(
            (c for c in self._connections.values() if not c.draining),
            key=lambda c: c.held,
            default=None,
        )
        if largest is not None and largest.held > 0:
            largest.reader.discard()
            self._hold(largest, 0)
            if largest.arriving_since:
                self._track_arriving(largest)
            if largest.job is not None:  # refused once the answer in its thread is written
                largest.refusal = Refused(*BUSY)
                return
            largest.refusal = None
            self._refuse(largest, *BUSY)

    # --- answers -----------------------------------------------------------------------------
    def _refuse(self, conn: Connection, status: int, message: str) -> None:
        """Answer a request that is not served (a JSON body) and close the connection."""
        phrase = STATUS_PHRASES.get(status, "")
        body = json.dumps({"error": phrase, "message": message}).encode()
        head = (
            f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")
        self.log.debug("refused a request: %s %s", status, message)
        self._access(f"{status} {phrase}", [], len(body), {"REMOTE_ADDR": _host(conn.addr)}, None)
        conn.closing = True
        self._write(conn, head + body)

    def _access(
        self,
        status: str,
        headers: list[tuple[str, str]],
        length: int,
        environ: dict[str, Any],
        started: float | None,
    ) -> None:
        seconds = time.monotonic() - started if started is not None else 0.0
        try:
            self.log.access(
                _AccessResponse(status, headers, length), None, environ, timedelta(seconds=seconds)
            )
        except Exception:
            self.log.exception("access log line not written")

    def _write(self, conn: Connection, data: bytes) -> None:
        """Send what the socket takes now; the rest waits for the client (the connection
        is then watched for writing only: no more of its requests are read meanwhile)."""
        if conn.out:
            conn.out += data
        else:
            conn.out = data
            self._flush(conn)

    def _flush(self, conn: Connection) -> None:
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(conn)
            return
        conn.out = conn.out[sent:]
        fd = conn.sock.fileno()
        if conn.out:
            if self._selector.get_key(fd).events != selectors.EVENT_WRITE:
                self._selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
                conn.in_request = True  # the answer must be taken within the timeout
                conn.deadline = time.monotonic() + self._request_timeout
            return
        if self._selector.get_key(fd).events != selectors.EVENT_READ:
            self._selector.modify(conn.sock, selectors.EVENT_READ, conn)
            reader = conn.reader
            if reader.ready or reader.started or conn.refusal is not None:
                self._backlog.append(conn)  # what waited behind the answer, next turn
            else:
                conn.in_request = False
                conn.deadline = time.monotonic() + self._keepalive
        if conn.closing:
            self._finish(conn)

    def _finish(self, conn: Connection) -> None:
        """Close after the last answer: half-close, then read and drop what the client still
        sends, so that the kernel does not reset the connection before it read the answer."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.draining = True
        conn.in_request = False
        conn.deadline = time.monotonic() + DRAIN_SECONDS
        conn.reader.discard()
        self._hold(conn, 0)
        if conn.arriving_since:
            self._track_arriving(conn)

    def _close(self, conn: Connection) -> None:
        fd = conn.sock.fileno()
        if fd >= 0 and self._connections.pop(fd, None) is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(conn.sock)
            self._loads.publish(len(self._connections))
        self._hold(conn, 0)
        with contextlib.suppress(OSError):
            conn.sock.close()
        if conn.arriving_since:
            self._track_arriving(conn)  # fileno() is -1 now: no longer arriving
        if not self._listening and not self._accept_at and self.alive:
            self._listen(True)  # room again after being full


class _AccessResponse:
    """The attributes of gunicorn's response object that the broker's access line reads."""

    def __init__(self, status: str, headers: list[tuple[str, str]], length: int) -> None:
        self.status = status
        self.headers = headers
        self.sent = length
        self.response_length = length


def _host(addr: tuple[str, int] | None) -> str:
    return addr[0] if addr else ""


def _waiting(listener: socket.socket) -> bool:
    """A connection waits to be accepted (another worker may still take it first)."""
    return bool(select.select([listener], [], [], 0)[0])


def _drain_pipe(fd: int) -> None:
    """The wake-up pipe (gunicorn's signal handlers write to it)."""
    with contextlib.suppress(BlockingIOError):
        os.read(fd, 64)
