"""A stand-in for the broker's public-provider verifier (broker.identity.linking.LoginVerifier),
for tests of the identity rules and the store that are not about real provider tokens (those
are tests/test_providers.py and tests/test_provider_logins.py)."""

from __future__ import annotations

from typing import Any

from broker.errors import NotAuthorizedException
from broker.identity.models import IdentityPool


class StandIn:
    """Accepts ``ok:<sub>`` for any provider of the pool; records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def verify(self, pool: IdentityPool, provider: str, token: str, now: float) -> dict[str, Any]:
        self.asked.append((provider, token))
        if provider not in pool.provider_names():
            raise NotAuthorizedException("Token is not from a supported provider of this pool.")
        if not token.startswith("ok:"):
            raise NotAuthorizedException("Invalid login token. The signature does not verify.")
        return {"sub": token[3:]}
