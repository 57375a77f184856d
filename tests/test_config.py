"""Settings.from_env: defaults, the loopback-only development key, and every error message."""

from __future__ import annotations

import dataclasses
import re

import pytest

from config.server import Bind
from config.settings import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_POOLS,
    DEFAULT_REDIS_TIMEOUT,
    DEV_ACCESS_KEY_ID,
    DEV_SECRET_ACCESS_KEY,
    ConfigError,
    Settings,
)

GOOD_SECRET = "s3cret-s3cret-s3cret"  # 20 characters
CREDS = f"AKIDONE:{GOOD_SECRET}"
ISSUER = "https://broker.example"


def test_defaults_on_an_empty_environment() -> None:
    settings = Settings.from_env({})
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.bind == "127.0.0.1:8000"
    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.region == "us-east-1"
    assert settings.account_id == "000000000000"
    assert settings.signing_key_file is None
    assert settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES
    assert settings.max_pools == DEFAULT_MAX_POOLS
    assert settings.redis_timeout == DEFAULT_REDIS_TIMEOUT
    assert settings.dev_credentials is True
    assert dict(settings.credentials) == {DEV_ACCESS_KEY_ID: DEV_SECRET_ACCESS_KEY}


def test_reads_only_the_mapping_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_REGION", "eu-west-1")
    monkeypatch.setenv("BROKER_BIND", "0.0.0.0:8000")
    assert Settings.from_env({}).region == "us-east-1"


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.region = "eu-west-1"  # type: ignore[misc]


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    "bind",
    [
        "127.0.0.1:8000",
        "127.0.0.2:9000",
        "localhost:8000",
        "[::1]:8000",
    ],
)
def test_dev_credentials_accepted_on_loopback(bind: str) -> None:
    settings = Settings.from_env({"BROKER_BIND": bind})
    assert settings.dev_credentials is True
    assert dict(settings.credentials) == {DEV_ACCESS_KEY_ID: DEV_SECRET_ACCESS_KEY}
    assert settings.bind == bind


@pytest.mark.parametrize(
    "bind",
    [
        "0.0.0.0:8000",
        "[::]:8000",
        "10.1.2.3:8000",
        "192.168.1.10:80",
        "broker.example:8000",
        "unix:/tmp/broker.sock",  # what a reverse proxy publishes
        "unix:8000",  # a socket file named like a host, not the host "unix"
    ],
)
def test_dev_credentials_refused_off_loopback(bind: str) -> None:
    with pytest.raises(ConfigError, match="BROKER_CREDENTIALS is required") as info:
        Settings.from_env({"BROKER_BIND": bind})
    assert repr(bind) in str(info.value)
    assert "loopback" in str(info.value)


@pytest.mark.parametrize(
    "pairs",
    [
        f"{DEV_ACCESS_KEY_ID}:{DEV_SECRET_ACCESS_KEY}",
        f"AKIDONE:{GOOD_SECRET},{DEV_ACCESS_KEY_ID}:{GOOD_SECRET}",
        f"AKIDONE:{DEV_SECRET_ACCESS_KEY}",
    ],
)
def test_the_development_pair_named_explicitly_is_refused_off_loopback(pairs: str) -> None:
    with pytest.raises(ConfigError, match="development key pair .* works on loopback only"):
        Settings.from_env({"BROKER_BIND": "0.0.0.0:8000", "BROKER_CREDENTIALS": pairs})
    on_loopback = Settings.from_env({"BROKER_CREDENTIALS": pairs})
    assert on_loopback.loopback and on_loopback.credentials


def test_a_unix_socket_bind_needs_an_issuer_and_an_absolute_path() -> None:
    unix = {"BROKER_BIND": "unix:/run/broker.sock", "BROKER_CREDENTIALS": CREDS}
    with pytest.raises(ConfigError, match="is a unix socket: set BROKER_ISSUER"):
        Settings.from_env(unix)
    assert Settings.from_env({**unix, "BROKER_ISSUER": ISSUER}).issuer == ISSUER
    with pytest.raises(ConfigError, match="unix:/absolute/path"):
        Settings.from_env({**unix, "BROKER_BIND": "unix://run/broker.sock"})


