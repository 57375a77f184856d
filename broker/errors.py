"""The one error model of the broker.

Every error the AWS JSON front door can send is a subclass of :class:`BrokerError`: a
short declaration of its AWS error name (``__type``) and HTTP status. The renderer in
``broker.awsjson.render`` turns any of them into AWS's envelope; the backend front door
maps the same classes to its own small set of codes. Statuses follow contract section 1:
400 for client faults, 403 for a missing signature, 429 for throttling, 500 for our faults.
"""

from __future__ import annotations

from typing import ClassVar, Final

#: The message of an unexpected fault, at either door: never the exception's own text.
INTERNAL_MESSAGE: Final = "An internal error occurred. The request id identifies it in the logs."
#: The message when Redis does not answer in time, at either door.
STORE_UNAVAILABLE_MESSAGE: Final = "The identity store is unavailable; retry shortly."


class BrokerError(Exception):
    """Base of every error the service reports to a client."""

    error_type: ClassVar[str] = "InternalErrorException"
    status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- modeled Cognito Identity exceptions -------------------------------------------------
class InvalidParameterException(BrokerError):
    error_type = "InvalidParameterException"


class ResourceNotFoundException(BrokerError):
    error_type = "ResourceNotFoundException"


class NotAuthorizedException(BrokerError):
    error_type = "NotAuthorizedException"


class ResourceConflictException(BrokerError):
    error_type = "ResourceConflictException"


class DeveloperUserAlreadyRegisteredException(BrokerError):
    error_type = "DeveloperUserAlreadyRegisteredException"


class LimitExceededException(BrokerError):
    error_type = "LimitExceededException"


class ConcurrentModificationException(BrokerError):
    error_type = "ConcurrentModificationException"


class InvalidIdentityPoolConfigurationException(BrokerError):
    error_type = "InvalidIdentityPoolConfigurationException"


class ExternalServiceException(BrokerError):
    error_type = "ExternalServiceException"


class TooManyRequestsException(BrokerError):
    error_type = "TooManyRequestsException"
    status = 429


class InternalErrorException(BrokerError):
    error_type = "InternalErrorException"
    status = 500


# --- protocol-level errors (AWS JSON 1.1 and SigV4) --------------------------------------
class ValidationException(BrokerError):
    error_type = "ValidationException"


class SerializationException(BrokerError):
    error_type = "SerializationException"


class UnknownOperationException(BrokerError):
    error_type = "UnknownOperationException"


class UnrecognizedClientException(BrokerError):
    error_type = "UnrecognizedClientException"


class InvalidSignatureException(BrokerError):
    error_type = "InvalidSignatureException"


class IncompleteSignatureException(BrokerError):
    error_type = "IncompleteSignatureException"


class MissingAuthenticationTokenException(BrokerError):
    error_type = "MissingAuthenticationTokenException"
    status = 403


class RequestTooLargeException(ValidationException):
    """A body over the configured limit, refused before it is parsed (contract section 1)."""


class StoreUnavailable(InternalErrorException):
    """Redis did not answer in time; reported to clients as InternalErrorException."""
