"""The request id (``x-amzn-RequestId``) of the routes Flask serves: on the response and on
every log line of the request. The API doors (``broker.doors``) do the same, and count
their requests in the metrics, themselves."""

from __future__ import annotations

from flask import Flask, Response, g

from broker import request_id


def install(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.request_id, g.request_id_token = request_id.begin()

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers.setdefault("x-amzn-RequestId", g.get("request_id", ""))
        return response

    @app.teardown_request
    def _end(exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            request_id.end(token)