def test_gunicorns_tcp_scheme_is_read_like_a_plain_bind() -> None:
    settings = Settings.from_env({"BROKER_BIND": "tcp://0.0.0.0:8000", "BROKER_CREDENTIALS": CREDS})
    assert (settings.bind, settings.loopback) == ("tcp://0.0.0.0:8000", False)
    assert settings.issuer == "http://0.0.0.0:8000"
    assert Settings.from_env({"BROKER_BIND": "tcp://127.0.0.1:8000"}).dev_credentials


def test_an_unbracketed_ipv6_bind_is_refused_with_the_bracketed_form() -> None:
    with pytest.raises(ConfigError, match=r"IPv6 host goes in brackets, e.g. \[::1\]:8000"):
        Settings.from_env({"BROKER_BIND": "::1:8000"})


def test_the_development_backend_door_stays_off_on_a_unix_socket() -> None:
    settings = Settings.from_env(
        {
            "BROKER_BIND": "unix:/run/broker.sock",
            "BROKER_CREDENTIALS": CREDS,
            "BROKER_ISSUER": ISSUER,
        }
    )
    assert settings.loopback is False
    assert settings.backend.development_key is False
    assert settings.backend.auth is None  # the door is off, not on the development key


def test_explicit_credentials_allow_any_address() -> None:
    settings = Settings.from_env({"BROKER_BIND": "0.0.0.0:8000", "BROKER_CREDENTIALS": CREDS})
    assert settings.dev_credentials is False
    assert dict(settings.credentials) == {"AKIDONE": GOOD_SECRET}
    assert DEV_ACCESS_KEY_ID not in settings.credentials


def test_several_credential_pairs_with_spaces() -> None:
    raw = f" AKIDONE:{GOOD_SECRET} , AKIDTWO:{GOOD_SECRET}x:with:colons "
    settings = Settings.from_env({"BROKER_CREDENTIALS": raw})
    assert dict(settings.credentials) == {
        "AKIDONE": GOOD_SECRET,
        "AKIDTWO": f"{GOOD_SECRET}x:with:colons",
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("AKIDONE", "comma-separated ACCESS_KEY_ID:SECRET pairs"),
        ("AKIDONE:", "comma-separated ACCESS_KEY_ID:SECRET pairs"),
        (f":{GOOD_SECRET}", "comma-separated ACCESS_KEY_ID:SECRET pairs"),
        (f"{CREDS},", "comma-separated ACCESS_KEY_ID:SECRET pairs"),
        (f"{CREDS},,AKIDTWO:{GOOD_SECRET}", "comma-separated ACCESS_KEY_ID:SECRET pairs"),
        (f"AKID-ONE:{GOOD_SECRET}", "access key id 'AKID-ONE' must be alphanumeric"),
        (f"AKID ONE:{GOOD_SECRET}", "access key id 'AKID ONE' must be alphanumeric"),
        ("AKIDONE:short", "the secret of AKIDONE is under 16 characters"),
        ("AKIDONE:" + "x" * 15, "the secret of AKIDONE is under 16 characters"),
    ],
)
def test_credential_parsing_errors(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        Settings.from_env({"BROKER_CREDENTIALS": raw})
    assert str(info.value).startswith("BROKER_CREDENTIALS")


def test_a_secret_of_16_characters_is_enough() -> None:
    secret = "x" * 16
    assert Settings.from_env({"BROKER_CREDENTIALS": f"AKIDONE:{secret}"}).credentials == {
        "AKIDONE": secret
    }


def test_credential_errors_never_echo_a_secret() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"BROKER_CREDENTIALS": "AKIDONE:tiny-secret"})
    assert "tiny-secret" not in str(info.value)


@pytest.mark.parametrize(
    "env",
    [{"BROKER_CREDENTIALS": f"AKIDONE:{GOOD_SECRET},AKIDTWO:second-secret-value-0123"}, {}],
    ids=["configured", "development-pair"],
)
def test_repr_shows_no_secret(env: dict[str, str]) -> None:
    """Settings may be logged or shown in a traceback: the secrets stay out of repr."""
    kek = "ab" * 32
    settings = Settings.from_env({**env, "BROKER_KEY_ENCRYPTION_KEY": kek})
    shown = repr(settings) + str(settings)
    secrets = [*settings.credentials.values(), kek]
    assert len(secrets) >= 2
    for secret in secrets:
        assert secret not in shown
    assert "(credentials=" not in shown and ", credentials=" not in shown


