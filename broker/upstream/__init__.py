"""Upstream mode (``BROKER_UPSTREAM=aws``, docs/upstream.md): the backend door's identities
and tokens come from a real Cognito identity pool, cached in Redis and kept under AWS's
request quota. No Flask here: the door (``broker.backend.door``) chooses this issuer or
the local one."""
