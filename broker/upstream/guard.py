"""What stands between a request and upstream Cognito: the circuit breaker, the shared call
quota, and jittered exponential backoff, all inside the request's deadline.

Why each:

- **Quota.** AWS allows 50 GetOpenIdTokenForDeveloperIdentity calls per second per account
  by default (contract section 8) and answers TooManyRequestsException past it. Every
  worker of every broker on the same Redis reserves its call's start time from one GCRA
  schedule (``broker.upstream.guard_store``): calls start at least ``1/max_rate`` apart,
  so in any second at most ``max_rate + 1`` start, and a burst of new users queues for a
  few milliseconds each instead of being throttled. A call that could not start before its
  deadline is not made: RATE_LIMITED at once.
- **Backoff.** A throttled or failed attempt is retried after a delay drawn uniformly from
  ``[0, min(cap, base * 2**n)]`` ("full jitter"), so retries from many workers spread out;
  a retry is only started when it can finish (its connect and read timeouts) before the
  deadline, so a request never spends more than the deadline on upstream.
- **Circuit breaker, shared in Redis.** After ``failures`` consecutive unavailable answers
  (connection errors, timeouts, 5xx) the breaker opens for ``cooldown`` seconds: every
  worker then answers UNAVAILABLE at once instead of each spending its deadline on a dead
  upstream. Then one request (one, across all processes) probes; its success closes the
  breaker, its failure opens it again. The state is in Redis rather than per process
  because the workers share one upstream: per process, each of N workers would have to
  fail ``failures`` times on its own before it stopped, and each would probe on its own.
  Throttling does not count: a throttling upstream is up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import Enum
from typing import Final, TypeVar

from broker.outbound import backoff_delay
from broker.upstream import metrics
from broker.upstream.errors import Kind, UpstreamFailure, UpstreamThrottled, UpstreamUnavailable
from broker.upstream.guard_store import BreakerKeys, RedisBreakerState, RedisQuota
from config.upstream import UpstreamSettings

log = logging.getLogger("broker.upstream")

T = TypeVar("T")

#: How long consecutive failures are remembered after the last one (beyond the cooldown).
FAILURE_MEMORY_SECONDS: Final = 30.0

BREAKER_OPEN: Final = (
    "Upstream Cognito is unavailable: the circuit breaker is open after repeated failures; "
    "the next attempt is in about {seconds:.1f} s."
)
QUOTA_BOOKED: Final = (
    "The upstream call quota ({rate} calls/s, BROKER_UPSTREAM_MAX_RATE) is booked beyond this "
    "request's deadline; retry shortly."
)


class Admission(Enum):
    CLEAN = "clean"  # closed, no recent failure: nothing to reset on success
    RECOVERING = "recovering"  # closed with recent failures: a success resets them
    PROBE = "probe"  # half-open: this call decides


class CircuitBreaker:
    def __init__(self, state: RedisBreakerState, pool_id: str, settings: UpstreamSettings) -> None:
        self._state = state
        self._keys = BreakerKeys.of(pool_id)
        self._threshold = settings.breaker_failures
        self._cooldown_ms = max(1, round(settings.breaker_cooldown * 1000))
        self._window_ms = round((settings.breaker_cooldown + FAILURE_MEMORY_SECONDS) * 1000)
        self._probe_ttl_ms = round((settings.connect_timeout + settings.read_timeout + 1) * 1000)

    def admit(self) -> Admission:
        """May a call go out now? Raises UpstreamUnavailable while the breaker is open."""
        verdict, detail = self._state.allow(self._keys, self._threshold, self._probe_ttl_ms)
        if verdict == 0:
            metrics.SHED.labels("breaker_open").inc()
            raise UpstreamUnavailable(BREAKER_OPEN.format(seconds=detail / 1000))
        if verdict == 2:
            return Admission.PROBE
        return Admission.RECOVERING if detail > 0 else Admission.CLEAN

    def succeeded(self, admission: Admission) -> None:
        if admission is not Admission.CLEAN:
            self._state.reset(self._keys)
            if admission is Admission.PROBE:
                log.warning("upstream circuit breaker closed: the probe succeeded")

    def failed(self) -> None:
        if self._state.failure(self._keys, self._threshold, self._window_ms, self._cooldown_ms):
            log.warning(
                "upstream circuit breaker open for %.1f s after %d consecutive failures",
                self._cooldown_ms / 1000,
                self._threshold,
            )


class Quota:
    def __init__(self, store: RedisQuota, pool_id: str, rate: int) -> None:
        self._store = store
        self._pool_id = pool_id
        self._rate = rate
        self._interval_us = max(1, round(1_000_000 / rate))

    def reserve(self, max_wait: float) -> float:
        """Reserve a call slot; seconds to wait before using it. RATE_LIMITED when none is
        free within ``max_wait``."""
        wait_us = self._store.reserve(self._pool_id, self._interval_us, int(max_wait * 1e6))
        if wait_us < 0:
            metrics.SHED.labels("quota").inc()
            raise UpstreamThrottled(QUOTA_BOOKED.format(rate=self._rate))
        return wait_us / 1e6


class Guard:
    """Runs one logical upstream call: admission, quota, attempts and retries."""

    def __init__(
        self,
        breaker: CircuitBreaker,
        quota: Quota,
        settings: UpstreamSettings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._breaker = breaker
        self._quota = quota
        self._attempt_seconds = settings.connect_timeout + settings.read_timeout
        self._monotonic = monotonic
        self._sleep = sleep

    def call(self, attempt: Callable[[], T], deadline_at: float) -> T:
        """``attempt()`` until it succeeds, is refused, or the deadline leaves no room.

        Raises the broker error of the last failure (RATE_LIMITED or UNAVAILABLE for
        throttling and outages, the mapped client error for a refusal), or
        :class:`UpstreamFailure` of kind REFUSED so the caller can react to it first.
        """
        retry = 0
        while True:
            admission = self._breaker.admit()
            room = deadline_at - self._monotonic() - self._attempt_seconds
            self._sleep(self._quota.reserve(room))
            try:
                result = attempt()
            except UpstreamFailure as failure:
                metrics.CALLS.labels(failure.kind.value).inc()
                if failure.kind is Kind.UNAVAILABLE:
                    self._breaker.failed()
                else:
                    self._breaker.succeeded(admission)  # it answered: it is up
                if failure.kind is Kind.REFUSED:
                    raise
                if failure.kind is Kind.MISCONFIGURED:
                    raise failure.error from None
                delay = backoff_delay(retry)
                retry += 1
                if self._monotonic() + delay + self._attempt_seconds > deadline_at:
                    raise failure.error from None
                log.info("upstream %s (%s); retry %d in %.3f s", failure.kind.value,
                         failure.code, retry, delay)  # fmt: skip
                self._sleep(delay)
                continue
            metrics.CALLS.labels("success").inc()
            self._breaker.succeeded(admission)
            return result
