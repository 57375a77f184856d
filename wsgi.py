"""``gunicorn wsgi:app``: each worker builds its own app (and Redis pool) after the fork.

A fault that no retry mends (stored keys that do not open with the configured
key-encryption key) ends each worker with one line instead of a traceback, and gunicorn's
master stops with "App failed to load" (gunicorn's AppImportError convention)."""

import os

from gunicorn.errors import AppImportError

from broker.app.factory import create_app
from broker.tokens.sealing import KeyEncryptionError

#: Set by config/gunicorn.conf.py's master once it logged the settings' warnings; a bare
#: ``gunicorn wsgi:app`` (no ``-c``) has no such master, so each worker says them.
WARNED = os.environ.get("BROKER_START_WARNINGS_LOGGED") == "1"

try:
    app = create_app(warn=not WARNED)
except KeyEncryptionError as exc:
    raise AppImportError(f"identity-broker: cannot start: {exc}") from None
