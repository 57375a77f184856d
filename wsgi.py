"""``gunicorn wsgi:app``: each worker builds its own app (and Redis pool) after the fork.

A fault that no retry mends (stored keys that do not open with the configured
key-encryption key) ends each worker with one line instead of a traceback, and gunicorn's
master stops with "App failed to load" (gunicorn's AppImportError convention)."""

from gunicorn.errors import AppImportError

from broker.app.factory import create_app
from broker.tokens.sealing import KeyEncryptionError

try:
    app = create_app(warn=False)  # gunicorn's master logged the warnings once
except KeyEncryptionError as exc:
    raise AppImportError(f"identity-broker: cannot start: {exc}") from None
