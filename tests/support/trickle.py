"""Clients that trickle partial requests, and the new client that must still get in.

``Trickler`` keeps ``count`` sockets from one source address open on a broker, each having
sent a partial request and sending one more header byte every ``every`` seconds, and
reopens any the server closes (at most ``reopen_rate`` a second): an attacker holding as
many connection slots as it can. It runs in a thread of its own, one selector for all its
sockets. ``healthz`` is the other client: a new connection, ``GET /healthz``, timed.
(Raise RLIMIT_NOFILE first: every socket is a file.)
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import threading
import time

HEALTH = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
PARTIAL = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Trickle: "


def connect(port: int, source: str = "127.0.0.1", timeout: float = 5.0) -> socket.socket:
    """A connection to the broker on 127.0.0.1 from ``source`` (any of 127.0.0.0/8)."""
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    return sock


def healthz(port: int, timeout: float = 5.0) -> float:
    """A new client: connect, GET /healthz, the whole answer; the seconds it took."""
    started = time.monotonic()
    with connect(port, timeout=timeout) as sock:
        sock.sendall(HEALTH)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]
    return time.monotonic() - started


class Trickler:
    """``count`` sockets from ``source``, each sending a partial request and then one more
    header byte every ``every`` seconds, reopened when the server closes them (at most
    ``reopen_rate`` a second): an attacker keeping as many sockets open as it can."""

    def __init__(
        self, port: int, source: str, count: int, every: float = 1.0, reopen_rate: int = 1000
    ) -> None:
        self.port = port
        self.source = source
        self.count = count
        self.every = every
        self.reopen_rate = reopen_rate
        self.connected = 0  # open right now
        self.most_connected = 0
        self.opened = 0
        self.closed_by_server = 0
        self.failed = 0
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Trickler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for key in list(self._selector.get_map().values()):
            with contextlib.suppress(OSError):
                key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()

    def _open(self) -> None:
        sock = socket.socket()
        try:
            sock.bind((self.source, 0))
            sock.setblocking(False)
            code = sock.connect_ex(("127.0.0.1", self.port))
        except OSError:
            sock.close()
            self.failed += 1
            return
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            self.failed += 1
            return
        self.opened += 1
        self._selector.register(sock, selectors.EVENT_WRITE, "connecting")

    def _drop(self, sock: socket.socket, by_server: bool) -> None:
        self._selector.unregister(sock)
        sock.close()
        if by_server:
            self.closed_by_server += 1

    def _run(self) -> None:
        for _ in range(self.count):
            self._open()
        next_trickle = time.monotonic() + self.every
        budget, budget_at = self.reopen_rate / 10, time.monotonic()
        while not self._stop.is_set():
            for key, _ in self._selector.select(0.05):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                if key.data == "connecting":
                    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        self._drop(sock, by_server=False)
                        self.failed += 1
                        continue
                    try:
                        sock.send(PARTIAL)
                    except OSError:
                        self._drop(sock, by_server=True)
                        continue
                    self._selector.modify(sock, selectors.EVENT_READ, "open")
                    self.connected += 1
                    self.most_connected = max(self.most_connected, self.connected)
                    continue
                try:
                    data = sock.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:  # closed by the server (or an answer, then closed)
                    self.connected -= 1
                    self._drop(sock, by_server=True)
            now = time.monotonic()
            if now - budget_at >= 0.1:
                budget, budget_at = self.reopen_rate / 10, now
            missing = self.count - len(self._selector.get_map())
            while missing > 0 and budget >= 1:
                self._open()
                missing -= 1
                budget -= 1
            if now >= next_trickle:
                next_trickle = now + self.every
                for key in list(self._selector.get_map().values()):
                    if key.data == "open":
                        with contextlib.suppress(OSError):
                            key.fileobj.send(b"x")  # type: ignore[union-attr]
