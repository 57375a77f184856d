"""Settings of the keep-alive worker (``broker/server/``) that gunicorn has no setting for.

Read by the worker in each process after the fork, and checked once in the master by
``config/gunicorn.conf.py`` (a bad value stops gunicorn with one line naming it). Like the
rest of ``config/``, ``ServerSettings.from_env`` reads only the mapping it is given.

``BROKER_WORKER_THREADS``: threads per worker for the requests the application says may
wait on an outbound call (a JWKS fetch, upstream Cognito; ``broker.server.offload``); 0
serves every request on the worker's loop, as the worker did before it had threads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from config.env import read_int

DEFAULT_THREADS: Final = 16
MAX_THREADS: Final = 256


@dataclass(frozen=True)
class ServerSettings:
    threads: int = DEFAULT_THREADS

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ServerSettings:
        return cls(
            threads=read_int(
                environ, "BROKER_WORKER_THREADS", DEFAULT_THREADS, low=0, high=MAX_THREADS
            ),
        )
