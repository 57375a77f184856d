"""Metrics computed at each scrape of ``/metrics``: state read now, not events counted.

- ``broker_ready``: 1 when ``/readyz`` would answer ready, 0 when not (the same check,
  :func:`broker.app.health.readiness_reasons`), so the alert on readiness needs no probe
  of its own and no gauge shared between gunicorn workers;
- ``broker_signing_key_created_timestamp_seconds{role}``: when each stored key still in use
  was generated (``current``: the one signing now), from the key states ``broker keys``
  shows; with the rotation period of the operator's policy, the current key's age says
  when it is due to retire; ``broker_signing_key_activates_timestamp_seconds``: when a
  staged key starts signing (the current key retires then); ``broker_signing_keys{role}``:
  how many keys each role has;
- ``broker_upstream_breaker_open``: 1 while upstream mode's circuit breaker (shared in
  Redis) is open, else 0 (always 0 outside upstream mode).

A value Redis cannot give now is left out of this scrape (the store's fault is not logged
again at every scrape: ``broker_ready`` is 0 then and ``/readyz`` names the reason).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from broker.app.health import readiness_reasons
from broker.errors import BrokerError
from broker.services import Services
from broker.store.faults import reported_by_caller
from broker.tokens.keys import RedisKeySource
from broker.upstream.guard_store import BreakerKeys, RedisBreakerState

ROLES = ("current", "staged", "retired", "published")


class StateCollector:
    """A prometheus_client collector of one app's state (one per process)."""

    def __init__(self, services: Services) -> None:
        self._svc = services
        self._breaker = RedisBreakerState(services.connector)

    def collect(self) -> Iterator[Metric]:
        with reported_by_caller():
            found = [self._ready(), *self._keys(), self._breaker_open()]
        yield from found

    def _ready(self) -> Metric:
        ready = GaugeMetricFamily(
            "broker_ready", "1 when /readyz answers ready (Redis serves, a signing key is loaded)."
        )
        try:
            reasons = readiness_reasons(self._svc)
        except BrokerError:
            reasons = ["not ready"]
        ready.add_metric([], 0.0 if reasons else 1.0)
        return ready

    def _keys(self) -> Iterator[Metric]:
        source = self._svc.key_source
        if not isinstance(source, RedisKeySource):  # a key file: no rotation to watch
            return
        try:
            states = source.states()
        except BrokerError:
            return
        created = GaugeMetricFamily(
            "broker_signing_key_created_timestamp_seconds",
            "When each signing key was generated (epoch seconds), by role; the current "
            "key's age says when the rotation policy retires it.",
            labels=["role"],
        )
        activates = GaugeMetricFamily(
            "broker_signing_key_activates_timestamp_seconds",
            "When the staged key starts signing and the current one retires (epoch seconds).",
        )
        count = GaugeMetricFamily(
            "broker_signing_keys", "Stored signing keys, by role.", labels=["role"]
        )
        roles = Counter(state.role for state in states)
        for role in ROLES:
            count.add_metric([role], float(roles[role]))
        newest: dict[str, float] = {}
        for state in states:
            if state.created is not None:
                newest[state.role] = max(newest.get(state.role, 0.0), float(state.created))
        for role, at in sorted(newest.items()):
            created.add_metric([role], at)
        staged = [state.since for state in states if state.role == "staged" and state.since]
        if staged:
            activates.add_metric([], float(min(staged)))
        yield created
        if staged:
            yield activates
        yield count

    def _breaker_open(self) -> Metric:
        gauge = GaugeMetricFamily(
            "broker_upstream_breaker_open",
            "1 while upstream mode's circuit breaker is open (every worker refuses at once).",
        )
        upstream = self._svc.settings.upstream
        if not upstream.enabled:
            gauge.add_metric([], 0.0)
            return gauge
        try:
            open_ms = self._breaker.open_ms(BreakerKeys.of(upstream.pool_id))
        except BrokerError:
            return gauge  # unknown now: no sample
        gauge.add_metric([], 1.0 if open_ms > 0 else 0.0)
        return gauge
