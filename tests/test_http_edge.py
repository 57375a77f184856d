"""The edge (broker/http): one middleware and one renderer registry for every route.

These tests mount the real middleware on a small Flask app and stub doors, so each rule
of the edge is seen alone: the request id on every answer, Flask routes' errors rendered
by the edge in plain JSON, an undeclared error answered as ours (500), a door's format
chosen by name from the registry, and a registry that lacks a format refused at mount.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from flask import Flask
from werkzeug.exceptions import HTTPException

from broker.app import wiring
from broker.awsjson import render as awsjson_render
from broker.backend import envelope
from broker.errors import (
    INTERNAL_MESSAGE,
    BrokerError,
    ClientFault,
    InternalErrorException,
    ResourceNotFoundException,
)
from broker.http.exchange import Exchange, Reply
from broker.http.pipeline import FrontDoors
from broker.http.renderers import PLAIN_JSON, Renderers, plain_json, routing_error


class Undeclared(BrokerError):
    """An error that declares neither its type nor its status."""


class StubDoor:
    metrics_door = "stub"
    log = logging.getLogger("broker.stub")
    log_prefix = "stub door: "

    def __init__(self, error_format: str, raises: Exception | None) -> None:
        self.error_format = error_format
        self._raises = raises

    def handle(self, exchange: Exchange) -> Reply:
        exchange.operation = "Stub"
        if self._raises is not None:
            raise self._raises
        return Reply(200, b"{}", "application/json")


def mounted(door: StubDoor | None = None) -> Flask:
    app = Flask("edge-test")
    app.config["PROPAGATE_EXCEPTIONS"] = True
    app.register_error_handler(HTTPException, routing_error)  # as the factory does

    @app.get("/broker-error")
    def broker_error() -> Any:
        raise ResourceNotFoundException("no such thing")

    @app.get("/crash")
    def crash() -> Any:
        raise RuntimeError("secret detail of a bug")

    @app.get("/fine")
    def fine() -> Any:
        return {"ok": True}

    routes = {"/door": door} if door is not None else {}
    app.wsgi_app = FrontDoors(app.wsgi_app, routes, wiring.renderers())  # type: ignore[method-assign]
    return app


def test_the_base_error_is_ours_500_and_a_client_fault_says_400() -> None:
    assert (BrokerError.status, BrokerError.error_type) == (500, "InternalErrorException")
    assert Undeclared("x").status == 500
    assert ClientFault.status == 400
    assert ResourceNotFoundException("x").status == 400


def test_every_flask_route_gets_a_request_id() -> None:
    response = mounted().test_client().get("/fine")
    assert response.status_code == 200
    assert len(response.headers["x-amzn-RequestId"]) == 36


def test_a_flask_routes_broker_error_is_rendered_by_the_edge_in_plain_json() -> None:
    response = mounted().test_client().get("/broker-error")
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "ResourceNotFoundException",
        "message": "no such thing",
    }
    assert len(response.headers["x-amzn-RequestId"]) == 36


def test_a_flask_routes_crash_is_an_internal_error_logged_never_shown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="broker"):
        response = mounted().test_client().get("/crash")
    assert response.status_code == 500
    assert response.get_json() == {"error": "InternalErrorException", "message": INTERNAL_MESSAGE}
    assert b"secret detail" not in response.get_data()
    assert any(r.exc_info and "secret detail" in str(r.exc_info[1]) for r in caplog.records)


def test_flask_routing_answers_are_plain_json() -> None:
    client = mounted().test_client()
    missing = client.get("/no-such-route")
    assert missing.status_code == 404
    assert missing.get_json()["error"] == "Not Found"
    assert client.post("/fine").status_code == 405


@pytest.mark.parametrize(
    ("error_format", "read"),
    [
        (awsjson_render.FORMAT, lambda body: body["__type"]),
        (envelope.FORMAT, lambda body: body["error"]["code"]),
        (PLAIN_JSON, lambda body: body["error"]),
    ],
)
def test_an_undeclared_error_at_a_door_answers_500_in_the_doors_format(
    error_format: str, read: Any
) -> None:
    door = StubDoor(error_format, Undeclared("internal detail"))
    response = mounted(door).test_client().post("/door")
    assert response.status_code == 500
    body = json.loads(response.get_data())
    assert read(body) in ("InternalErrorException", "INTERNAL_ERROR")


def test_a_door_whose_renderer_fails_gets_the_answer_made_at_mount() -> None:
    calls: list[BrokerError] = []

    def fragile(err: BrokerError) -> tuple[Reply, str]:
        calls.append(err)
        if len(calls) > 1:  # the first call is the last-resort answer, made at mount
            raise RuntimeError("renderer bug")
        return plain_json(err)

    app = Flask("edge-test")
    door = StubDoor("fragile", ResourceNotFoundException("x"))
    app.wsgi_app = FrontDoors(  # type: ignore[method-assign]
        app.wsgi_app, {"/door": door}, Renderers({"fragile": fragile, PLAIN_JSON: plain_json})
    )
    response = app.test_client().post("/door")
    assert response.status_code == 500
    assert response.get_json()["message"] == INTERNAL_MESSAGE
    assert isinstance(calls[0], InternalErrorException)


def test_a_door_naming_a_format_the_registry_lacks_is_refused_at_mount() -> None:
    app = Flask("edge-test")
    with pytest.raises(KeyError, match="no-such-format"):
        FrontDoors(app.wsgi_app, {"/door": StubDoor("no-such-format", None)}, wiring.renderers())
