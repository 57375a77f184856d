"""GetCredentialsForIdentity's STS settings (config/sts.py) and how STS's answers become
the broker's errors (broker.sts.errors)."""

from __future__ import annotations

import pytest

from broker import errors
from broker.sts.errors import from_sts_error
from config.settings import ConfigError, Settings


def test_the_default_is_the_regional_endpoint_of_broker_region() -> None:
    assert Settings.from_env({}).sts.endpoint_url == "https://sts.us-east-1.amazonaws.com"
    settings = Settings.from_env({"BROKER_REGION": "eu-west-1"})
    assert settings.sts.endpoint_url == "https://sts.eu-west-1.amazonaws.com"
    assert settings.sts.region == "eu-west-1" and settings.sts.deadline == 3.0


def test_endpoint_and_deadline_are_read() -> None:
    sts = Settings.from_env(
        {"BROKER_STS_ENDPOINT_URL": "http://127.0.0.1:9/", "BROKER_STS_DEADLINE": "0.5"}
    ).sts
    assert (sts.endpoint_url, sts.deadline, sts.connect_timeout) == ("http://127.0.0.1:9", 0.5, 0.5)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("BROKER_STS_ENDPOINT_URL", "sts.amazonaws.com", "must be an http(s) URL"),
        ("BROKER_STS_ENDPOINT_URL", "https://sts/?x=1", "must be an http(s) URL"),
        ("BROKER_STS_DEADLINE", "0", "above 0 and at most 30"),
        ("BROKER_STS_DEADLINE", "31", "above 0 and at most 30"),
    ],
)
def test_bad_values_name_their_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=name) as info:
        Settings.from_env({name: value})
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("code", "status", "expected", "retry"),
    [
        ("Throttling", 400, errors.TooManyRequestsException, True),
        ("AccessDenied", 403, errors.NotAuthorizedException, False),
        ("InvalidIdentityToken", 400, errors.WebIdentityTokenRejected, False),
        ("ExpiredTokenException", 400, errors.WebIdentityTokenRejected, False),
        ("IDPRejectedClaim", 400, errors.WebIdentityTokenRejected, False),
        ("IDPCommunicationError", 400, errors.ExternalServiceException, False),
        ("InternalFailure", 500, errors.ExternalServiceException, False),
    ],
)
def test_sts_errors_are_mapped(
    code: str, status: int, expected: type[errors.BrokerError], retry: bool
) -> None:
    failure = from_sts_error(code, "reason", status)
    assert type(failure.error) is expected and failure.retry is retry
    assert code in str(failure.error)
    if expected is errors.WebIdentityTokenRejected:  # the AWS door answers as Cognito does
        assert failure.error.error_type == "NotAuthorizedException"


def test_a_token_in_sts_reason_is_cut_out() -> None:
    token = "eyJhbGciOiJSUzUxMiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    failure = from_sts_error("InvalidIdentityToken", f"bad token {token}\n", 400)
    assert token not in str(failure.error) and "<token>" in str(failure.error)