@pytest.mark.parametrize("bind", ["8000", "host:", ":8000", "host:http", "127.0.0.1"])
def test_bad_bind(bind: str) -> None:
    with pytest.raises(
        ConfigError, match=re.escape(f"BROKER_BIND must be HOST:PORT, got {bind!r}")
    ):
        Settings.from_env({"BROKER_BIND": bind})


@pytest.mark.parametrize("value", ["", "  "])
def test_credentials_set_but_empty_are_refused(value: str) -> None:
    """Not silently the development pair: an empty value is a mistake (a template's unset
    variable, say), and the message says what to do."""
    with pytest.raises(ConfigError, match="BROKER_CREDENTIALS is set but empty"):
        Settings.from_env({"BROKER_CREDENTIALS": value})
    assert Settings.from_env({}).dev_credentials is True  # unset: the development pair


def test_a_key_id_named_twice_is_refused() -> None:
    pairs = "AKIDONE:" + "a" * 20 + ",AKIDONE:" + "b" * 20
    with pytest.raises(ConfigError, match="names access key id AKIDONE twice"):
        Settings.from_env({"BROKER_CREDENTIALS": pairs})


@pytest.mark.parametrize(
    ("bind", "good"),
    [
        ("127.0.0.1:8000", True),
        ("[::1]:8000", True),
        ("unix:/run/broker.sock", True),
        ("127.0.0.1:0", False),
        ("127.0.0.1:65536", False),
        ("unix:", False),
    ],
)
def test_one_bind_rule_for_gunicorn_and_the_app(bind: str, good: bool) -> None:
    """config/gunicorn.conf.py binds ``Bind.from_env(...).address``; the settings read the
    same ``Bind``, so a value one accepts the other accepts (the port range included)."""
    environ = {"BROKER_BIND": bind, "BROKER_CREDENTIALS": CREDS, "BROKER_ISSUER": ISSUER}
    if good:
        assert Bind.from_env(environ).address == Settings.from_env(environ).bind == bind
        return
    for read in (Bind.from_env, Settings.from_env):
        with pytest.raises(ConfigError, match="BROKER_BIND must be HOST:PORT"):
            read(environ)


@pytest.mark.parametrize("region", ["eu-west-1", "us-gov-west-1", " ap-south-2 "])
def test_good_region(region: str) -> None:
    assert Settings.from_env({"BROKER_REGION": region}).region == region.strip()


@pytest.mark.parametrize("region", ["", " ", "us_east_1", "us east 1", "eu-west-1/x"])
def test_bad_region(region: str) -> None:
    expected = f"BROKER_REGION must look like us-east-1, got {region.strip()!r}"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        Settings.from_env({"BROKER_REGION": region})


def test_good_account_id() -> None:
    assert Settings.from_env({"BROKER_ACCOUNT_ID": "123456789012"}).account_id == "123456789012"


@pytest.mark.parametrize(
    "account", ["", "12345678901", "1234567890123", "12345678901a", "-12345678901"]
)
def test_bad_account_id(account: str) -> None:
    expected = f"BROKER_ACCOUNT_ID must be 12 digits, got {account!r}"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        Settings.from_env({"BROKER_ACCOUNT_ID": account})


@pytest.mark.parametrize(
    ("env", "issuer"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"BROKER_BIND": "localhost:9000"}, "http://localhost:9000"),
        ({"BROKER_ISSUER": "https://id.example.com/"}, "https://id.example.com"),
        ({"BROKER_ISSUER": "https://id.example.com/broker//"}, "https://id.example.com/broker"),
        ({"BROKER_ISSUER": "  "}, "http://127.0.0.1:8000"),
    ],
)
def test_issuer(env: dict[str, str], issuer: str) -> None:
    assert Settings.from_env(env).issuer == issuer


