"""Upstream mode's settings (config/upstream.py): read once, a bad value names its variable."""

from __future__ import annotations

import pytest

from config.settings import ConfigError, Settings
from config.upstream import UpstreamSettings

POOL = "eu-west-1:11111111-2222-3333-4444-555555555555"
BASE = {
    "BROKER_UPSTREAM": "aws",
    "BROKER_UPSTREAM_POOL_ID": POOL,
    "BROKER_UPSTREAM_DEVELOPER_PROVIDER": "login.myapp",
    "BROKER_BACKEND_AUTH": "api_key",
    "BROKER_BACKEND_API_KEYS": "k" * 40,
}


def test_off_by_default() -> None:
    settings = Settings.from_env({})
    assert settings.upstream == UpstreamSettings()
    assert settings.upstream.enabled is False


def test_a_full_configuration() -> None:
    settings = Settings.from_env(
        {
            **BASE,
            "BROKER_UPSTREAM_ENDPOINT_URL": "http://127.0.0.1:9999/",
            "BROKER_UPSTREAM_DEADLINE": "5",
            "BROKER_UPSTREAM_CONNECT_TIMEOUT": "1",
            "BROKER_UPSTREAM_READ_TIMEOUT": "2",
            "BROKER_UPSTREAM_MAX_RATE": "20",
            "BROKER_UPSTREAM_BREAKER_FAILURES": "7",
            "BROKER_UPSTREAM_BREAKER_COOLDOWN": "2.5",
        }
    )
    upstream = settings.upstream
    assert upstream.enabled and upstream.mode == "aws"
    assert upstream.region == "eu-west-1"  # from the pool id
    assert upstream.endpoint_url == "http://127.0.0.1:9999"
    assert (upstream.deadline, upstream.connect_timeout, upstream.read_timeout) == (5, 1, 2)
    assert (upstream.max_rate, upstream.breaker_failures, upstream.breaker_cooldown) == (20, 7, 2.5)
    assert settings.backend.pool_id == POOL  # the door's pool is the upstream pool


def test_defaults_fit_aws_quota() -> None:
    upstream = Settings.from_env(BASE).upstream
    assert upstream.endpoint_url is None
    assert upstream.max_rate < 50  # AWS's default quota, contract section 8
    assert upstream.connect_timeout + upstream.read_timeout <= upstream.deadline


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"BROKER_UPSTREAM": "gcp"}, "BROKER_UPSTREAM must be aws or off"),
        ({"BROKER_UPSTREAM_POOL_ID": ""}, "BROKER_UPSTREAM_POOL_ID is required"),
        ({"BROKER_UPSTREAM_POOL_ID": "not a pool"}, "BROKER_UPSTREAM_POOL_ID must look like"),
        ({"BROKER_UPSTREAM_DEVELOPER_PROVIDER": ""}, "BROKER_UPSTREAM_DEVELOPER_PROVIDER is"),
        ({"BROKER_UPSTREAM_DEVELOPER_PROVIDER": "bad provider"}, "must match"),
        ({"BROKER_UPSTREAM_REGION": "us-east-1"}, "is a pool of 'eu-west-1'"),
        ({"BROKER_UPSTREAM_REGION": "Mars"}, "BROKER_UPSTREAM_REGION must look like"),
        ({"BROKER_UPSTREAM_ENDPOINT_URL": "ftp://x"}, "BROKER_UPSTREAM_ENDPOINT_URL must be"),
        ({"BROKER_UPSTREAM_DEADLINE": "0"}, "BROKER_UPSTREAM_DEADLINE must be above 0"),
        ({"BROKER_UPSTREAM_DEADLINE": "soon"}, "BROKER_UPSTREAM_DEADLINE must be a number"),
        ({"BROKER_UPSTREAM_DEADLINE": "1"}, "must fit in BROKER_UPSTREAM_DEADLINE"),
        ({"BROKER_UPSTREAM_READ_TIMEOUT": "nan"}, "BROKER_UPSTREAM_READ_TIMEOUT must be above"),
        ({"BROKER_UPSTREAM_MAX_RATE": "0"}, "BROKER_UPSTREAM_MAX_RATE must be between 1"),
        ({"BROKER_UPSTREAM_MAX_RATE": "fast"}, "BROKER_UPSTREAM_MAX_RATE must be a whole"),
        ({"BROKER_UPSTREAM_BREAKER_FAILURES": "0"}, "BROKER_UPSTREAM_BREAKER_FAILURES must be"),
        ({"BROKER_UPSTREAM_BREAKER_COOLDOWN": "301"}, "BROKER_UPSTREAM_BREAKER_COOLDOWN must"),
        ({"BROKER_BACKEND_AUTH": "", "BROKER_BACKEND_API_KEYS": ""}, "set BROKER_BACKEND_AUTH"),
        ({"BROKER_BACKEND_POOL_ID": POOL}, "BROKER_BACKEND_POOL_ID does not apply"),
        ({"BROKER_BACKEND_POOL_NAME": "x"}, "BROKER_BACKEND_POOL_NAME does not apply"),
    ],
)
def test_bad_values_name_the_variable(change: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        Settings.from_env({**BASE, **change})


@pytest.mark.parametrize("mode", ["", "off", "OFF"])
def test_a_variable_of_the_mode_is_refused_while_it_is_off(mode: str) -> None:
    with pytest.raises(ConfigError, match="BROKER_UPSTREAM_POOL_ID is set but BROKER_UPSTREAM"):
        Settings.from_env({"BROKER_UPSTREAM": mode, "BROKER_UPSTREAM_POOL_ID": POOL})


def test_the_local_door_is_unchanged_when_the_mode_is_off() -> None:
    env = {
        "BROKER_BACKEND_AUTH": "api_key",
        "BROKER_BACKEND_API_KEYS": "k" * 40,
        "BROKER_BACKEND_POOL_ID": POOL,
    }
    assert Settings.from_env(env).backend.pool_id == POOL
