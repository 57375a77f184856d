"""Blocking calls that cannot take a deadline themselves, waited for until one.

An AWS SDK call (botocore's connect and read timeouts are per attempt and per read) or
``getaddrinfo`` (the system resolver's own timeouts and retries) cannot be told "finish by
then". So the call runs in one of a few threads of its own and the caller waits for it
until its deadline only: past it the caller gets :class:`DeadlineExceeded` and goes on,
while the call ends by itself in its thread (a thread cannot be stopped from outside) and
its result is dropped. The threads are bounded: while every one of them is held by a call,
a new call fails at once with :class:`Unreachable` instead of queueing behind calls that
are already late, so a dead or trickling service costs a fixed number of threads, never
more.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from broker.outbound.errors import DeadlineExceeded, Unreachable

T = TypeVar("T")


class _Call(Generic[T]):
    __slots__ = ("done", "error", "function", "value")

    def __init__(self, function: Callable[[], T]) -> None:
        self.function = function
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.value = self.function()
        except BaseException as exc:  # handed to the waiting caller, whatever it is
            self.error = exc
        finally:
            self.done.set()


class BoundedCalls:
    """At most ``threads`` calls at a time, in daemon threads started on demand (after a
    fork too: threads do not survive one)."""

    def __init__(self, threads: int, name: str) -> None:
        if threads < 1:
            raise ValueError("BoundedCalls needs at least one thread")
        self._threads = threads
        self._name = name
        self._lock = threading.Lock()
        self._pid = -1
        self._queue: queue.SimpleQueue[_Call[object]] = queue.SimpleQueue()
        self._started = 0
        self._busy = 0  # calls handed to a thread and not finished: queued or running

    def run(self, function: Callable[[], T], timeout: float) -> T:
        """``function()``'s result, or its exception; :class:`DeadlineExceeded` when it has
        not finished within ``timeout`` seconds (it goes on in its thread)."""
        if timeout <= 0:
            raise DeadlineExceeded(f"{self._name}: no time left for the call")
        call: _Call[T] = _Call(function)
        with self._lock:
            if self._pid != os.getpid():  # a new process: none of the threads came along
                self._pid = os.getpid()
                self._queue = queue.SimpleQueue()
                self._started = self._busy = 0
            if self._busy >= self._threads:
                raise Unreachable(f"{self._name}: every thread is held by an unfinished call")
            self._busy += 1
            if self._started < self._busy:
                self._started += 1
                threading.Thread(
                    target=self._serve,
                    args=(self._queue,),
                    name=f"{self._name}-{self._started}",
                    daemon=True,
                ).start()
            self._queue.put(call)  # type: ignore[arg-type]
        if not call.done.wait(timeout):
            raise DeadlineExceeded(f"{self._name}: the call did not finish in time")
        if call.error is not None:
            raise call.error
        return call.value  # type: ignore[return-value]

    def _serve(self, jobs: queue.SimpleQueue[_Call[object]]) -> None:
        while True:
            call = jobs.get()
            try:
                call.run()
            finally:
                with self._lock:
                    if jobs is self._queue:
                        self._busy -= 1
