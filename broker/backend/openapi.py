"""The OpenAPI 3.1 document of the backend door, served at ``/openapi.json``.

Written out by hand, as a reader would want it, from the same named limits the marshmallow
schema validates with; ``tests/test_backend_openapi.py`` keeps the two in step (the request
properties equal the schema's fields, every envelope code and status is documented) and
runs Schemathesis against it. The served document describes the configured door: its one
security scheme, and ``user_id`` only in trusted mode, where it is required.
"""

from __future__ import annotations

from typing import Any, Final

from broker.backend.envelope import STATUS_OF
from broker.backend.translators.api_key import HEADER as API_KEY_HEADER
from broker.tokens.claims import DEFAULT_TOKEN_DURATION
from config.aws_model import (
    IDENTITY_ID_PATTERN,
    MAX_DEVELOPER_USER_IDENTIFIER_LENGTH,
    MAX_PRINCIPAL_TAGS,
    MAX_TAG_KEY_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    MAX_TOKEN_DURATION,
    MIN_TOKEN_DURATION,
)
from config.backend import BackendSettings
from config.backend_cookie import DEFAULT_COOKIE_NAME

TOKEN_PATH: Final = "/v1/token"  # noqa: S105 - a URL path, not a secret
OPENAPI_VERSION: Final = "3.1.0"
OPERATION_ID: Final = "issueToken"

#: BROKER_BACKEND_AUTH -> (security scheme name, its definition).
SECURITY_SCHEMES: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "jwt": ("bearerJwt", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}),
    "cookie": ("sessionCookie", {"type": "apiKey", "in": "cookie", "name": DEFAULT_COOKIE_NAME}),
    "api_key": ("apiKey", {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}),
}

ERROR_DESCRIPTIONS: Final = {
    "VALIDATION_ERROR": "The body is not a JSON object, names a member twice, or breaks a limit.",
    "UNAUTHENTICATED": "No valid session: missing, forged, expired, or for another party.",
    "FORBIDDEN": "The identity is disabled, or a tag of the session was overridden.",
    "NOT_FOUND": "The configured identity pool does not exist.",
    "CONFLICT": "The identity store refused a conflicting change.",
    "RATE_LIMITED": "Too many requests; back off and retry.",
    "INTERNAL_ERROR": "An unexpected fault; the x-amzn-RequestId header identifies it.",
    "UNAVAILABLE": "The door is not configured, or Redis or the JWKS is unreachable.",
}


def request_properties(trusted: bool | None) -> dict[str, Any]:
    """The body's members. ``trusted``: True in api_key mode, False in a session mode,
    None while unconfigured (user_id shown as optional)."""
    properties: dict[str, Any] = {
        "token_duration": {
            "type": "integer",
            "minimum": MIN_TOKEN_DURATION,
            "maximum": MAX_TOKEN_DURATION,
            "default": DEFAULT_TOKEN_DURATION,
            "description": "Token lifetime in seconds.",
        },
        "principal_tags": {
            "type": "object",
            "maxProperties": MAX_PRINCIPAL_TAGS,
            "propertyNames": {"minLength": 1, "maxLength": MAX_TAG_KEY_LENGTH},
            "additionalProperties": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_TAG_VALUE_LENGTH,
            },
            "description": "Session tags for AWS STS, added beside the session's own tags.",
        },
    }
    if trusted is not False:
        properties["user_id"] = {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_DEVELOPER_USER_IDENTIFIER_LENGTH,
            "description": "The developer user identifier (BROKER_BACKEND_AUTH=api_key only).",
        }
    return properties


def document(backend: BackendSettings) -> dict[str, Any]:
    trusted = None if backend.auth is None else backend.auth == "api_key"
    request_schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": request_properties(trusted),
    }
    if trusted:
        request_schema["required"] = ["user_id"]
    schemes = _schemes(backend)
    operation: dict[str, Any] = {
        "operationId": OPERATION_ID,
        "summary": "Turn the caller's session into a developer identity and its OpenID token.",
        "security": [{name: []} for name in schemes],
        "requestBody": {
            "required": bool(trusted),
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/TokenRequest"}}
            },
        },
        "responses": {
            "200": {
                "description": "The token (from the cache when `cached` is true).",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/TokenResponse"}}
                },
            },
            **{str(STATUS_OF[code]): _error_response(code) for code in STATUS_OF},
        },
    }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Identity Broker: backend door",
            "version": "1",
            "description": "The sidecar endpoint: a backend's session in, a Cognito-style "
            "developer identity and RS512 OpenID token out.",
        },
        "paths": {TOKEN_PATH: {"post": operation}},
        "components": {
            "securitySchemes": schemes,
            "schemas": {
                "TokenRequest": request_schema,
                "TokenResponse": _token_response(),
                "Error": _error_schema(list(STATUS_OF)),
            },
        },
    }


def _schemes(backend: BackendSettings) -> dict[str, Any]:
    modes = [backend.auth] if backend.auth is not None else list(SECURITY_SCHEMES)
    schemes = {}
    for mode in modes:
        name, scheme = SECURITY_SCHEMES[mode]
        if mode == "cookie" and backend.cookie is not None:
            scheme = {**scheme, "name": backend.cookie.name}
        schemes[name] = scheme
    return schemes


def _token_response() -> dict[str, Any]:
    timestamp = {"type": "string", "format": "date-time"}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["success", "data"],
        "properties": {
            "success": {"const": True},
            "data": {
                "type": "object",
                "additionalProperties": False,
                "required": ["identity_id", "token", "expires_at", "created_at", "cached"],
                "properties": {
                    "identity_id": {"type": "string", "pattern": f"^{IDENTITY_ID_PATTERN}$"},
                    "token": {"type": "string", "description": "RS512 JWS compact (JWT)."},
                    "expires_at": {**timestamp, "description": "The token's exp, UTC."},
                    "created_at": {
                        **timestamp,
                        "description": "When the identity was created, UTC.",
                    },
                    "cached": {"type": "boolean"},
                },
            },
        },
    }


def _error_schema(codes: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["success", "error"],
        "properties": {
            "success": {"const": False},
            "error": {
                "type": "object",
                "additionalProperties": False,
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": codes},
                    "message": {"type": "string"},
                },
            },
        },
    }


def _error_response(code: str) -> dict[str, Any]:
    return {
        "description": f"{code}: {ERROR_DESCRIPTIONS[code]}",
        "content": {"application/json": {"schema": _error_schema([code])}},
    }
