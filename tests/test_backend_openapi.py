"""The OpenAPI document of the backend door: in step with the code, and honoured by it.

The first tests hold the document to the marshmallow schema and the envelope table; the
last lets Schemathesis generate requests from the document (valid and invalid bodies,
missing auth) and checks every answer: never a 5xx, always a documented status, body and
content type.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from marshmallow import fields, validate
from schemathesis import GenerationMode
from support.backend import (
    API_KEY,
    HS_JWT_ENV,
    bearer,
    claims_for,
    give_door_pool_a_role,
    hs_jwt,
)
from support.processes import RedisServer
from support.sts import StsStandIn

from broker.app.factory import create_app
from broker.backend import openapi
from broker.backend.envelope import CODE_OF, STATUS_OF
from broker.backend.schemas import (
    CREDENTIALS_SESSION_SCHEMA,
    CREDENTIALS_TRUSTED_SCHEMA,
    SESSION_SCHEMA,
    TRUSTED_SCHEMA,
)
from config.backend import BackendSettings
from config.settings import Settings

ENVS = {
    "jwt": HS_JWT_ENV,
    "cookie": {"BROKER_BACKEND_AUTH": "cookie", "BROKER_BACKEND_COOKIE_SECRET": "s" * 20},
    "api_key": {"BROKER_BACKEND_AUTH": "api_key", "BROKER_BACKEND_API_KEYS": API_KEY},
    "off": {},
}
ROLE = "arn:aws:iam::123456789012:role/schemathesis"
MAX_EXAMPLES = 80  # per generation mode; bounds the run to a few seconds
POOL = {"BROKER_BACKEND_POOL_ID": "us-east-1:00000000-0000-4000-8000-000000000000"}
#: path -> (its request component, its marshmallow schema in trusted and in session mode)
PATHS: dict[str, tuple[str, Any, Any]] = {
    openapi.TOKEN_PATH: ("TokenRequest", TRUSTED_SCHEMA, SESSION_SCHEMA),
    openapi.CREDENTIALS_PATH: (
        "CredentialsRequest",
        CREDENTIALS_TRUSTED_SCHEMA,
        CREDENTIALS_SESSION_SCHEMA,
    ),
}


def backend_settings(mode: str) -> BackendSettings:
    env = {**ENVS[mode], **POOL} if mode != "off" else {"BROKER_BACKEND_AUTH": "off"}
    return Settings.from_env(env).backend


def operation(mode: str, path: str = openapi.TOKEN_PATH) -> dict[str, Any]:
    op: dict[str, Any] = openapi.document(backend_settings(mode))["paths"][path]["post"]
    return op


def request_schema(mode: str, path: str = openapi.TOKEN_PATH) -> dict[str, Any]:
    schemas = openapi.document(backend_settings(mode))["components"]["schemas"]
    schema: dict[str, Any] = schemas[PATHS[path][0]]
    return schema


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("mode", ["jwt", "cookie", "api_key"])
def test_request_properties_are_the_marshmallow_fields(mode: str, path: str) -> None:
    _, trusted, session = PATHS[path]
    marshmallow = trusted if mode == "api_key" else session
    schema = request_schema(mode, path)
    assert set(schema["properties"]) == set(marshmallow.fields)
    required = {name for name, field in marshmallow.fields.items() if field.required}
    assert set(schema.get("required", [])) == required
    assert schema["additionalProperties"] is False
    request_body = operation(mode, path)["requestBody"]
    assert request_body["required"] is bool(required)
    ref = request_body["content"]["application/json"]["schema"]["$ref"]
    assert ref == f"#/components/schemas/{PATHS[path][0]}"


def test_custom_role_arn_limits_are_the_marshmallow_limits() -> None:
    properties = request_schema("api_key", openapi.CREDENTIALS_PATH)["properties"]
    arn = _validator(CREDENTIALS_TRUSTED_SCHEMA.fields["custom_role_arn"], validate.Length)
    assert properties["custom_role_arn"]["minLength"] == arn.min
    assert properties["custom_role_arn"]["maxLength"] == arn.max
    token_tags = request_schema("api_key")["properties"]["principal_tags"]
    assert properties["principal_tags"] == token_tags  # one definition for both paths


def _validator(field: fields.Field[Any], kind: type) -> Any:
    (found,) = [v for v in field.validators if isinstance(v, kind)]
    return found


def test_request_limits_are_the_marshmallow_limits() -> None:
    properties = request_schema("api_key")["properties"]
    fields_ = TRUSTED_SCHEMA.fields

    duration = _validator(fields_["token_duration"], validate.Range)
    assert properties["token_duration"]["minimum"] == duration.min
    assert properties["token_duration"]["maximum"] == duration.max

    tags = fields_["principal_tags"]
    assert isinstance(tags, fields.Dict)
    assert properties["principal_tags"]["maxProperties"] == _validator(tags, validate.Length).max
    assert tags.key_field is not None and tags.value_field is not None
    key_length = _validator(tags.key_field, validate.Length)
    value_length = _validator(tags.value_field, validate.Length)
    assert properties["principal_tags"]["propertyNames"] == {
        "minLength": key_length.min,
        "maxLength": key_length.max,
    }
    value = properties["principal_tags"]["additionalProperties"]
    assert (value["minLength"], value["maxLength"]) == (value_length.min, value_length.max)

    user_length = _validator(fields_["user_id"], validate.Length)
    assert properties["user_id"]["minLength"] == user_length.min
    assert properties["user_id"]["maxLength"] == user_length.max


@pytest.mark.parametrize("path", list(PATHS))
def test_every_envelope_code_and_status_is_documented(path: str) -> None:
    document = openapi.document(backend_settings("api_key"))
    responses = document["paths"][path]["post"]["responses"]
    assert set(responses) == {"200"} | {str(status) for status in STATUS_OF.values()}
    for code, status in STATUS_OF.items():
        schema = responses[str(status)]["content"]["application/json"]["schema"]
        assert schema["properties"]["error"]["properties"]["code"]["enum"] == [code]
    error = document["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["properties"]["code"]["enum"] == list(STATUS_OF)
    assert set(CODE_OF.values()) <= set(STATUS_OF)


@pytest.mark.parametrize("mode", ["jwt", "cookie", "api_key", "off"])
def test_security_scheme_follows_the_configured_translator(mode: str) -> None:
    document = openapi.document(backend_settings(mode))
    schemes = document["components"]["securitySchemes"]
    expected = {
        "jwt": {"bearerJwt"},
        "cookie": {"sessionCookie"},
        "api_key": {"apiKey"},
        "off": {"bearerJwt", "sessionCookie", "apiKey"},
    }[mode]
    assert set(schemes) == expected
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_the_app_serves_the_document(client: Any) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    # the in-process app runs on loopback with no BROKER_BACKEND_AUTH: the development door
    assert response.json == openapi.document(Settings.from_env({}).backend)


# --- Schemathesis against a live door, trusted and JWT modes -----------------------------
@pytest.fixture(scope="module")
def sts() -> Iterator[StsStandIn]:
    """STS for /v1/credentials' cases; the in-process broker's JWKS is not served, so the
    stand-in reads the token's claims unchecked (tests/test_backend_credentials.py checks)."""
    with StsStandIn(verify=False) as stand_in:
        yield stand_in


