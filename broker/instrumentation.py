"""Per-request bookkeeping shared by every front door: the request id (``x-amzn-RequestId``,
on every response and every log line of the request), and the request metrics."""

from __future__ import annotations

import time
import uuid

from flask import Flask, Response, g, request

from broker import metrics

#: Blueprint name -> the ``door`` label of its metrics. Other routes (health, discovery,
#: metrics itself) are not counted as API requests.
DOORS: dict[str, str] = {"awsjson": "aws", "backend": "backend"}


def install(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.request_id = str(uuid.uuid4())
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers.setdefault("x-amzn-RequestId", g.get("request_id", ""))
        door = DOORS.get(request.blueprint or "")
        if door is not None and "started" in g:
            metrics.observe_request(
                door,
                g.get("operation") or "unknown",
                g.get("error_type") or "success",
                time.perf_counter() - g.started,
            )
        return response
