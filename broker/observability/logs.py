"""Structured JSON logs, one object per line, with the request id on every line of a request.

The app's own records and gunicorn's access and error logs all go through
:class:`JsonFormatter`. Nothing here ever logs a header, a body or a token: the access line
carries method, path (without query string), status, size, duration and the request id.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from broker.observability import request_id

#: Attributes every LogRecord has; anything else passed as ``extra=`` is logged as a field.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if "request_id" not in record.__dict__:
            current = request_id.CURRENT.get()
            if current:
                entry["request_id"] = current
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(level: int = logging.INFO) -> None:
    """Send the ``broker`` loggers to stderr as JSON (once per process)."""
    logger = logging.getLogger("broker")
    if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger.handlers = [handler]
    logger.setLevel(level)
    logger.propagate = False