@pytest.mark.parametrize(
    "issuer",
    ["ftp://id.example.com", "id.example.com", "https://", "https://id.example.com/?a=1"],
)
def test_bad_issuer(issuer: str) -> None:
    expected = f"BROKER_ISSUER must be an http(s) URL without query, got {issuer.rstrip('/')!r}"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        Settings.from_env({"BROKER_ISSUER": issuer})


@pytest.mark.parametrize(
    "url", ["redis://10.0.0.1:6380/2", "rediss://:pw@cache.example:6379/0", "unix:///run/r.sock"]
)
def test_good_redis_url(url: str) -> None:
    assert Settings.from_env({"REDIS_URL": url}).redis_url == url


@pytest.mark.parametrize("url", ["", "http://127.0.0.1:6379", "127.0.0.1:6379", "localhost"])
def test_bad_redis_url(url: str) -> None:
    with pytest.raises(ConfigError, match=re.escape("REDIS_URL must start with redis://")):
        Settings.from_env({"REDIS_URL": url})


def test_signing_key_file() -> None:
    assert Settings.from_env({"BROKER_SIGNING_KEY_FILE": " "}).signing_key_file is None
    path = "/etc/broker/key.pem"
    assert Settings.from_env({"BROKER_SIGNING_KEY_FILE": path}).signing_key_file == path


@pytest.mark.parametrize(
    ("name", "attribute", "raw", "value"),
    [
        ("BROKER_MAX_BODY_BYTES", "max_body_bytes", "1024", 1024),
        ("BROKER_MAX_BODY_BYTES", "max_body_bytes", " 2048 ", 2048),
        ("BROKER_MAX_BODY_BYTES", "max_body_bytes", "", DEFAULT_MAX_BODY_BYTES),
        ("BROKER_MAX_POOLS", "max_pools", "1", 1),
        ("BROKER_MAX_POOLS", "max_pools", "50000", 50000),
        ("BROKER_REDIS_TIMEOUT", "redis_timeout", "0.25", 0.25),
        ("BROKER_REDIS_TIMEOUT", "redis_timeout", "60", 60.0),
        ("BROKER_REDIS_TIMEOUT", "redis_timeout", "", DEFAULT_REDIS_TIMEOUT),
    ],
)
def test_good_numbers(name: str, attribute: str, raw: str, value: float) -> None:
    assert getattr(Settings.from_env({name: raw}), attribute) == value


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("BROKER_MAX_BODY_BYTES", "1MB", "BROKER_MAX_BODY_BYTES must be a whole number, got '1MB'"),
        ("BROKER_MAX_BODY_BYTES", "1.5", "BROKER_MAX_BODY_BYTES must be a whole number, got '1.5'"),
        ("BROKER_MAX_BODY_BYTES", "1023", "BROKER_MAX_BODY_BYTES must be at least 1024, got 1023"),
        ("BROKER_MAX_BODY_BYTES", "-1", "BROKER_MAX_BODY_BYTES must be at least 1024, got -1"),
        ("BROKER_MAX_POOLS", "0", "BROKER_MAX_POOLS must be at least 1, got 0"),
        ("BROKER_MAX_POOLS", "many", "BROKER_MAX_POOLS must be a whole number, got 'many'"),
        (
            "BROKER_REDIS_TIMEOUT",
            "1s",
            "BROKER_REDIS_TIMEOUT must be a number of seconds, got '1s'",
        ),
        ("BROKER_REDIS_TIMEOUT", "0", "BROKER_REDIS_TIMEOUT must be between 0 and 60 seconds"),
        ("BROKER_REDIS_TIMEOUT", "-1", "BROKER_REDIS_TIMEOUT must be between 0 and 60 seconds"),
        ("BROKER_REDIS_TIMEOUT", "60.5", "BROKER_REDIS_TIMEOUT must be between 0 and 60 seconds"),
        ("BROKER_REDIS_TIMEOUT", "nan", "BROKER_REDIS_TIMEOUT must be between 0 and 60 seconds"),
        ("BROKER_REDIS_TIMEOUT", "inf", "BROKER_REDIS_TIMEOUT must be between 0 and 60 seconds"),
    ],
)
def test_bad_numbers(name: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env({name: raw})
