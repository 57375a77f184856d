"""``gunicorn wsgi:app``: each worker builds its own app (and Redis pool) after the fork."""

from broker.app.factory import create_app

app = create_app(warn=False)  # gunicorn's master logged the warnings once
