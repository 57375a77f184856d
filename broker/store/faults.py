"""Redis faults become the error model here, at the store, not at the HTTP edge.

Every public method of a store class decorated with :func:`translates_faults` turns a
redis-py error into :class:`~broker.errors.StoreUnavailable` (InternalErrorException at the
AWS door, UNAVAILABLE at the backend door) after logging what really went wrong and where
(``describe_fault``: MOVED, READONLY, authentication, the unreachable host:port), once per
fault. Errors of the error model pass through unchanged (a WAIT short of replicas is one).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final, TypeVar

import redis
from redis.exceptions import RedisClusterException

from broker.errors import STORE_UNAVAILABLE_MESSAGE, StoreUnavailable
from broker.store.connection import RedisConnector, ReplicationUnconfirmed, describe_fault

log = logging.getLogger("broker.store")

#: The exceptions redis-py raises for a Redis that does not serve.
REDIS_FAULTS: Final = (redis.RedisError, RedisClusterException)

C = TypeVar("C", bound=type)

#: True while a caller reports Redis faults itself (one line at start, not two).
_CALLER_REPORTS: ContextVar[bool] = ContextVar("caller_reports_redis_faults", default=False)


@contextmanager
def reported_by_caller() -> Iterator[None]:
    """Within this block the store does not log the faults it translates: the caller
    names them in its own line."""
    token = _CALLER_REPORTS.set(True)
    try:
        yield
    finally:
        _CALLER_REPORTS.reset(token)


def store_unavailable(exc: BaseException, connector: RedisConnector | None) -> StoreUnavailable:
    """Log the fault with its cause and the Redis it came from; the error to raise."""
    if not _CALLER_REPORTS.get():
        where = connector.describe() if connector is not None else "Redis"
        log.error("redis error: %s: %s", where, describe_fault(exc))
    return StoreUnavailable(STORE_UNAVAILABLE_MESSAGE)


def translates_faults(cls: C) -> C:
    """Wrap every public method of ``cls`` (its own and inherited ones) once."""
    for name in dir(cls):
        if name.startswith("_"):
            continue
        method = getattr(cls, name)
        if (
            not callable(method)
            or isinstance(method, type)
            or getattr(method, "_translates", False)
        ):
            continue
        if isinstance(cls.__dict__.get(name), (staticmethod, classmethod, property)):
            continue
        setattr(cls, name, _translating(method))
    return cls


def _translating(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except ReplicationUnconfirmed as exc:
            connector = getattr(self, "_connector", None)
            where = connector.describe() if connector is not None else "Redis"
            log.error("redis error: %s: %s", where, exc.message)
            raise
        except REDIS_FAULTS as exc:
            raise store_unavailable(exc, getattr(self, "_connector", None)) from exc

    wrapper._translates = True  # type: ignore[attr-defined]
    return wrapper
