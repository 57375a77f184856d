"""Liveness (/healthz: the process answers) and readiness (/readyz: the Redis topology
serves and a signing key is loaded; 503 with the reasons when not).

The Redis part names the topology's own health (``RedisConnector.health``): a standalone
server's PING; a Sentinel set's current master, and that it answers as a master; a
cluster's state and slot coverage, and every primary's PING. A ready answer names the
topology and, for Sentinel, the master writes go to now.
"""

from __future__ import annotations

import contextlib
from typing import Any

from flask import Blueprint, Response, jsonify

from broker.errors import BrokerError
from broker.services import Services, current_services
from broker.store.faults import REDIS_FAULTS
from broker.upstream.client import setup_fault

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


def readiness_reasons(svc: Services) -> list[str]:
    """Why the service is not ready (empty when it is): /readyz's check, and
    ``broker_ready``'s at each scrape (``broker.app.scrape``)."""
    reasons = svc.connector.health()
    try:
        svc.keyring.current()
    except BrokerError:
        reasons.append("signing key not loaded")
    if svc.settings.upstream.enabled:
        fault = setup_fault(svc.settings.upstream)
        if fault is not None:
            reasons.append(f"upstream: {fault}")
    return reasons


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    svc = current_services()
    connector = svc.connector
    reasons = readiness_reasons(svc)
    body: dict[str, Any] = {"status": "unavailable" if reasons else "ready"}
    if reasons:
        body["reasons"] = reasons
    mode = connector.settings.mode
    if mode != "standalone":
        body["redis"] = {"topology": mode}
        if not reasons and mode == "sentinel":
            with contextlib.suppress(*REDIS_FAULTS):  # moved since the check: the next probe
                body["redis"]["master"] = connector.master_address()
    return jsonify(body), 503 if reasons else 200
