"""Prometheus metrics, correct across gunicorn workers.

Under gunicorn, ``config/gunicorn.conf.py`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh
directory before the workers fork; each worker then writes its counters to memory-mapped
files there and ``/metrics`` (served by any worker) sums them all with prometheus_client's
``MultiProcessCollector``. Without that variable (``flask run``, in-process tests) the
process's own registry is served.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Response, current_app
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

bp = Blueprint("metrics", __name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "broker_requests_total",
    "Requests by front door, operation and outcome (success or the error type).",
    ["door", "operation", "outcome"],
)
LATENCY = Histogram(
    "broker_request_duration_seconds",
    "Time from the request's arrival to its response, by front door and operation.",
    ["door", "operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
IDENTITIES_CREATED = Counter(
    "broker_identities_created_total", "Identities created, by kind.", ["kind"]
)
TOKENS_ISSUED = Counter(
    "broker_tokens_issued_total", "OpenID tokens signed, by front door.", ["door"]
)
TOKEN_CACHE_HITS = Counter(
    "broker_token_cache_hits_total", "Tokens served from the token cache, by front door.", ["door"]
)
REDIS_ERRORS = Counter(
    "broker_redis_errors_total",
    "Requests that failed because Redis did not serve (a Redis fault, not an upstream one).",
)

#: The front doors' metric labels: every child that exists before its first event is
#: made at start (:func:`initialise`), so a fresh ``/metrics`` lists it at 0 and a rate
#: over it is 0, not absent.
DOORS: tuple[str, ...] = ("aws", "backend")
IDENTITY_KINDS: tuple[str, ...] = ("developer",)

#: The key of ``Flask.extensions`` holding the collectors computed at each scrape
#: (readiness, signing keys, the upstream breaker: state read now, not counted by a
#: worker), which ``/metrics`` serves after the counters.
SCRAPE_EXTENSION = "broker.metrics.scrape"


#: (door, operation, outcome) -> its request counter and latency histogram. Looking a
#: child up by its labels takes a lock and checks the values on every call; the label
#: values are few and fixed (the doors, the dispatch table's operations, the error
#: types), so each child is looked up once per process.
_REQUEST_CHILDREN: dict[tuple[str, str, str], tuple[Any, Any]] = {}
_TOKEN_CHILDREN: dict[tuple[str, bool], Any] = {}


def observe_request(door: str, operation: str, outcome: str, seconds: float) -> None:
    children = _REQUEST_CHILDREN.get((door, operation, outcome))
    if children is None:
        children = (REQUESTS.labels(door, operation, outcome), LATENCY.labels(door, operation))
        _REQUEST_CHILDREN[(door, operation, outcome)] = children
    children[0].inc()
    children[1].observe(seconds)


def count_identity_created(kind: str = "developer") -> None:
    """One identity created by a front door (``kind``: how it was first proved)."""
    IDENTITIES_CREATED.labels(kind).inc()


def count_token(door: str, *, new_identity: bool, cached: bool = False) -> None:
    """One token served by a front door: signed now, or (backend door) from the cache."""
    if new_identity:
        count_identity_created()
    child = _TOKEN_CHILDREN.get((door, cached))
    if child is None:
        child = (TOKEN_CACHE_HITS if cached else TOKENS_ISSUED).labels(door)
        _TOKEN_CHILDREN[(door, cached)] = child
    child.inc()


def initialise(doors: Iterable[str] = DOORS) -> None:
    """Make the children that exist before their first event, at 0 (in multiprocess mode
    each worker writes its own 0, which the collector sums)."""
    for door in doors:
        for cached in (False, True):
            child = (TOKEN_CACHE_HITS if cached else TOKENS_ISSUED).labels(door)
            _TOKEN_CHILDREN[(door, cached)] = child
    for kind in IDENTITY_KINDS:
        IDENTITIES_CREATED.labels(kind)


@bp.get("/metrics")
def metrics() -> Response:
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    collectors: Iterable[Collector] = current_app.extensions.get(SCRAPE_EXTENSION, ())
    scraped = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        scraped.register(collector)
    body += generate_latest(scraped)
    return Response(body, content_type=CONTENT_TYPE_LATEST)
