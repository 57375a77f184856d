"""Jittered exponential backoff between retries of an outbound call.

Why here: upstream Cognito (``broker.upstream.guard``) and STS (``broker.sts``) both retry
throttled calls, and the delays of many workers must spread out the same way. "Full
jitter": a delay drawn uniformly from ``[0, min(cap, base * 2**retry)]``, from the system's
random source (the delays are not secrets, but ``random``'s global state is shared with
whatever else seeds it).
"""

from __future__ import annotations

import secrets
from typing import Final

BACKOFF_BASE: Final = 0.05
BACKOFF_CAP: Final = 1.0

_random = secrets.SystemRandom()


def backoff_delay(retry: int) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**retry)]."""
    return _random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**retry))
