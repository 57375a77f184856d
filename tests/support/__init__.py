"""Helpers for the tests: real redis-server and gunicorn processes (see processes.py)."""
