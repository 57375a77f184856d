"""``flask --app app run``: Flask finds the ``create_app`` factory here."""

from broker.app.factory import create_app

__all__ = ["create_app"]
