"""Every Redis client the test process makes, closed after each test.

redis-py's clients are reference cycles (measured with redis-py 8: a client dropped after
one command is not freed until the garbage collector runs), so a client a test drops
without ``close()`` is finalized by the collector, which finalizes the objects of a cycle
in no set order: when it reaches the socket before the connection's ``__del__`` has closed
it, the socket warns ``ResourceWarning: unclosed <socket.socket ...>``, an error under
``filterwarnings = error`` raised at whatever test happens to be running then.

The tests make such clients everywhere: each in-process app (``create_app``) and each
store or cache built on a ``RedisConnector`` holds one that the broker never closes (its
processes keep theirs for life), and ``RedisServer.client()`` hands out one per call.
``track`` keeps a strong reference to each (so none is collected while its connections are
open) and ``close_all``, run by conftest.py after every test and at the end of the
session, closes them; a closed client opens a new connection if it is used again.
"""

from __future__ import annotations

import threading

import redis

_clients: dict[int, redis.Redis] = {}
_lock = threading.Lock()


def track(client: redis.Redis) -> redis.Redis:
    """Remember ``client`` until the next ``close_all``; returns it."""
    if id(client) not in _clients:
        with _lock:
            _clients.setdefault(id(client), client)
    return client


def close_all() -> None:
    """Close every client tracked since the last call (closing one twice is harmless)."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()