@pytest.fixture
def door_api(redis_server: RedisServer, broker_credentials: dict[str, str], sts: StsStandIn) -> Any:
    """mode -> (the Schemathesis schema loaded from the app's /openapi.json, auth headers),
    its pool given an authenticated role."""

    def load(mode: str) -> tuple[Any, dict[str, str]]:
        settings = Settings.from_env(
            {
                "REDIS_URL": redis_server.url,
                "BROKER_CREDENTIALS": ",".join(f"{k}:{v}" for k, v in broker_credentials.items()),
                "BROKER_BACKEND_POOL_NAME": f"schemathesis {uuid.uuid4().hex[:8]}",
                "BROKER_BACKEND_DEVELOPER_PROVIDER": "login.schemathesis",
                "BROKER_STS_ENDPOINT_URL": sts.url,
                **ENVS[mode],
            }
        )
        app = create_app(settings)
        headers = (
            {"X-Api-Key": API_KEY}
            if mode == "api_key"
            else bearer(hs_jwt(claims_for("schemathesis-user", lifetime=600)))
        )
        body = {"user_id": "schemathesis-user"} if mode == "api_key" else {}
        give_door_pool_a_role(app.test_client(), headers, body, ROLE)
        return schemathesis.openapi.from_wsgi("/openapi.json", app), headers

    return load


@pytest.mark.slow
@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("generation", list(GenerationMode), ids=lambda mode: mode.value)
@pytest.mark.parametrize("mode", ["api_key", "jwt"])
def test_schemathesis_finds_no_server_error_and_no_schema_break(
    door_api: Any, mode: str, generation: GenerationMode, path: str, sts: StsStandIn
) -> None:
    """Valid bodies (positive) and bodies that break the schema (negative), each answer held
    to every default Schemathesis check: no 5xx, documented status, content type and body,
    valid data accepted, invalid data rejected, auth not ignored. Driven through Hypothesis
    directly: Schemathesis' lazy pytest fixture does not run under pytest 9."""
    api, headers = door_api(mode)
    operation = api[path]["POST"]

    @given(case=operation.as_strategy(generation_mode=generation))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers)

    sts.reset()
    check()
    if path == openapi.CREDENTIALS_PATH and generation is GenerationMode.POSITIVE:
        assert any(call.answer == "credentials" for call in sts.calls)  # valid bodies got them
