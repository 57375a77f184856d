"""Every Redis client the test process makes, its connections closed after each test.

redis-py 8's connection pools are reference cycles (a pool and its connections each point
at their maintenance-notifications handler, which points back), so the pool of a client a
test drops with its connections open is freed only by the garbage collector, which
finalizes the objects of a cycle in no set order: when it reaches the socket before the
connection's ``__del__`` has closed it, the socket warns ``ResourceWarning: unclosed
<socket.socket ...>``, an error under ``filterwarnings = error`` raised at whatever test
happens to be running then.

The tests make such clients everywhere: each in-process app (``create_app``) and each
store or cache holds a ``RedisConnector`` whose client the broker never closes (its
processes keep theirs for life), ``RedisServer.client()`` hands out one per call, and so
do the topologies: a ``RedisCluster`` keeps a ``redis.Redis`` per node (one for a node a
failover dropped as well), a Sentinel one per sentinel besides the master's.

So conftest.py has every ``redis.Redis`` the test process builds ``track``ed (a cluster's
sockets are all in its nodes' clients), and ``disconnect_all`` runs after every test and
at the end of the session. It closes every connection of every tracked client, which does
not end the client: one still held (by a connector of a module's fixture, by a cluster
client) connects again when next used, where ``close()`` would leave a ``RedisCluster``
unusable. A client nothing else refers to any more is then let go: its sockets are
closed, so the collector may free it in any order.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

_clients: dict[int, Any] = {}
_lock = threading.Lock()


def track(client: Any) -> Any:
    """Hold ``client`` (a ``redis.Redis``) for ``disconnect_all``; returns it."""
    with _lock:
        _clients.setdefault(id(client), client)
    return client


def tracked() -> int:
    """How many clients are held now."""
    return len(_clients)


def _references_of_one_held_only_here() -> int:
    # What sys.getrefcount reports, in the expression _unreferenced uses, for an object
    # that only such a dict holds (measured, not assumed: it differs between versions).
    probe: dict[int, object] = {0: object()}
    return sys.getrefcount(probe[0])


_ONLY_HERE = _references_of_one_held_only_here()


def _unreferenced(key: int) -> bool:
    return sys.getrefcount(_clients[key]) <= _ONLY_HERE


def disconnect_all() -> None:
    """Close every connection of every tracked client (each connects again when used),
    then stop holding the clients nothing else holds."""
    with _lock:
        clients = list(_clients.values())
    for client in clients:
        client.connection_pool.disconnect()
    del clients
    with _lock:
        for key in [key for key in _clients if _unreferenced(key)]:
            del _clients[key]
