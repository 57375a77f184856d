"""HTTP servers on 127.0.0.1 that answer the way a careless or hostile one does: slowly, a
byte at a time, with a body that never ends, or with whatever bytes a test gives.

``ScriptedServer`` reads each request's head and answers with ``head`` sent at once and
``body`` sent ``chunk`` bytes every ``every`` seconds (0: at once), from a thread per
connection; ``stop()`` (or leaving ``running()``) ends every trickle within ``every``
seconds. ``JSON_HEAD`` makes the head of a 200 answer declaring ``Content-Length``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def json_head(length: int, status: str = "200 OK") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()


def json_answer(body: bytes, status: str = "200 OK") -> tuple[bytes, bytes]:
    """``(head, body)`` of a complete answer."""
    return json_head(len(body), status), body


class ScriptedServer:
    def __init__(self, head: bytes, body: bytes, *, every: float = 0.0, chunk: int = 1) -> None:
        self.head = head
        self.body = body
        self.every = every
        self.chunk = chunk
        self.hits = 0
        self.open = 0  # connections being answered right now
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._listener.settimeout(0.1)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        port: int = self._listener.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks.json"

    @contextmanager
    def running(self) -> Iterator[ScriptedServer]:
        acceptor = threading.Thread(target=self._accept, daemon=True)
        acceptor.start()
        try:
            yield self
        finally:
            self.stop()
            acceptor.join(timeout=5)
            for thread in list(self._threads):
                thread.join(timeout=5)
            self._listener.close()

    def stop(self) -> None:
        self._stop.set()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._answer, args=(conn,), daemon=True)
            with self._lock:
                self.hits += 1
                self._threads.append(thread)
            thread.start()

    def _answer(self, conn: socket.socket) -> None:
        with self._lock:
            self.open += 1
        try:
            with conn:
                conn.settimeout(5)
                seen = b""
                while b"\r\n\r\n" not in seen:
                    data = conn.recv(4096)
                    if not data:
                        return
                    seen += data
                conn.sendall(self.head)
                if not self.every:
                    conn.sendall(self.body)
                    return
                for start in range(0, len(self.body), self.chunk):
                    if self._stop.wait(self.every):
                        return
                    conn.sendall(self.body[start : start + self.chunk])
        except OSError:
            return  # the client gave up: what it is meant to do
        finally:
            with self._lock:
                self.open -= 1


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition()`` every 10 ms until true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()
