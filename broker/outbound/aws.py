"""What the broker's AWS SDK clients share (STS in ``broker.sts.client``, Cognito in
``broker.upstream.client``).

Why: each must behave the same way on a request path. botocore's own retries are off
(``total_max_attempts=1``): the callers retry with jittered backoff inside their deadline,
and botocore's retries would hide those decisions. Its timeouts bound one connect and one
read; the callers' :class:`broker.outbound.BoundedCalls` bound the attempt. The connection
pool holds as many connections as the caller has call threads. And a client is made once
per process, after gunicorn forks (a connection pool must not be shared across a fork).
botocore is imported only when a client is built, so a worker that never calls AWS never
loads it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, Generic, TypeVar

from broker.identity.models import Credentials

T = TypeVar("T")

USER_AGENT_EXTRA: Final = "identity-broker"


def client_config(
    *, connect_timeout: float, read_timeout: float, connections: int, unsigned: bool = False
) -> Any:
    """A ``botocore.config.Config`` with botocore's retries off. ``unsigned``: no
    signature, so botocore never searches the credential chain either."""
    import botocore.config

    options: dict[str, Any] = {
        "retries": {"total_max_attempts": 1, "mode": "standard"},
        "connect_timeout": connect_timeout,
        "read_timeout": read_timeout,
        "max_pool_connections": connections,
        "user_agent_extra": USER_AGENT_EXTRA,
    }
    if unsigned:
        from botocore import UNSIGNED

        options["signature_version"] = UNSIGNED
    return botocore.config.Config(**options)


class IncompleteCredentials(ValueError):
    """An answer's ``Credentials`` are missing or partial (the reason is the message)."""


def read_credentials(answer: Any, *, key_member: str) -> Credentials:
    """The ``Credentials`` of a botocore answer; ``key_member`` names the secret key's
    member (STS's ``SecretAccessKey``, Cognito's ``SecretKey``). Raises
    :class:`IncompleteCredentials`."""
    given = answer.get("Credentials") if isinstance(answer, dict) else None
    if not isinstance(given, dict):
        raise IncompleteCredentials("the answer holds no credentials")
    key_id, secret = given.get("AccessKeyId"), given.get(key_member)
    session, expiration = given.get("SessionToken"), given.get("Expiration")
    if not all(isinstance(part, str) and part for part in (key_id, secret, session)):
        raise IncompleteCredentials("the answer's credentials are incomplete")
    if not isinstance(expiration, datetime):
        raise IncompleteCredentials("the answer's credentials have no expiration")
    return Credentials(
        str(key_id),
        int(expiration.timestamp()),
        secret_key=str(secret),
        session_token=str(session),
    )


class PerProcess(Generic[T]):
    """``build()``'s value, made on first use in each process and kept for it."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def get(self) -> T:
        value = self._value
        if value is not None and self._pid == os.getpid():
            return value
        with self._lock:
            if self._value is None or self._pid != os.getpid():
                self._value = self._build()
                self._pid = os.getpid()
            return self._value
