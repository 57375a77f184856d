"""The WSGI layer in front of Flask (broker/http/pipeline.py): what both API doors share."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from flask.testing import FlaskClient

from broker.awsjson import operations
from broker.http.exchange import BODY_UNREADABLE, json_reply
from broker.observability import logs

AWS_JSON = "application/x-amz-json-1.1"


@pytest.mark.parametrize("path", ["/", "/v1/token"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_a_door_answers_other_methods_with_405_and_allow_post(
    client: FlaskClient, path: str, method: str
) -> None:
    response = client.open(path, method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == "OPTIONS, POST"
    assert len(response.headers["x-amzn-RequestId"]) == 36
    assert response.get_json()["error"] == "Method Not Allowed"


@pytest.mark.parametrize("path", ["/", "/v1/token"])
def test_options_names_the_methods_as_flask_did(client: FlaskClient, path: str) -> None:
    response = client.open(path, method="OPTIONS")
    assert (response.status_code, response.headers["Allow"]) == (200, "OPTIONS, POST")
    assert response.get_data() == b""


def test_the_method_is_read_case_insensitively_and_an_empty_path_is_the_root(
    app: Any,
) -> None:
    statuses: list[str] = []
    environ = {
        "REQUEST_METHOD": "post",
        "PATH_INFO": "",
        "CONTENT_TYPE": AWS_JSON,
        "CONTENT_LENGTH": "2",
        "wsgi.input": io.BytesIO(b"{}"),
    }
    body = b"".join(app.wsgi_app(environ, lambda status, headers: statuses.append(status)))
    # the AWS door answered (no X-Amz-Target), not Flask's 404
    assert statuses == ["400 Bad Request"]
    assert json.loads(body)["__type"] == "UnknownOperationException"


def test_other_paths_still_reach_flask(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    not_allowed = client.post("/healthz")  # Flask's own answer, with the methods it takes
    assert not_allowed.status_code == 405
    assert set(not_allowed.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}
    assert not_allowed.get_json()["error"] == "Method Not Allowed"
    assert client.post("/v1/tokens").status_code == 404


def _capture_broker_log() -> tuple[logging.Handler, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logging.getLogger("broker").addHandler(handler)
    return handler, stream


def test_an_unexpected_error_is_an_internal_error_without_its_text_and_logged_with_the_id(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(svc: Any, params: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("secret-detail-of-a-bug")

    monkeypatch.setitem(
        operations.OPERATIONS, "GetId", operations.Operation(handler=boom, signed=False)
    )
    handler, stream = _capture_broker_log()
    try:
        response = client.post(
            "/",
            data=json.dumps({"IdentityPoolId": "us-east-1:00000000-0000-4000-8000-000000000000"}),
            headers={"X-Amz-Target": "AWSCognitoIdentityService.GetId", "Content-Type": AWS_JSON},
        )
    finally:
        logging.getLogger("broker").removeHandler(handler)
    assert response.status_code == 500
    assert json.loads(response.get_data())["__type"] == "InternalErrorException"
    assert "secret-detail" not in response.get_data(as_text=True)
    request_id = response.headers["x-amzn-RequestId"]
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    (entry,) = [e for e in entries if e["msg"] == "unexpected error"]
    assert entry["request_id"] == request_id
    assert "RuntimeError" in entry["traceback"]


def test_no_request_id_is_left_current_after_a_request(client: FlaskClient) -> None:
    handler, stream = _capture_broker_log()
    try:
        client.post("/", data=b"{}", headers={"Content-Type": AWS_JSON})
        logging.getLogger("broker").warning("outside any request")
    finally:
        logging.getLogger("broker").removeHandler(handler)
    (entry,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert "request_id" not in entry


class HangsUp(io.RawIOBase):
    """A request body whose client goes away after the first bytes."""

    def __init__(self) -> None:
        self._sent = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._sent:
            raise OSError("client gone")
        self._sent = True
        buffer[:2] = b'{"'
        return 2


@pytest.mark.parametrize("terminated", [False, True])
def test_a_client_that_hangs_up_mid_body_gets_a_client_error(
    client: FlaskClient, terminated: bool
) -> None:
    """Through werkzeug's length-limited stream (ClientDisconnected) and, as under gunicorn
    (``wsgi.input_terminated``), straight from the server's reader."""
    environ_overrides = {
        "CONTENT_LENGTH": "500",
        "wsgi.input": io.BufferedReader(HangsUp()),
        "wsgi.input_terminated": terminated,
    }
    response = client.post(
        "/",
        headers={
            "X-Amz-Target": "AWSCognitoIdentityService.GetId",
            "Content-Type": AWS_JSON,
        },
        environ_overrides=environ_overrides,
    )
    assert response.status_code == 400
    error = json.loads(response.get_data())
    assert error == {"__type": "SerializationException", "message": BODY_UNREADABLE}


def test_a_failing_error_renderer_still_gets_an_internal_error_with_the_request_id(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from broker.awsjson import render

    def broken(err: Any) -> Any:
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(render, "error", broken)
    response = client.post("/", data=b"{}", headers={"Content-Type": AWS_JSON})
    assert response.status_code == 500
    assert json.loads(response.get_data())["__type"] == "InternalErrorException"
    assert len(response.headers["x-amzn-RequestId"]) == 36


def test_json_with_an_unpaired_surrogate_is_still_valid_json() -> None:
    reply = json_reply({"message": "bad \ud800 text", "ok": "é"}, "application/json")
    assert json.loads(reply.body) == {"message": "bad \ud800 text", "ok": "é"}
    assert json_reply({"ok": "é"}, "application/json").body == '{"ok":"é"}'.encode()
