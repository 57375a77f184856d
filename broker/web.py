"""Small Flask glue shared by the blueprints."""

from __future__ import annotations

from flask import current_app

from broker.services import Services

EXTENSION = "identity_broker"


def services() -> Services:
    svc: Services = current_app.extensions[EXTENSION]
    return svc
