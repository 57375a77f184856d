"""The WSGI layer in front of Flask (broker/doors.py): what both API doors share."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from flask.testing import FlaskClient

from broker import logs
from broker.awsjson import operations
from broker.doors import json_reply

AWS_JSON = "application/x-amz-json-1.1"


@pytest.mark.parametrize("path", ["/", "/v1/token"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_a_door_answers_other_methods_with_405_and_allow_post(
    client: FlaskClient, path: str, method: str
) -> None:
    response = client.open(path, method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert len(response.headers["x-amzn-RequestId"]) == 36
    assert response.get_json()["error"] == "Method Not Allowed"


def test_other_paths_still_reach_flask(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.post("/healthz").status_code == 405  # Flask's own answer
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


def test_a_body_cut_short_is_a_client_error(client: FlaskClient) -> None:
    environ_overrides = {"CONTENT_LENGTH": "500", "wsgi.input": io.BytesIO(b'{"IdentityPoolId"')}
    response = client.post(
        "/",
        headers={
            "X-Amz-Target": "AWSCognitoIdentityService.GetId",
            "Content-Type": AWS_JSON,
        },
        environ_overrides=environ_overrides,
    )
    assert response.status_code == 400
    assert json.loads(response.get_data())["__type"] == "SerializationException"


def test_json_with_an_unpaired_surrogate_is_still_valid_json() -> None:
    reply = json_reply({"message": "bad \ud800 text", "ok": "é"}, "application/json")
    assert json.loads(reply.body) == {"message": "bad \ud800 text", "ok": "é"}
    assert json_reply({"ok": "é"}, "application/json").body == '{"ok":"é"}'.encode()
