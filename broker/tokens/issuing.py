"""Issue a signed OpenID token for an identity: claims (contract §6) and the RS512 signature.

Both front doors issue through here, so a token from GetOpenIdTokenForDeveloperIdentity,
from GetOpenIdToken and from ``POST /v1/token`` carries the same claims for the same
identity. Counting tokens stays with the doors: each counts what it served (the backend
door counts cache hits apart), which this module cannot know.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from broker.tokens.claims import AmrLogin, developer_claims, unauthenticated_claims
from broker.tokens.signer import TokenSigner


class TokenIssuer:
    def __init__(self, signer: TokenSigner, *, issuer: str, pool_arn: Callable[[str], str]) -> None:
        self._signer = signer
        self._pool_arn = pool_arn
        self.issuer = issuer  # the tokens' ``iss``, also part of the backend cache key

    def developer(
        self,
        *,
        pool_id: str,
        identity_id: str,
        provider: str,
        user_id: str,
        issued_at: int,
        duration: int,
        principal_tags: Mapping[str, str] | None = None,
        also: Sequence[AmrLogin] = (),
    ) -> str:
        """An authenticated token for the developer login ``{provider: user_id}`` and the
        public logins ``also`` (only those when ``provider`` is empty)."""
        claims = developer_claims(
            issuer=self.issuer,
            pool_id=pool_id,
            pool_arn=self._pool_arn(pool_id),
            identity_id=identity_id,
            provider=provider,
            user_id=user_id,
            issued_at=issued_at,
            duration=duration,
            principal_tags=principal_tags,
            also=also,
        )
        return self._signer.sign(claims)

    def unauthenticated(self, *, pool_id: str, identity_id: str, issued_at: int) -> str:
        """A token for an identity without logins (GetOpenIdToken, contract §7)."""
        claims = unauthenticated_claims(
            issuer=self.issuer,
            pool_id=pool_id,
            pool_arn=self._pool_arn(pool_id),
            identity_id=identity_id,
            issued_at=issued_at,
        )
        return self._signer.sign(claims)
