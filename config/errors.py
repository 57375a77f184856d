"""The one configuration error, shared by ``config.settings`` and ``config.backend``."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message says which and why."""
