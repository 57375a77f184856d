"""The OpenAPI 3.1 document of the backend door (``/v1/token`` and ``/v1/credentials``),
served at ``/openapi.json``.

Written out by hand, as a reader would want it, from the same named limits the marshmallow
schemas validate with; ``tests/test_backend_openapi.py`` keeps the two in step (the request
properties equal the schemas' fields, every envelope code and status is documented) and
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
    MAX_ARN_LENGTH,
    MAX_DEVELOPER_USER_IDENTIFIER_LENGTH,
    MAX_PRINCIPAL_TAGS,
    MAX_TAG_KEY_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    MAX_TOKEN_DURATION,
    MIN_ARN_LENGTH,
    MIN_TOKEN_DURATION,
)
from config.backend import BackendSettings
from config.backend_cookie import DEFAULT_COOKIE_NAME

TOKEN_PATH: Final = "/v1/token"  # noqa: S105 - a URL path, not a secret
CREDENTIALS_PATH: Final = "/v1/credentials"
OPENAPI_VERSION: Final = "3.1.0"
OPERATION_ID: Final = "issueToken"
CREDENTIALS_OPERATION_ID: Final = "getCredentials"

#: BROKER_BACKEND_AUTH -> (security scheme name, its definition).
SECURITY_SCHEMES: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "jwt": ("bearerJwt", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}),
    "cookie": ("sessionCookie", {"type": "apiKey", "in": "cookie", "name": DEFAULT_COOKIE_NAME}),
    "api_key": ("apiKey", {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}),
}

ERROR_DESCRIPTIONS: Final = {
    "VALIDATION_ERROR": "The body is not a JSON object, names a member twice, or breaks a limit.",
    "UNAUTHENTICATED": "No valid session: missing, forged, expired, or for another party.",
    "FORBIDDEN": "The identity is disabled, a tag of the session was overridden, or (for "
    "credentials) the role asked for is not allowed or the role's trust policy refused it.",
    "NOT_FOUND": "The configured identity pool does not exist.",
    "CONFLICT": "The identity store refused a conflicting change.",
    "RATE_LIMITED": "Too many requests (or STS is throttling); back off and retry.",
    "INTERNAL_ERROR": "An unexpected fault; the x-amzn-RequestId header identifies it.",
    "UNAVAILABLE": "The door is not configured, Redis or the JWKS is unreachable, or (for "
    "credentials) the pool has no role, STS cannot accept the broker's tokens (IAM set-up), "
    "or STS did not answer.",
}

TAGS_PROPERTY: Final = {
    "type": "object",
    "maxProperties": MAX_PRINCIPAL_TAGS,
    "propertyNames": {"minLength": 1, "maxLength": MAX_TAG_KEY_LENGTH},
    "additionalProperties": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_TAG_VALUE_LENGTH,
    },
    "description": "Session tags for AWS STS, added beside the session's own tags.",
}
USER_ID_PROPERTY: Final = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_DEVELOPER_USER_IDENTIFIER_LENGTH,
    "description": "The developer user identifier (BROKER_BACKEND_AUTH=api_key only).",
}


def request_properties(trusted: bool | None) -> dict[str, Any]:
    """The body's members of ``/v1/token``. ``trusted``: True in api_key mode, False in a
    session mode, None while unconfigured (user_id shown as optional)."""
    properties: dict[str, Any] = {
        "token_duration": {
            "type": "integer",
            "minimum": MIN_TOKEN_DURATION,
            "maximum": MAX_TOKEN_DURATION,
            "default": DEFAULT_TOKEN_DURATION,
            "description": "Token lifetime in seconds.",
        },
        "principal_tags": TAGS_PROPERTY,
    }
    if trusted is not False:
        properties["user_id"] = USER_ID_PROPERTY
    return properties


def credentials_request_properties(trusted: bool | None) -> dict[str, Any]:
    """The body's members of ``/v1/credentials`` (``trusted`` as for
    :func:`request_properties`)."""
    properties: dict[str, Any] = {
        "principal_tags": TAGS_PROPERTY,
        "custom_role_arn": {
            "type": "string",
            "minLength": MIN_ARN_LENGTH,
            "maxLength": MAX_ARN_LENGTH,
            "description": "The IAM role to assume, allowed where GetCredentialsForIdentity's "
            "CustomRoleArn is: the role the pool's roles and role mappings choose.",
        },
    }
    if trusted is not False:
        properties["user_id"] = USER_ID_PROPERTY
    return properties


def document(backend: BackendSettings) -> dict[str, Any]:
    trusted = None if backend.auth is None else backend.auth == "api_key"
    schemes = _schemes(backend)
    token = _operation(
        OPERATION_ID,
        "Turn the caller's session into a developer identity and its OpenID token.",
        schemes,
        trusted,
        request="TokenRequest",
        response="TokenResponse",
        answer="The token (from the cache when `cached` is true).",
    )
    credentials = _operation(
        CREDENTIALS_OPERATION_ID,
        "Turn the caller's session into a developer identity and AWS credentials for its "
        "pool's role, as GetCredentialsForIdentity gives them (from STS, or in upstream mode "
        "from AWS Cognito).",
        schemes,
        trusted,
        request="CredentialsRequest",
        response="CredentialsResponse",
        answer="Temporary AWS credentials from STS, never cached by the broker.",
    )
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Identity Broker: backend door",
            "version": "1",
            "description": "The sidecar endpoint: a backend's session in, a Cognito-style "
            "developer identity and RS512 OpenID token (or AWS credentials) out.",
        },
        "paths": {TOKEN_PATH: {"post": token}, CREDENTIALS_PATH: {"post": credentials}},
        "components": {
            "securitySchemes": schemes,
            "schemas": {
                "TokenRequest": _request_schema(request_properties(trusted), trusted),
                "TokenResponse": _success(_token_data()),
                "CredentialsRequest": _request_schema(
                    credentials_request_properties(trusted), trusted
                ),
                "CredentialsResponse": _success(_credentials_data()),
                "Error": _error_schema(list(STATUS_OF)),
            },
        },
    }


def _operation(
    operation_id: str,
    summary: str,
    schemes: dict[str, Any],
    trusted: bool | None,
    *,
    request: str,
    response: str,
    answer: str,
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "security": [{name: []} for name in schemes],
        "requestBody": {
            "required": bool(trusted),
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{request}"}}
            },
        },
        "responses": {
            "200": {
                "description": answer,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{response}"}}
                },
            },
            **{str(STATUS_OF[code]): _error_response(code) for code in STATUS_OF},
        },
    }


def _request_schema(properties: dict[str, Any], trusted: bool | None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }
    if trusted:
        schema["required"] = ["user_id"]
    return schema


def _schemes(backend: BackendSettings) -> dict[str, Any]:
    modes = [backend.auth] if backend.auth is not None else list(SECURITY_SCHEMES)
    schemes = {}
    for mode in modes:
        name, scheme = SECURITY_SCHEMES[mode]
        if mode == "cookie" and backend.cookie is not None:
            scheme = {**scheme, "name": backend.cookie.name}
        schemes[name] = scheme
    return schemes


TIMESTAMP: Final = {"type": "string", "format": "date-time"}
IDENTITY_ID: Final = {"type": "string", "pattern": f"^{IDENTITY_ID_PATTERN}$"}


def _success(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["success", "data"],
        "properties": {"success": {"const": True}, "data": data},
    }


def _closed(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }


def _token_data() -> dict[str, Any]:
    return _closed(
        {
            "identity_id": IDENTITY_ID,
            "token": {"type": "string", "description": "RS512 JWS compact (JWT)."},
            "expires_at": {**TIMESTAMP, "description": "The token's exp, UTC."},
            "created_at": {**TIMESTAMP, "description": "When the identity was created, UTC."},
            "cached": {"type": "boolean"},
        }
    )


def _credentials_data() -> dict[str, Any]:
    secret = {"type": "string", "minLength": 1}
    return _closed(
        {
            "identity_id": IDENTITY_ID,
            "credentials": _closed(
                {
                    "access_key_id": {**secret, "description": "AWS access key id."},
                    "secret_key": {**secret, "description": "AWS secret access key."},
                    "session_token": {**secret, "description": "AWS session token."},
                    "expires_at": {**TIMESTAMP, "description": "When they expire, UTC."},
                }
            ),
        }
    )


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
