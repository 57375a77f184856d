"""The one error model of the broker.

Every error the AWS JSON front door can send is a subclass of :class:`BrokerError`: a
short declaration of its AWS error name (``__type``) and HTTP status. The renderer in
``broker.awsjson.render`` turns any of them into AWS's envelope; the backend front door
maps the same classes to its own small set of codes. Statuses follow contract section 1:
400 for client faults (:class:`ClientFault`), 403 for a missing signature, 429 for
throttling, 500 for our faults (the default: an error that declares nothing is ours).
"""

from __future__ import annotations

from typing import ClassVar, Final

#: The message of an unexpected fault, at either door: never the exception's own text.
INTERNAL_MESSAGE: Final = "An internal error occurred. The request id identifies it in the logs."
#: The message when Redis does not answer in time, at either door.
STORE_UNAVAILABLE_MESSAGE: Final = "The identity store is unavailable; retry shortly."


class BrokerError(Exception):
    """Base of every error the service reports to a client. Undeclared, an error is ours:
    an internal error with status 500 (a client fault says so, :class:`ClientFault`)."""

    error_type: ClassVar[str] = "InternalErrorException"
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ClientFault(BrokerError):
    """A fault in the request (or in what it asks for): HTTP 400 unless it says otherwise."""

    status = 400


# --- modeled Cognito Identity exceptions -------------------------------------------------
class InvalidParameterException(ClientFault):
    error_type = "InvalidParameterException"


class ResourceNotFoundException(ClientFault):
    error_type = "ResourceNotFoundException"


class NotAuthorizedException(ClientFault):
    error_type = "NotAuthorizedException"


class ResourceConflictException(ClientFault):
    error_type = "ResourceConflictException"


class DeveloperUserAlreadyRegisteredException(ClientFault):
    error_type = "DeveloperUserAlreadyRegisteredException"


class LimitExceededException(ClientFault):
    error_type = "LimitExceededException"


class ConcurrentModificationException(ClientFault):
    error_type = "ConcurrentModificationException"


class WebIdentityTokenRejected(NotAuthorizedException):
    """AWS STS refused the token the broker signed for an identity (InvalidIdentityToken,
    ExpiredToken, IDPRejectedClaim): the IAM provider, its client ids, the broker's JWKS or
    a clock is set up wrong. The AWS door answers NotAuthorizedException, as Cognito does;
    the backend door UNAVAILABLE, since no caller can fix it."""


class InvalidIdentityPoolConfigurationException(ClientFault):
    error_type = "InvalidIdentityPoolConfigurationException"


class ExternalServiceException(ClientFault):
    error_type = "ExternalServiceException"


class TooManyRequestsException(ClientFault):
    error_type = "TooManyRequestsException"
    status = 429


class InternalErrorException(BrokerError):
    error_type = "InternalErrorException"
    status = 500


# --- protocol-level errors (AWS JSON 1.1 and SigV4) --------------------------------------
class ValidationException(ClientFault):
    error_type = "ValidationException"


class SerializationException(ClientFault):
    error_type = "SerializationException"


class UnknownOperationException(ClientFault):
    error_type = "UnknownOperationException"


class UnrecognizedClientException(ClientFault):
    error_type = "UnrecognizedClientException"


class InvalidSignatureException(ClientFault):
    error_type = "InvalidSignatureException"


class IncompleteSignatureException(ClientFault):
    error_type = "IncompleteSignatureException"


class MissingAuthenticationTokenException(ClientFault):
    error_type = "MissingAuthenticationTokenException"
    status = 403


class RequestTooLargeException(ValidationException):
    """A body over the configured limit, refused before it is parsed (contract section 1)."""


class StoreUnavailable(InternalErrorException):
    """Redis did not answer in time; reported to clients as InternalErrorException."""

    #: Counted in ``broker_redis_errors_total``: a Redis fault. A subclass for another
    #: store that is away (upstream Cognito) says False.
    redis_fault: ClassVar[bool] = True
