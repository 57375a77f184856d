"""gunicorn's logger class with JSON access and error lines (``logger_class`` in
config/gunicorn.conf.py). The access line is built from named fields, never from headers."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger

from broker.logs import JsonFormatter

ACCESS_LOGGER = "broker.access"


class JsonLogger(Logger):  # type: ignore[misc]
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        formatter = JsonFormatter()
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(formatter)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not (self.cfg.accesslog or self.cfg.logconfig or self.cfg.syslog):
            return
        request_id = ""
        for name, value in resp.headers:
            if name.lower() == "x-amzn-requestid":
                request_id = value
                break
        fields = {
            "request_id": request_id,
            "method": environ.get("REQUEST_METHOD", ""),
            "path": environ.get("PATH_INFO", ""),
            "status": int(str(resp.status).split(None, 1)[0]),
            "bytes": getattr(resp, "sent", 0),
            "duration_ms": round(request_time.total_seconds() * 1000, 2),
            "remote": environ.get("REMOTE_ADDR", ""),
            "pid": os.getpid(),
        }
        self.access_log.log(logging.INFO, "request", extra=fields)
