"""Configuration: the settings object and the gunicorn config."""
