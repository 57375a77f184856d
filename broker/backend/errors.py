"""Errors only the backend front door raises, declared on the one error model.

Each is a short declaration on :class:`broker.errors.BrokerError`, so the factory's handlers
catch them like any other; ``broker.backend.envelope`` maps every class to the envelope's
code. The AWS names below only show in logs: the backend door never renders ``__type``.
"""

from __future__ import annotations

from broker.errors import BrokerError, ExternalServiceException


class SessionRejected(BrokerError):
    """No usable session: missing, forged, expired, or for another issuer or audience
    (RFC 7235 section 3.1: 401). The message names the reason, never the credential."""

    error_type = "NotAuthorizedException"
    status = 401

    def __init__(self, message: str, *, challenge: str | None = None) -> None:
        super().__init__(message)
        self.challenge = challenge  # the WWW-Authenticate value, when the scheme has one


class BackendNotConfigured(BrokerError):
    """``BROKER_BACKEND_AUTH`` is unset, or the configured pool cannot serve this door."""

    error_type = "InvalidIdentityPoolConfigurationException"
    status = 503


class SessionSourceUnavailable(ExternalServiceException):
    """The session cannot be checked right now (for example the JWKS URL did not answer)."""

    status = 503


class TagRefused(BrokerError):
    """A principal tag the session sets cannot be overridden in the body, or a session
    attribute cannot become a tag (too long)."""

    error_type = "NotAuthorizedException"
    status = 403
