"""Metrics of upstream mode, summed over gunicorn workers like those of
``broker.observability.metrics`` (the
multiprocess collector reads every counter defined in the process, wherever it is)."""

from __future__ import annotations

from prometheus_client import Counter

from broker.upstream.errors import Kind

CALLS = Counter(
    "broker_upstream_calls_total",
    "Attempts at upstream GetOpenIdTokenForDeveloperIdentity, by outcome "
    "(success, throttled, unavailable, refused, misconfigured).",
    ["outcome"],
)
SHED = Counter(
    "broker_upstream_shed_total",
    "Upstream calls not made, by reason (breaker_open, quota).",
    ["reason"],
)
STALE = Counter(
    "broker_upstream_stale_tokens_total",
    "Still-valid cached tokens served past the reuse threshold because upstream was "
    "throttling or unavailable.",
)


def initialise() -> None:
    """Every outcome and reason at 0 from the start (upstream mode only)."""
    for outcome in ("success", *(kind.value for kind in Kind)):
        CALLS.labels(outcome)
    for reason in ("breaker_open", "quota"):
        SHED.labels(reason)
