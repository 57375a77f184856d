"""Liveness (/healthz: the process answers) and readiness (/readyz: Redis answers and a
signing key is loaded; 503 with the reasons when not)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from broker.errors import BrokerError
from broker.web import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    svc = services()
    reasons: list[str] = []
    try:
        svc.store.ping()
    except Exception as exc:  # any Redis failure makes the process unready
        reasons.append(f"redis unreachable: {type(exc).__name__}")
    try:
        svc.keyring.current()
    except BrokerError:
        reasons.append("signing key not loaded")
    if reasons:
        return jsonify(status="unavailable", reasons=reasons), 503
    return jsonify(status="ready"), 200
