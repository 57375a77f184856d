"""One pooled Redis client per process, created on first use after gunicorn forks.

Timeouts are bounded (``BROKER_REDIS_TIMEOUT``, 1 s by default) and redis-py's own retries
are off, so a Redis outage turns into a fast InternalErrorException instead of a hang.
"""

from __future__ import annotations

import os
import threading

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


class RedisConnector:
    """Hands out this process's client; a forked child builds its own pool."""

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout
        self._client: redis.Redis | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def client(self) -> redis.Redis:
        client = self._client
        if client is not None and self._pid == os.getpid():
            return client
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                self._client = redis.Redis.from_url(
                    self._url,
                    socket_timeout=self._timeout,
                    socket_connect_timeout=self._timeout,
                    retry=Retry(NoBackoff(), 0),
                    health_check_interval=0,
                    max_connections=32,
                    decode_responses=True,
                )
                self._pid = os.getpid()
            return self._client
