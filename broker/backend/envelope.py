"""The envelope of the backend door: ``{"success": true, "data": ...}`` or
``{"success": false, "error": {"code", "message"}}``, with a small fixed set of codes.

Why a table: every error the broker can raise is a class of the one error model
(``broker.errors``); ``CODE_OF`` maps each class to a code, walking the class's MRO so a
subclass inherits its parent's code. A class missing from the table is an internal error,
never a 200 and never its own text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final

from broker import errors
from broker.backend.errors import (
    BackendNotConfigured,
    SessionRejected,
    SessionSourceUnavailable,
    TagRefused,
)
from broker.http.exchange import Reply, json_reply

#: This format's name in the edge's renderer registry (``broker.http.renderers``).
FORMAT: Final = "backend-envelope"
CONTENT_TYPE: Final = "application/json"
NO_STORE: Final = (("Cache-Control", "no-store"),)
ISO8601_CACHE_SIZE: Final = 4096  # instants: each user's creation and token expiry

#: Envelope code -> HTTP status. The OpenAPI document lists exactly these.
STATUS_OF: Final = MappingProxyType(
    {
        "VALIDATION_ERROR": 400,
        "UNAUTHENTICATED": 401,
        "FORBIDDEN": 403,
        "NOT_FOUND": 404,
        "CONFLICT": 409,
        "RATE_LIMITED": 429,
        "INTERNAL_ERROR": 500,
        "UNAVAILABLE": 503,
    }
)

#: Error class -> envelope code (the most specific class in an error's MRO wins).
CODE_OF: Final[MappingProxyType[type[errors.BrokerError], str]] = MappingProxyType(
    {
        # client faults in the request itself
        errors.ValidationException: "VALIDATION_ERROR",
        errors.SerializationException: "VALIDATION_ERROR",
        errors.InvalidParameterException: "VALIDATION_ERROR",
        # who is calling
        SessionRejected: "UNAUTHENTICATED",
        errors.NotAuthorizedException: "FORBIDDEN",  # e.g. a disabled (merged) identity
        TagRefused: "FORBIDDEN",
        # the identity store's answers
        errors.ResourceNotFoundException: "NOT_FOUND",
        errors.ResourceConflictException: "CONFLICT",
        errors.DeveloperUserAlreadyRegisteredException: "CONFLICT",
        errors.ConcurrentModificationException: "CONFLICT",
        errors.TooManyRequestsException: "RATE_LIMITED",
        # the broker cannot serve this door now
        BackendNotConfigured: "UNAVAILABLE",
        SessionSourceUnavailable: "UNAVAILABLE",
        errors.StoreUnavailable: "UNAVAILABLE",
        errors.LimitExceededException: "UNAVAILABLE",  # the named pool cannot be created
        errors.InvalidIdentityPoolConfigurationException: "UNAVAILABLE",  # e.g. no role
        errors.ExternalServiceException: "UNAVAILABLE",  # STS failed or cannot be reached
        errors.WebIdentityTokenRejected: "UNAVAILABLE",  # STS cannot accept our token: setup
        errors.InternalErrorException: "INTERNAL_ERROR",
    }
)


def code_of(err: errors.BrokerError) -> str:
    return _mapped_code(err) or "INTERNAL_ERROR"


def _mapped_code(err: errors.BrokerError) -> str | None:
    for cls in type(err).__mro__:
        code = CODE_OF.get(cls)
        if code is not None:
            return code
    return None


def render_error(err: errors.BrokerError) -> tuple[Reply, str]:
    """The door's answer for ``err`` and its code (the metrics' outcome label)."""
    mapped = _mapped_code(err)
    code = mapped or "INTERNAL_ERROR"
    message = err.message if mapped is not None else errors.INTERNAL_MESSAGE
    headers: tuple[tuple[str, str], ...] = ()
    if isinstance(err, SessionRejected) and err.challenge:
        headers = (("WWW-Authenticate", err.challenge),)
    body = {"success": False, "error": {"code": code, "message": message}}
    return json_reply(body, CONTENT_TYPE, STATUS_OF[code], headers), code


def success(data: dict[str, Any]) -> Reply:
    # A bearer token must not be cached (RFC 6749 section 5.1).
    return json_reply({"success": True, "data": data}, CONTENT_TYPE, 200, NO_STORE)


def iso8601(epoch: float) -> str:
    """Seconds since the epoch -> ``2026-01-02T03:04:05Z`` (RFC 3339 ``date-time``, UTC)."""
    return _iso8601_second(int(epoch))


@lru_cache(maxsize=ISO8601_CACHE_SIZE)
def _iso8601_second(second: int) -> str:
    # Cached: a cache hit answers the identity's creation and the cached token's expiry,
    # the same two instants for every hit, and strftime costs more than the lookup.
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
