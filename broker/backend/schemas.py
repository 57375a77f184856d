"""The bodies of ``POST /v1/token`` and ``POST /v1/credentials``, validated at the edge
with marshmallow.

Every limit is the AWS contract's own (``config.aws_model``: TokenDuration 1..86400,
at most 50 PrincipalTags with keys of 1..128 and values of 1..256 characters, a
CustomRoleArn of 20..2048 characters), so a token from this door could equally have come
from GetOpenIdTokenForDeveloperIdentity, and credentials from GetCredentialsForIdentity. The
body is
optional; unknown members are refused (a typo must not silently fall back to a default),
and so is a member named twice in one object (issue 14 item 8: a proxy in front of the
broker may read the first ``user_id`` where Python's json keeps the last). Only trusted
mode (``api_key``) names the user in the body: a session names its own user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from broker.errors import ValidationException
from broker.http.exchange import PLAIN_JSON
from broker.http.jsonbody import DuplicateMember, NotAJsonObject, NotJson, parse_object
from broker.tokens.claims import DEFAULT_TOKEN_DURATION
from config.aws_model import (
    MAX_ARN_LENGTH,
    MAX_DEVELOPER_USER_IDENTIFIER_LENGTH,
    MAX_PRINCIPAL_TAGS,
    MAX_TAG_KEY_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    MAX_TOKEN_DURATION,
    MIN_ARN_LENGTH,
    MIN_TOKEN_DURATION,
)

USER_ID_ONLY_TRUSTED: Final = (
    "user_id is accepted only with BROKER_BACKEND_AUTH=api_key; here the session names the user"
)
MAX_LABEL: Final = 40  # a member or map key quoted in a message is cut here
REPEATED_MEMBER: Final = "The request body names the member '{name}' more than once."


class WholeNumber(fields.Integer):
    """A JSON integer: JSON has one number type, and JSON Schema counts ``900.0`` as the
    integer 900, so an integral float is taken; a fraction, a boolean or a string is not."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if type(value) is float and value.is_integer():
            value = int(value)
        return super()._deserialize(value, attr, data, **kwargs)


class TaggedRequestSchema(Schema):
    """What any caller of either door may ask for: the principal tags of the token."""

    class Meta:
        unknown = RAISE

    principal_tags = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=MAX_TAG_KEY_LENGTH)),
        values=fields.String(validate=validate.Length(min=1, max=MAX_TAG_VALUE_LENGTH)),
        validate=validate.Length(max=MAX_PRINCIPAL_TAGS),
        metadata={"description": "Session tags for AWS STS (the token's tags claim)."},
    )


class NamedUserSchema(Schema):
    """Trusted mode: the backend authenticated with an API key and names the user."""

    user_id = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_DEVELOPER_USER_IDENTIFIER_LENGTH),
        metadata={"description": "The developer user identifier (trusted mode only)."},
    )


class TokenRequestSchema(TaggedRequestSchema):
    """``POST /v1/token``: the token's lifetime and its principal tags."""

    token_duration = WholeNumber(
        strict=True,
        validate=validate.Range(min=MIN_TOKEN_DURATION, max=MAX_TOKEN_DURATION),
        metadata={"description": "Token lifetime in seconds.", "default": DEFAULT_TOKEN_DURATION},
    )


class TrustedTokenRequestSchema(TokenRequestSchema, NamedUserSchema):
    pass


class CredentialsRequestSchema(TaggedRequestSchema):
    """``POST /v1/credentials``: the principal tags of the token STS sees, and the role
    asked for (allowed only where GetCredentialsForIdentity's CustomRoleArn would be)."""

    custom_role_arn = fields.String(
        validate=validate.Length(min=MIN_ARN_LENGTH, max=MAX_ARN_LENGTH),
        metadata={"description": "The IAM role to assume, as GetCredentialsForIdentity's."},
    )


class TrustedCredentialsRequestSchema(CredentialsRequestSchema, NamedUserSchema):
    pass


SESSION_SCHEMA: Final = TokenRequestSchema()
TRUSTED_SCHEMA: Final = TrustedTokenRequestSchema()
CREDENTIALS_SESSION_SCHEMA: Final = CredentialsRequestSchema()
CREDENTIALS_TRUSTED_SCHEMA: Final = TrustedCredentialsRequestSchema()
_TOKEN_SCHEMAS: Final = {False: SESSION_SCHEMA, True: TRUSTED_SCHEMA}
_CREDENTIALS_SCHEMAS: Final = {False: CREDENTIALS_SESSION_SCHEMA, True: CREDENTIALS_TRUSTED_SCHEMA}


@dataclass(frozen=True)
class TokenRequest:
    token_duration: int = DEFAULT_TOKEN_DURATION
    principal_tags: Mapping[str, str] = field(default_factory=dict)
    user_id: str | None = None


@dataclass(frozen=True)
class CredentialsRequest:
    principal_tags: Mapping[str, str] = field(default_factory=dict)
    custom_role_arn: str | None = None
    user_id: str | None = None


def load_token_request(body: bytes, *, trusted: bool) -> TokenRequest:
    """Parse and validate the body; raise ValidationException naming every problem."""
    loaded = _load(body, _TOKEN_SCHEMAS[trusted], trusted)
    return TokenRequest(
        token_duration=loaded.get("token_duration", DEFAULT_TOKEN_DURATION),
        principal_tags=loaded.get("principal_tags", {}),
        user_id=loaded.get("user_id"),
    )


def load_credentials_request(body: bytes, *, trusted: bool) -> CredentialsRequest:
    """Parse and validate the body of ``POST /v1/credentials``, as :func:`load_token_request`."""
    loaded = _load(body, _CREDENTIALS_SCHEMAS[trusted], trusted)
    return CredentialsRequest(
        principal_tags=loaded.get("principal_tags", {}),
        custom_role_arn=loaded.get("custom_role_arn"),
        user_id=loaded.get("user_id"),
    )


def _load(body: bytes, schema: Schema, trusted: bool) -> dict[str, Any]:
    data = _parse(body)
    if not trusted and "user_id" in data:
        raise ValidationException(USER_ID_ONLY_TRUSTED)
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ValidationError as err:
        raise ValidationException("Invalid request body: " + _describe(err.messages)) from None
    return loaded


def _parse(body: bytes) -> dict[str, Any]:
    try:  # no body at all is {}; whitespace alone is not JSON
        data = parse_object(body, unique_members=True)  # a proxy may read the first of two
    except DuplicateMember as exc:
        raise ValidationException(REPEATED_MEMBER.format(name=_label(exc.name))) from None
    except NotJson:
        raise ValidationException("The request body is not valid UTF-8 JSON.") from None
    except NotAJsonObject:
        raise ValidationException("The request body must be a JSON object.") from None
    try:  # an escaped unpaired surrogate ("\\ud800") parses, but no token can carry it
        PLAIN_JSON.encode(data).encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationException("The request body holds an unpaired UTF-16 surrogate.") from None
    return data


def _describe(messages: Any, path: str = "") -> str:
    """marshmallow's nested messages -> ``a.b: message; c: message`` (values never echoed)."""
    if isinstance(messages, dict):
        parts = []
        for key, inner in messages.items():
            label = _label(str(key))
            parts.append(_describe(inner, f"{path}.{label}" if path else label))
        return "; ".join(parts)
    if isinstance(messages, list):
        return f"{path}: " + " ".join(str(m) for m in messages)
    return f"{path}: {messages}"


def _label(name: str) -> str:
    return name if len(name) <= MAX_LABEL else name[:MAX_LABEL] + "..."
