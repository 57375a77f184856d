"""How upstream answers become the broker's errors.

Two short declarations on the one error model, placed under classes the backend door's
envelope already maps (``broker.backend.envelope.CODE_OF`` walks the MRO): an unreachable
or failing upstream is the identity store being unavailable (UNAVAILABLE, 503), upstream
throttling is a rate limit (RATE_LIMITED, 429). Cognito's own client errors become the
broker's classes of the same name, so the envelope maps them as it maps the local store's:
NotAuthorized -> FORBIDDEN (the session was verified here; upstream refuses the identity,
for example a disabled one), ResourceNotFound -> NOT_FOUND, conflicts -> CONFLICT.

:class:`UpstreamFailure` is internal: the client raises it for one attempt, with the kind
that decides what happens next (retry with backoff, count toward the breaker, or stop).
"""

from __future__ import annotations

from enum import Enum
from types import MappingProxyType
from typing import Final

from broker import errors


class UpstreamUnavailable(errors.StoreUnavailable):
    """Upstream Cognito is unreachable, failing, or the circuit breaker is open."""

    redis_fault = False  # answered like a store fault, but Redis is fine


class UpstreamThrottled(errors.TooManyRequestsException):
    """Upstream Cognito throttles, or the broker's own upstream quota is booked."""


class Kind(Enum):
    THROTTLED = "throttled"  # retry with backoff; upstream is up
    UNAVAILABLE = "unavailable"  # retry with backoff; counts toward the breaker
    REFUSED = "refused"  # upstream answered no: stop, report it
    MISCONFIGURED = "misconfigured"  # the broker's credentials or setup: stop, report it


class UpstreamFailure(Exception):
    """One attempt failed. ``error`` is what the door reports when no retry helps;
    ``code`` is AWS's error code, or the transport error's class name."""

    def __init__(self, kind: Kind, code: str, error: errors.BrokerError) -> None:
        super().__init__(f"{kind.value}: {code}")
        self.kind = kind
        self.code = code
        self.error = error


#: AWS error code -> (kind, broker error class) for Cognito's answers we act on.
THROTTLING_CODES: Final = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "Throttling", "RequestLimitExceeded"}
)
SERVER_CODES: Final = frozenset(
    {
        "InternalErrorException",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ExternalServiceException",  # GetCredentialsForIdentity: STS did not answer AWS
    }
)
CREDENTIAL_CODES: Final = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "AccessDeniedException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
    }
)
REFUSALS: Final[MappingProxyType[str, type[errors.BrokerError]]] = MappingProxyType(
    {
        "NotAuthorizedException": errors.NotAuthorizedException,
        "ResourceNotFoundException": errors.ResourceNotFoundException,
        "ResourceConflictException": errors.ResourceConflictException,
        "DeveloperUserAlreadyRegisteredException": errors.DeveloperUserAlreadyRegisteredException,
        "InvalidParameterException": errors.InvalidParameterException,
        "ValidationException": errors.InvalidParameterException,
        # GetCredentialsForIdentity (POST /v1/credentials): no role for the identity
        "InvalidIdentityPoolConfigurationException": (
            errors.InvalidIdentityPoolConfigurationException
        ),
    }
)
#: Refusals that may mean the remembered IdentityId is gone upstream (merged, unlinked,
#: deleted): worth asking once more by login alone.
IDENTITY_REFUSALS: Final = frozenset(
    {"NotAuthorizedException", "ResourceNotFoundException", "ResourceConflictException",
     "DeveloperUserAlreadyRegisteredException"}
)  # fmt: skip
#: Refusals whose AWS message is relayed (it names no login value or token); the others get
#: a message of ours.
RELAYED: Final = frozenset(
    {"NotAuthorizedException", "ResourceNotFoundException", "ResourceConflictException",
     "DeveloperUserAlreadyRegisteredException", "InvalidIdentityPoolConfigurationException"}
)  # fmt: skip
MAX_RELAYED_LENGTH: Final = 300

