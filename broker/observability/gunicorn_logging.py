"""gunicorn's logger class with JSON access and error lines (``logger_class`` in
config/gunicorn.conf.py). The access line is built from named fields, never from headers."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger

from broker.observability.logs import JsonFormatter

ACCESS_LOGGER = "gunicorn.access"


_PLAIN = json.JSONEncoder(ensure_ascii=False)  # made once (json.dumps makes one a call)


class JsonLogger(Logger):  # type: ignore[misc]
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        formatter = JsonFormatter()
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(formatter)
        # read once: gunicorn's Config looks each setting up by name, about 1 µs apiece
        self._access_on = bool(cfg.accesslog or cfg.logconfig or cfg.syslog)
        self._second = -1
        self._second_text = ""

    def _timestamp(self, now: float) -> str:
        """ISO 8601 with milliseconds, UTC; the part to the second formatted once a second."""
        second = int(now)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(now % 1 * 1000):03d}Z"

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        """One JSON line per request, written straight to the access log's streams: this
        runs for every request, and the LogRecord/Formatter path costs more than the line."""
        if not self._access_on:
            return
        request_id = ""
        for name, value in resp.headers:
            if name.lower() == "x-amzn-requestid":
                request_id = value
                break
        line = _PLAIN.encode(
            {
                "ts": self._timestamp(time.time()),
                "level": "INFO",
                "logger": ACCESS_LOGGER,
                "msg": "request",
                "request_id": request_id,
                "method": environ.get("REQUEST_METHOD", ""),
                "path": environ.get("PATH_INFO", ""),
                "status": int(str(resp.status).split(None, 1)[0]),
                "bytes": getattr(resp, "sent", 0),
                "duration_ms": round(request_time.total_seconds() * 1000, 2),
                "remote": environ.get("REMOTE_ADDR", ""),
                "pid": self._pid,
            }
        )
        for handler in self.access_log.handlers:
            stream = getattr(handler, "stream", None)
            if stream is None:  # syslog or a custom handler: the ordinary logging path
                handler.handle(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))
                continue
            stream.write(line + "\n")
            stream.flush()

    @property
    def _pid(self) -> int:
        return os.getpid()
