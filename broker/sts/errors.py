"""How STS's answers become the broker's errors (contract section 10).

STS refusing the role or the token (AccessDenied, InvalidIdentityToken, ExpiredToken,
IDPRejectedClaim) is NotAuthorizedException, as Cognito answers it; throttling is
TooManyRequestsException once retries no longer fit the deadline; anything that keeps STS
from answering (unreachable, 5xx, the deadline, an answer the broker cannot read, STS
failing to reach the broker's JWKS) is ExternalServiceException. Each message carries STS's
code and reason, cleaned: printable, at most ``MAX_REASON_LENGTH`` characters, and with
anything shaped like a JWT cut out, so no token reaches a client or a log.
"""

from __future__ import annotations

import re
from typing import Final

from broker import errors

THROTTLING_CODES: Final = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded"})
#: The role's trust policy said no (its conditions on aud, amr, sub).
REFUSAL_CODES: Final = frozenset({"AccessDenied", "AccessDeniedException"})
#: STS could not accept the broker's token at all: a setup fault (errors.WebIdentityTokenRejected).
TOKEN_REJECTION_CODES: Final = frozenset(
    {"InvalidIdentityToken", "ExpiredToken", "ExpiredTokenException", "IDPRejectedClaim"}
)
MAX_REASON_LENGTH: Final = 300
_JWT: Final = re.compile(r"eyJ[\w-]*\.[\w-]*\.?[\w-]*")

REFUSED: Final = "STS refused the credentials ({code}): {reason}"
THROTTLED: Final = "STS is throttling ({code}); retry shortly."
FAILED: Final = "STS did not give credentials ({code}): {reason}"


class StsFailure(Exception):
    """One attempt failed: ``error`` is what the caller gets when no retry helps; ``retry``
    says whether another attempt may help (throttling only)."""

    def __init__(self, error: errors.BrokerError, *, retry: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry = retry


def from_sts_error(code: str, message: str, status: int) -> StsFailure:
    """An STS error answer (its ``<Code>``, ``<Message>`` and HTTP status) -> its failure."""
    code = clean(code) or "Unknown"
    if code in THROTTLING_CODES or status == 429:
        return StsFailure(errors.TooManyRequestsException(THROTTLED.format(code=code)), retry=True)
    reason = clean(message) or "no reason given"
    if code in REFUSAL_CODES:
        return StsFailure(errors.NotAuthorizedException(REFUSED.format(code=code, reason=reason)))
    if code in TOKEN_REJECTION_CODES:
        return StsFailure(errors.WebIdentityTokenRejected(REFUSED.format(code=code, reason=reason)))
    return StsFailure(errors.ExternalServiceException(FAILED.format(code=code, reason=reason)))


def unreachable(code: str, reason: str) -> StsFailure:
    """No usable answer: refused or broken connection, the deadline, a garbled body."""
    return StsFailure(errors.ExternalServiceException(FAILED.format(code=code, reason=reason)))


def clean(text: str) -> str:
    printable = "".join(c if c.isprintable() else " " for c in text)
    return _JWT.sub("<token>", printable).strip()[:MAX_REASON_LENGTH]
