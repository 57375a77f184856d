"""Request parsing and validation at the edge, in AWS's wording (AWS JSON 1.1).

Why: the contract (section 1) answers a body that is not a JSON object, or a member of
the wrong JSON type, with ``SerializationException``, and every constraint violation
(required, length, value range, pattern, enum, map and list sizes) with one
``ValidationException`` that lists them all the way AWS words them::

    2 validation errors detected: Value '99999' at 'tokenDuration' failed to satisfy
    constraint: Member must have value less than or equal to 86400; Value null at
    'identityPoolId' failed to satisfy constraint: Member must not be null

This module holds the one entry point, :func:`load_request`, and AWS's wording; the
schemas are ``broker.awsjson.schemas`` (from botocore's cognito-identity 2014-06-30
model), declared with the strict fields of ``broker.awsjson.fields``, which also define
the violation paths. Sensitive members (Logins values, developer user ids, tokens) are
never echoed: ``Value at '<path>' ...``. JSON null means absent; unknown members are
ignored, as AWS does.
"""

from __future__ import annotations

from typing import Any, Final

from marshmallow import Schema, ValidationError

from broker.awsjson.fields import StrictField, Violation, camel_case
from broker.awsjson.schemas import OPERATIONS, SCHEMAS
from broker.errors import SerializationException, ValidationException
from broker.http.jsonbody import NotAJsonObject, NotJson, parse_object

# OPERATIONS (the operation names that have a schema) and StrictField are re-exported.
__all__ = ["OPERATIONS", "StrictField", "load_request"]

MAX_ECHO_LENGTH: Final = 256  # longer echoed values are cut here and end with "..."


def load_request(operation: str, body: bytes) -> dict[str, Any]:
    """Parse and validate one request body; return its members under snake_case keys.

    Raises SerializationException (not a JSON object, wrong member type) or
    ValidationException (all constraint violations at once). Absent members are absent.
    ``operation`` is one of the dispatch table's, each of which has a schema.
    """
    schema = SCHEMAS[operation]
    data = _parse(body)
    try:
        result: dict[str, Any] = schema.load(data)
    except ValidationError as err:
        raise _validation_exception(schema, err.messages) from None
    return result


# --- the body ----------------------------------------------------------------------------
def _parse(body: bytes) -> dict[str, Any]:
    try:
        return parse_object(body)
    except NotJson as exc:
        raise SerializationException(f"Request body is {exc}") from None
    except NotAJsonObject as exc:
        raise SerializationException(
            f"Request body must be a JSON object, not {exc.type_name}"
        ) from None


# --- AWS's wording -----------------------------------------------------------------------
def _validation_exception(schema: Schema, messages: Any) -> ValidationException:
    """Every violation, in the schema's member order (every field is a StrictField, so
    every message is a :class:`Violation`)."""
    found = [
        _sentence(key, violation)
        for name, field in schema.load_fields.items()
        for key in [field.data_key or name]
        for violation in messages.get(key, ())
    ]
    noun = "error" if len(found) == 1 else "errors"
    return ValidationException(f"{len(found)} validation {noun} detected: " + "; ".join(found))


def _sentence(member: str, violation: Violation) -> str:
    path = camel_case(member) + violation.suffix
    if violation.value is None:
        head = "Value null"
    elif violation.sensitive:
        head = "Value"
    else:
        shown = _echo(violation.value)
        if shown is None:
            head = "Value"
        elif len(shown) > MAX_ECHO_LENGTH:
            head = f"Value '{shown[:MAX_ECHO_LENGTH]}...'"
        else:
            head = f"Value '{shown}'"
    return f"{head} at '{path}' failed to satisfy constraint: {violation.constraint}"


def _echo(value: Any) -> str | None:
    """A value as AWS (Java's toString) shows it; None for structures, which we omit."""
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    if type(value) is list and all(type(item) is str for item in value):
        return "[" + ", ".join(value) + "]"
    if type(value) is dict and all(type(item) is str for item in value.values()):
        return "{" + ", ".join(f"{key}={item}" for key, item in value.items()) + "}"
    return None
