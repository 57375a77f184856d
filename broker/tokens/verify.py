"""Verify a token this broker issued (contract section 7, GetOpenIdToken and UnlinkIdentity).

A client of an authenticated identity proves itself to the unsigned operations with a token
the broker signed: the signature must check against one of the broker's own published keys
(the same set ``/.well-known/jwks_uri`` serves, so a retired key still verifies its tokens),
RS512 only, issued by this broker and not expired at the injected clock's time. Whether the
token names the right identity is the identity rules' business.

``exp`` is exact (RFC 7519 section 4.1.4); ``iat`` may be up to ``MAX_CLOCK_SKEW`` ahead of
this process's clock, because another broker on the same Redis, whose clock runs a little
ahead, may have issued the token a moment ago (even 1 ms ahead puts ``iat`` in our future
across a second boundary).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, JoseError

from broker.tokens.keys import ALGORITHM, SigningKey

#: Seconds another broker's clock may run ahead of ours: the 5 minutes SigV4 allows a
#: signer's clock, and the skew the key retention period allows for.
MAX_CLOCK_SKEW = 300
NOT_OURS = "The token's claims are not those of this broker."


class TokenRejected(ValueError):
    """The token is not one this broker issued, or no longer valid; the message says why
    without echoing the token."""


class UnknownSigningKey(TokenRejected):
    """No published key has the token's kid: possibly one rotated in since this process
    last reloaded its keys, so the caller may retry with freshly loaded keys."""


def verify_token(
    token: str, keys: Iterable[SigningKey], *, issuer: str, now: float
) -> dict[str, Any]:
    """Return the claims of a valid broker token; raise TokenRejected otherwise."""
    try:
        header = jws.extract_compact(token.encode()).protected
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise TokenRejected("The token is not a JWS compact token.") from None
    if header.get("alg") != ALGORITHM:
        raise TokenRejected(f"The token is not signed with {ALGORITHM}.")
    key = next((k for k in keys if k.kid == header.get("kid")), None)
    if key is None:
        raise UnknownSigningKey("The token was not signed by a key of this broker.")
    try:
        decoded = jwt.decode(token, key.key, algorithms=[ALGORITHM])
    except (JoseError, ValueError, TypeError):
        raise TokenRejected("The token signature does not verify.") from None
    claims: dict[str, Any] = dict(decoded.claims)
    registry = jwt.JWTClaimsRegistry(
        now=int(now),
        iss={"essential": True, "value": issuer},
        sub={"essential": True},
        aud={"essential": True},
        exp={"essential": True},
    )
    try:
        registry.validate({name: value for name, value in claims.items() if name != "iat"})
    except ExpiredTokenError:
        raise TokenRejected("The token has expired.") from None
    except (JoseError, ValueError, TypeError):
        raise TokenRejected(NOT_OURS) from None
    if "iat" in claims and not _issued_by_now(claims["iat"], now):
        raise TokenRejected(NOT_OURS)
    return claims


def _issued_by_now(iat: object, now: float) -> bool:
    """A NumericDate no later than ``now`` plus the clock skew allowed (NaN never is)."""
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        return False
    return iat <= now + MAX_CLOCK_SKEW
