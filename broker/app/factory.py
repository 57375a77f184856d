"""The app factory: builds one Flask app from the settings (its parts come from the
composition root, ``broker.app.wiring``), registers the routes Flask serves, and mounts the
edge (``broker.http.pipeline``) in front of it: the two API doors (``POST /`` and
``POST /v1/token``, plain WSGI), and the request id and error rendering of every route.
Nothing runs at import time."""

from __future__ import annotations

import logging
import os
import threading
import time

from flask import Flask
from werkzeug.exceptions import HTTPException

from broker.app import cli, health, scrape, wellknown, wiring
from broker.awsjson import door as awsjson
from broker.backend import door as backend
from broker.errors import InternalErrorException
from broker.http.pipeline import FrontDoors, Hint, always, by_target
from broker.http.renderers import routing_error
from broker.observability import logs, metrics
from broker.services import EXTENSION, Clock, Services
from broker.store import migration
from broker.store.connection import describe_fault
from broker.store.faults import REDIS_FAULTS, reported_by_caller
from config.settings import Settings

log = logging.getLogger("broker")

#: X-Amz-Target values of the AWS door's operations that wait on another service on every
#: call: the keep-alive worker serves them in a thread at once, without first trying its
#: loop (``broker.blocking``). GetCredentialsForIdentity calls STS every time. An operation
#: that waits only sometimes (a JWKS fetched once in a while) needs no entry:
#: ``broker.blocking.check()`` suffices.
AWS_WAITING_OPERATIONS: frozenset[str] = frozenset(
    {"AWSCognitoIdentityService.GetCredentialsForIdentity"}
)


def create_app(
    settings: Settings | None = None, *, clock: Clock = time.time, warn: bool = True
) -> Flask:
    """``warn``: log the settings' warnings (``Settings.warnings``). gunicorn's master logs
    them once, before the fork (config/gunicorn.conf.py), so its workers do not."""
    if settings is None:
        settings = Settings.from_env(os.environ)
    logs.configure()
    app = Flask("broker")
    services = wiring.build_services(settings, clock)
    app.extensions[EXTENSION] = services
    _load_signing_keys(services)
    _migrate_in_background(services)
    if warn:
        for warning in settings.warnings():
            log.warning("%s", warning)

    app.register_blueprint(wellknown.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    metrics.initialise()
    app.extensions[metrics.SCRAPE_EXTENSION] = [scrape.StateCollector(services)]
    app.register_blueprint(backend.bp)
    app.cli.add_command(cli.broker)
    # Flask hands its routes' exceptions to the edge, which renders them like the doors'
    # (``broker.http.pipeline``); only its own routing answers (404, 405) it renders here.
    app.config["PROPAGATE_EXCEPTIONS"] = True
    app.register_error_handler(HTTPException, routing_error)
    blocking: dict[str, Hint] = {backend.CREDENTIALS_PATH: always}  # STS (or AWS) every time
    if AWS_WAITING_OPERATIONS:
        blocking[awsjson.PATH] = by_target(AWS_WAITING_OPERATIONS)
    app.wsgi_app = FrontDoors(  # type: ignore[method-assign]
        app.wsgi_app, wiring.doors(services), wiring.renderers(), blocking
    )
    return app


def _load_signing_keys(services: Services) -> None:
    """Load the keys at start so that keys no one can open stop the service at once
    (KeyEncryptionError propagates); a Redis still starting only delays the load. The
    warning names the Redis and what it answered (the store logged the fault itself)."""
    try:
        with reported_by_caller():
            services.keyring.current()
    except InternalErrorException as exc:
        log.warning(
            "signing keys not loaded yet: %s does not serve (%s); retrying on use",
            services.connector.describe(),
            _root_cause(exc),
        )


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return describe_fault(exc)


def _migrate_in_background(services: Services) -> None:
    """Bring a store written by an earlier broker to today's layout without holding the
    worker's start (a large store takes seconds; readers look in the old layout meanwhile).
    One process at a time does it (``broker.store.migration``)."""
    if not _needs_migration(services):
        return

    def run() -> None:
        try:
            migration.migrate(services.connector)
        except REDIS_FAULTS as exc:
            log.warning(
                "store migration not done now (%s); the next start tries again", describe_fault(exc)
            )

    threading.Thread(target=run, name="store-migration", daemon=True).start()


def _needs_migration(services: Services) -> bool:
    try:
        return migration.needed(services.connector)
    except REDIS_FAULTS:
        return False  # Redis away: nothing to migrate now, the next start looks again