THROTTLED: Final = (
    "Upstream Cognito is throttling ({code}) and no cached token is left; retry shortly."
)
UNREACHABLE: Final = "Upstream Cognito is unavailable ({code}); retry shortly."
CREDENTIALS_REFUSED: Final = (
    "Upstream Cognito refused the broker's AWS credentials ({code}); check the credentials the "
    "broker runs with and that they allow cognito-identity:GetOpenIdTokenForDeveloperIdentity "
    "(GetCredentialsForIdentity needs no permission)."
)
NO_CREDENTIALS: Final = (
    "The broker found no AWS credentials ({code}): give it some through the standard chain "
    "(environment, shared profile, container or instance role)."
)
INVALID: Final = "Upstream Cognito refused the request as invalid ({code})."
UNEXPECTED: Final = "Upstream Cognito answered {code}, which the broker does not handle."
RELAYED_PREFIX: Final = "Upstream Cognito: "


def from_aws_error(code: str, message: str, status: int) -> UpstreamFailure:
    """An AWS error answer (``__type`` code, message, HTTP status) -> its failure."""
    if code in THROTTLING_CODES or status == 429:
        return UpstreamFailure(Kind.THROTTLED, code, UpstreamThrottled(THROTTLED.format(code=code)))
    if code in SERVER_CODES or status >= 500:
        return UpstreamFailure(
            Kind.UNAVAILABLE, code, UpstreamUnavailable(UNREACHABLE.format(code=code))
        )
    if code in CREDENTIAL_CODES:
        return UpstreamFailure(
            Kind.MISCONFIGURED, code, UpstreamUnavailable(CREDENTIALS_REFUSED.format(code=code))
        )
    refusal = REFUSALS.get(code)
    if refusal is None:
        return UpstreamFailure(
            Kind.MISCONFIGURED, code, UpstreamUnavailable(UNEXPECTED.format(code=_printable(code)))
        )
    text = RELAYED_PREFIX + _printable(message) if code in RELAYED else INVALID.format(code=code)
    return UpstreamFailure(Kind.REFUSED, code, refusal(text))


def unreachable(code: str) -> UpstreamFailure:
    """No answer at all: connection refused or reset, a timeout, a broken response."""
    return UpstreamFailure(
        Kind.UNAVAILABLE, code, UpstreamUnavailable(UNREACHABLE.format(code=code))
    )


MISSING_PROFILE: Final = (
    "AWS_PROFILE={profile!r} names no profile in the shared AWS config and credentials "
    "files: fix AWS_PROFILE (or add the profile), or unset it to use boto3's other sources"
)


def missing_profile(profile: str) -> UpstreamFailure:
    """AWS_PROFILE names a profile that does not exist: the broker's setup, not an outage
    (the breaker does not count it)."""
    message = MISSING_PROFILE.format(profile=_printable(profile))
    return UpstreamFailure(Kind.MISCONFIGURED, "ProfileNotFound", UpstreamUnavailable(message))


def no_credentials(code: str) -> UpstreamFailure:
    return UpstreamFailure(
        Kind.MISCONFIGURED, code, UpstreamUnavailable(NO_CREDENTIALS.format(code=code))
    )


def _printable(text: str) -> str:
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    return cleaned[:MAX_RELAYED_LENGTH]


#: Error class name -> class, for failure records shared between workers through Redis.
_SHARED: Final[tuple[type[errors.BrokerError], ...]] = (
    UpstreamUnavailable,
    UpstreamThrottled,
    *REFUSALS.values(),
)
SHARED_ERRORS: Final[MappingProxyType[str, type[errors.BrokerError]]] = MappingProxyType(
    {cls.__name__: cls for cls in _SHARED}
)


def rebuild(name: str, message: str) -> errors.BrokerError:
    """The error another worker recorded; an unknown name reads as unavailable."""
    return SHARED_ERRORS.get(name, UpstreamUnavailable)(message)
