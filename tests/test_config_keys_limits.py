"""Settings of signing keys and rate limits: defaults and every refusal, with its message."""

from __future__ import annotations

import pytest

from config.keys import DEFAULT_RETENTION_SECONDS, KeySettings
from config.limits import RateLimitSettings
from config.settings import ConfigError, Settings


def test_defaults_are_safe() -> None:
    settings = Settings.from_env({})
    assert settings.keys == KeySettings()
    assert settings.keys.encryption_key is None
    assert settings.keys.retention_seconds == 86400 + 300 == DEFAULT_RETENTION_SECONDS
    assert settings.limits == RateLimitSettings(
        per_access_key=None, per_identity=None, unsigned_per_address=50, unsigned_per_pool=500
    )


@pytest.mark.parametrize(
    "raw",
    [
        "ab" * 32,
        "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA",
        "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=",
    ],
)
def test_kek_accepts_hex_and_base64url(raw: str) -> None:
    key = KeySettings.from_env({"BROKER_KEY_ENCRYPTION_KEY": raw}).encryption_key
    assert key is not None and len(key) == 32


def test_kek_is_not_in_repr() -> None:
    settings = KeySettings.from_env({"BROKER_KEY_ENCRYPTION_KEY": "ab" * 32})
    assert "abab" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"BROKER_KEY_ENCRYPTION_KEY": "short"},
            "BROKER_KEY_ENCRYPTION_KEY must be 32 random bytes",
        ),
        (
            {"BROKER_KEY_ENCRYPTION_KEY": "zz" * 32},
            "BROKER_KEY_ENCRYPTION_KEY must be 32 random bytes",
        ),
        ({"BROKER_KEY_REFRESH_SECONDS": "soon"}, "BROKER_KEY_REFRESH_SECONDS must be a number"),
        ({"BROKER_KEY_REFRESH_SECONDS": "-1"}, "BROKER_KEY_REFRESH_SECONDS must be 0 to 3600"),
        ({"BROKER_KEY_RETENTION_SECONDS": "60"}, "must be at least 86700"),
        ({"BROKER_KEY_RETENTION_SECONDS": "1.5"}, "must be whole seconds"),
        ({"BROKER_RATE_LIMIT_PER_ACCESS_KEY": "fast"}, "BROKER_RATE_LIMIT_PER_ACCESS_KEY must be"),
        (
            {"BROKER_RATE_LIMIT_PER_IDENTITY": "0"},
            "BROKER_RATE_LIMIT_PER_IDENTITY must be between 1",
        ),
        (
            {"BROKER_RATE_LIMIT_UNSIGNED_PER_ADDRESS": "none"},
            "BROKER_RATE_LIMIT_UNSIGNED_PER_ADDRESS must be requests per second",
        ),
        (
            {"BROKER_RATE_LIMIT_UNSIGNED_PER_POOL": "0"},
            "BROKER_RATE_LIMIT_UNSIGNED_PER_POOL must be between 1",
        ),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_rate_limits_parse() -> None:
    limits = RateLimitSettings.from_env(
        {"BROKER_RATE_LIMIT_PER_ACCESS_KEY": "50", "BROKER_RATE_LIMIT_PER_IDENTITY": "off"}
    )
    assert limits == RateLimitSettings(per_access_key=50, per_identity=None)
    unsigned = RateLimitSettings.from_env(
        {
            "BROKER_RATE_LIMIT_UNSIGNED_PER_ADDRESS": "7",
            "BROKER_RATE_LIMIT_UNSIGNED_PER_POOL": "off",
        }
    )
    assert (unsigned.unsigned_per_address, unsigned.unsigned_per_pool) == (7, None)
