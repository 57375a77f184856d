"""Which identity pool the backend door issues tokens for.

Either ``BROKER_BACKEND_POOL_ID`` names an existing pool (its own DeveloperProviderName is
the developer provider), or ``BROKER_BACKEND_POOL_NAME`` and
``BROKER_BACKEND_DEVELOPER_PROVIDER`` name a pool the broker creates when it is missing.
Creation is idempotent across workers and restarts: a name key in Redis
(``broker.store.backend_pool``) holds the pool id; the one process whose ``SET NX`` wins
creates the pool with the ordinary pool rules, the others wait for the id to appear. A name
whose pool was deleted (DeleteIdentityPool) gets a fresh pool on the next request.

The pool's id and developer provider are then kept per process: a pool's
DeveloperProviderName never changes once set (contract section 4).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from broker.backend.errors import BackendNotConfigured
from broker.errors import ResourceNotFoundException
from broker.identity.models import IdentityPool, PoolConfig
from broker.identity.pools import create_pool, describe_pool
from broker.identity.ports import IdentityStore
from broker.store.backend_pool import RedisPoolNames, is_pending
from config.settings import Settings

log = logging.getLogger("broker.backend")

T = TypeVar("T")

CLAIM_TTL_MS: Final = 10_000  # a creator that dies frees the name after this long
SETTLE_SECONDS: Final = 5.0  # how long a process waits for another's creation
POLL_SECONDS: Final = 0.02
NO_DEVELOPER: Final = (
    "Identity pool {pool_id} has no DeveloperProviderName; the backend door needs one "
    "(set it with UpdateIdentityPool, or configure BROKER_BACKEND_POOL_NAME and "
    "BROKER_BACKEND_DEVELOPER_PROVIDER)."
)
OTHER_DEVELOPER: Final = (
    "Identity pool {pool_id} (named {name!r}) has developer provider {actual!r}, not the "
    "configured BROKER_BACKEND_DEVELOPER_PROVIDER {wanted!r}."
)
NO_POOL_SETTINGS: Final = (
    "The backend door needs BROKER_BACKEND_POOL_ID, or BROKER_BACKEND_POOL_NAME together "
    "with BROKER_BACKEND_DEVELOPER_PROVIDER."
)
UNSETTLED: Final = "The backend door's identity pool is being created; retry shortly."


@dataclass(frozen=True)
class BackendPool:
    id: str
    developer_provider: str


class PoolResolver:
    def __init__(
        self,
        settings: Settings,
        store: IdentityStore,
        names: RedisPoolNames,
        clock: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._backend = settings.backend
        self._store = store
        self._names = names
        self._clock = clock
        self._lock = threading.Lock()
        self._pool: BackendPool | None = None

    @property
    def by_name(self) -> bool:
        return self._backend.pool_name is not None

    def current(self) -> BackendPool:
        pool = self._pool
        if pool is None:
            with self._lock:
                pool = self._pool = self._pool or self._resolve()
        return pool

    def serving(self, work: Callable[[BackendPool], T]) -> T:
        """``work(pool)`` on the current pool; when a named pool turns out deleted
        (ResourceNotFoundException), it is created again and ``work`` runs once more."""
        pool = self.current()
        try:
            return work(pool)
        except ResourceNotFoundException:
            if not self.by_name:
                raise
            self.forget(pool)
            return work(self.current())

    def forget(self, pool: BackendPool) -> None:
        """The pool vanished (deleted): look it up, or create it again, next time."""
        with self._lock:
            if self._pool == pool:
                self._pool = None

    def _resolve(self) -> BackendPool:
        if self._backend.pool_id is not None:
            found = describe_pool(self._store, self._backend.pool_id)  # NOT_FOUND if missing
            provider = found.config.developer_provider_name
            if provider is None:
                raise BackendNotConfigured(NO_DEVELOPER.format(pool_id=found.id))
            return BackendPool(found.id, provider)
        return self._ensure_named()

    def _ensure_named(self) -> BackendPool:
        name = self._backend.pool_name
        wanted = self._backend.developer_provider
        if name is None or wanted is None:  # config.backend sets both or neither
            raise BackendNotConfigured(NO_POOL_SETTINGS)
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline:
            value = self._names.get(name)
            if value is None:
                marker = self._names.claim(name, CLAIM_TTL_MS)
                created = self._create(name, wanted, marker) if marker is not None else None
                if created is not None:
                    return created
                continue
            elif not is_pending(value):
                pool = self._store.get_pool(value)
                if pool is not None:
                    return self._checked(pool, name, wanted)
                self._names.forget(name, value)  # the named pool was deleted
                continue
            time.sleep(POLL_SECONDS)
        raise BackendNotConfigured(UNSETTLED)

    def _create(self, name: str, provider: str, marker: str) -> BackendPool | None:
        """Create the named pool; None if the claim was lost meanwhile (look again)."""
        config = PoolConfig(
            name=name, allow_unauthenticated=False, developer_provider_name=provider
        )
        try:
            pool = create_pool(
                self._store,
                config,
                region=self._settings.region,
                max_pools=self._settings.max_pools,
                now=self._clock(),
            )
        except BaseException:
            self._names.forget(name, marker)
            raise
        if not self._names.publish(name, marker, pool.id):
            log.warning("backend pool %r: claim expired during creation; %s unused", name, pool.id)
            return None
        log.info("backend pool %r created: %s", name, pool.id)
        return BackendPool(pool.id, provider)

    @staticmethod
    def _checked(pool: IdentityPool, name: str, wanted: str) -> BackendPool:
        actual = pool.config.developer_provider_name
        if actual != wanted:
            raise BackendNotConfigured(
                OTHER_DEVELOPER.format(pool_id=pool.id, name=name, actual=actual, wanted=wanted)
            )
        return BackendPool(pool.id, wanted)
