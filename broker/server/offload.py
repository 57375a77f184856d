"""Requests that may wait on an outbound call, served in a few threads of the worker.

The keep-alive worker serves a request on its one thread, which is right for the broker's
requests: they wait only on Redis, for a millisecond. A request that fetches a JWKS, or
asks upstream Cognito for a token, may wait seconds, and every other connection of the
worker (``/healthz`` included) would wait with it. So such a request, served on the loop
first like any other, raises ``broker.blocking.WouldBlock`` before it would wait, and the
worker serves it again in one of these threads; requests the application names in
``may_block(environ)`` (:func:`blocking_hint`) come here at once. The selector loop goes on
serving everything else and takes each answer back when it is ready. Everything else,
cache hits of the same door included, stays on the loop, as fast as before: a request in a
thread costs hand-offs of the GIL, which halved the rate of cache hits when every request
of a door was sent here.

An answer is handed back through a queue and one byte on a socket pair that the loop's
selector watches, so the loop never waits for a thread and a thread never touches a
connection. The threads are daemon threads started on demand, at most ``threads`` of them;
requests beyond that wait in the queue, in order (their connections' deadlines still
apply). Every outbound call they make has a total deadline (``broker.outbound``), so a
thread is never held for long.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from broker.server.wsgi import Response

#: ``may_block(environ) -> bool``, the application's hint.
Hint = Callable[[dict[str, Any]], bool]
WAKE_BYTE: Final = b"\0"


class Job:
    """One request served in a thread: the environ in, the application's answer out."""

    __slots__ = (
        "chunks", "conn", "environ", "error", "keep_alive", "response", "size", "started",
    )  # fmt: skip

    def __init__(
        self,
        conn: Any,  # the worker's Connection
        environ: dict[str, Any],
        response: Response,
        keep_alive: bool,
        started: float,
        size: int,
    ) -> None:
        self.conn = conn
        self.environ = environ
        self.response = response
        self.keep_alive = keep_alive
        self.started = started
        self.size = size  # bytes of body held until the answer is back
        self.chunks: list[bytes] = []
        self.error: BaseException | None = None


class Offload:
    def __init__(self, app: Callable[..., Any], threads: int, log: Any) -> None:
        self._app = app
        self._threads = threads
        self._log = log
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._done: deque[Job] = deque()
        self._started = 0
        self._idle = 0
        self._lock = threading.Lock()
        self.wake, self._waker = socket.socketpair()  # the loop's selector watches ``wake``
        for end in (self.wake, self._waker):
            end.setblocking(False)
        self.in_flight = 0  # handed to a thread, answer not yet taken back by the loop

    def submit(self, job: Job) -> None:
        """From the loop's thread."""
        self.in_flight += 1
        with self._lock:
            start = self._idle == 0 and self._started < self._threads
            if start:
                self._started += 1
            else:
                self._idle = max(0, self._idle - 1)
        if start:
            name = f"broker-offload-{self._started}"
            threading.Thread(target=self._serve, name=name, daemon=True).start()
        self._jobs.put(job)

    def finished(self) -> list[Job]:
        """From the loop's thread, when ``wake`` is readable: the answers ready, in the
        order they were finished."""
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self.wake.recv(4096):
                pass
        done = []
        while self._done:
            done.append(self._done.popleft())
        self.in_flight -= len(done)
        return done

    def close(self) -> None:
        """At the worker's exit: idle threads end; a busy one ends with the process."""
        for _ in range(self._started):
            self._jobs.put(None)
        for end in (self.wake, self._waker):
            end.close()

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            self._run(job)
            self._done.append(job)
            with contextlib.suppress(OSError):  # full (the loop has a byte to read already)
                self._waker.send(WAKE_BYTE)  # or closed at exit
            with self._lock:
                self._idle += 1

    def _run(self, job: Job) -> None:
        """The application's call, as the loop makes it for requests it serves itself."""
        try:
            result = self._app(job.environ, job.response.start_response)
            try:
                job.chunks = list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:
            self._log.exception("Error handling request %s", job.environ.get("PATH_INFO", ""))
            job.error = exc


def blocking_hint(app: Any) -> Hint | None:
    """The application's ``may_block(environ)``, on the WSGI callable itself or on the app
    it wraps (Flask's ``wsgi_app``); None when it names none."""
    for candidate in (app, getattr(app, "wsgi_app", None)):
        hint = getattr(candidate, "may_block", None)
        if callable(hint):
            return hint  # type: ignore[no-any-return]
    return None
