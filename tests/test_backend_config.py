"""BROKER_BACKEND_*: defaults, each translator's settings, and every fail-fast message."""

from __future__ import annotations

import pytest

from broker.awsjson import schemas
from config import backend, backend_cookie, backend_jwt
from config.backend import BackendSettings
from config.settings import ConfigError, Settings

POOL = {"BROKER_BACKEND_POOL_ID": "us-east-1:00000000-0000-4000-8000-000000000000"}
SECRET = "s" * 32
JWT = {
    "BROKER_BACKEND_AUTH": "jwt",
    "BROKER_BACKEND_JWT_HS_SECRET": SECRET,
    "BROKER_BACKEND_JWT_ISSUER": "https://issuer",
    "BROKER_BACKEND_JWT_AUDIENCE": "aud",
    **POOL,
}
KEY = "k" * 32


def test_off_by_default_and_the_broker_still_configures() -> None:
    """Off loopback; on loopback the default is the development door
    (tests/test_development_door.py)."""
    settings = Settings.from_env(
        {"BROKER_BIND": "0.0.0.0:8000", "BROKER_CREDENTIALS": "AKIDOWNKEY0001:" + "s" * 40}
    )
    assert settings.backend == BackendSettings()
    assert settings.backend.auth is None
    assert settings.backend.cache_min_remaining == 0.5


def test_jwt_defaults() -> None:
    jwt = BackendSettings.from_env(JWT).jwt
    assert jwt is not None
    assert jwt.algorithms == ("HS256",)
    assert (jwt.leeway, jwt.user_claim, dict(jwt.tag_claims)) == (30, "sub", {})
    assert (jwt.jwks_timeout, jwt.jwks_cache_seconds, jwt.jwks_min_refetch_seconds) == (
        3.0,
        300,
        10,
    )


def test_public_key_and_jwks_default_to_rs256() -> None:
    for source in (
        {"BROKER_BACKEND_JWT_PUBLIC_KEY_FILE": "/k.pem"},
        {"BROKER_BACKEND_JWT_JWKS_URL": "https://x/jwks"},
    ):
        env = {k: v for k, v in JWT.items() if k != "BROKER_BACKEND_JWT_HS_SECRET"} | source
        jwt = BackendSettings.from_env(env).jwt
        assert jwt is not None and jwt.algorithms == ("RS256",)


def jwks_env(url: str) -> dict[str, str]:
    return {k: v for k, v in JWT.items() if k != "BROKER_BACKEND_JWT_HS_SECRET"} | {
        "BROKER_BACKEND_JWT_JWKS_URL": url
    }


@pytest.mark.parametrize(
    "url",
    [
        "https://idp.example/jwks",
        "http://127.0.0.1:8080/jwks.json",
        "http://127.8.9.10/jwks.json",
        "http://[::1]:8080/jwks.json",
        "http://localhost:8080/jwks.json",
        "http://LOCALHOST/jwks.json",
    ],
)
def test_a_jwks_url_is_https_or_loopback_http(url: str) -> None:
    jwt = BackendSettings.from_env(jwks_env(url)).jwt
    assert jwt is not None and jwt.jwks_url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://idp.example/jwks",
        "http://10.0.0.1/jwks",
        "http://0.0.0.0/jwks",
        "http://localhost.idp.example/jwks",
        "http://127.0.0.1.nip.io/jwks",
        "http://[::ffff:10.0.0.1]/jwks",
        "https:///jwks",
        "https://[::1/jwks",
        "file:///etc/jwks.json",
    ],
)
def test_a_jwks_url_over_plain_http_to_another_host_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match=r"must be an https URL") as info:
        BackendSettings.from_env(jwks_env(url))
    assert str(info.value).startswith("BROKER_BACKEND_JWT_JWKS_URL")


def test_cookie_defaults_follow_flask() -> None:
    cookie = BackendSettings.from_env(
        {"BROKER_BACKEND_AUTH": "cookie", "BROKER_BACKEND_COOKIE_SECRET": "x" * 16, **POOL}
    ).cookie
    assert cookie is not None
    assert (cookie.salt, cookie.name, cookie.user_key) == ("cookie-session", "session", "user_id")
    assert cookie.max_age == 31 * 24 * 3600


def test_tag_maps_and_api_keys_parse() -> None:
    settings = BackendSettings.from_env(
        {
            **JWT,
            "BROKER_BACKEND_JWT_TAG_CLAIMS": " org:tenant , groups:team ",
            "BROKER_BACKEND_JWT_ALGORITHMS": "HS512, HS256",
        }
    )
    assert settings.jwt is not None
    assert dict(settings.jwt.tag_claims) == {"org": "tenant", "groups": "team"}
    assert settings.jwt.algorithms == ("HS512", "HS256")
    keys = BackendSettings.from_env(
        {"BROKER_BACKEND_AUTH": "api_key", "BROKER_BACKEND_API_KEYS": f"{KEY},{KEY}2", **POOL}
    )
    assert keys.api_keys == (KEY, KEY + "2")


def test_secrets_stay_out_of_repr() -> None:
    text = repr(BackendSettings.from_env(JWT)) + repr(
        BackendSettings.from_env(
            {"BROKER_BACKEND_AUTH": "api_key", "BROKER_BACKEND_API_KEYS": KEY, **POOL}
        )
    )
    assert SECRET not in text and KEY not in text


def test_named_pool() -> None:
    settings = BackendSettings.from_env(
        {
            "BROKER_BACKEND_AUTH": "api_key",
            "BROKER_BACKEND_API_KEYS": "a" * 40,
            "BROKER_BACKEND_POOL_NAME": "My backend pool",
            "BROKER_BACKEND_DEVELOPER_PROVIDER": "login.my.app",
        }
    )
    assert (settings.pool_id, settings.pool_name, settings.developer_provider) == (
        None,
        "My backend pool",
        "login.my.app",
    )


def test_patterns_are_the_service_models() -> None:
    assert backend.POOL_ID_PATTERN == schemas.POOL_ID_PATTERN
    assert backend.MAX_POOL_ID_LENGTH == schemas.MAX_ID_LENGTH
    assert backend.POOL_NAME_PATTERN == schemas.POOL_NAME_PATTERN
    assert backend.MAX_POOL_NAME_LENGTH == schemas.MAX_POOL_NAME_LENGTH
    assert backend.PROVIDER_PATTERN == schemas.DEVELOPER_PROVIDER_NAME_PATTERN
    assert backend.MAX_PROVIDER_LENGTH == schemas.MAX_PROVIDER_NAME_LENGTH
    assert (
        backend_jwt.MAX_TAG_KEY_LENGTH
        == backend_cookie.MAX_TAG_KEY_LENGTH
        == schemas.MAX_TAG_KEY_LENGTH
    )


def _without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in names}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"BROKER_BACKEND_AUTH": "oauth"},
            "BROKER_BACKEND_AUTH must be one of jwt, cookie, api_key",
        ),
        ({"BROKER_BACKEND_AUTH": "api_key", "BROKER_BACKEND_API_KEYS": KEY}, "no pool is"),
        (
            {"BROKER_BACKEND_JWT_HS_SECRET": SECRET},
            "BROKER_BACKEND_JWT_HS_SECRET is set but BROKER_BACKEND_AUTH is not 'jwt'",
        ),
        (
            {**JWT, "BROKER_BACKEND_API_KEYS": KEY},
            "BROKER_BACKEND_API_KEYS is set but BROKER_BACKEND_AUTH is not 'api_key'",
        ),
        ({**POOL, "BROKER_BACKEND_POOL_NAME": "x"}, "BROKER_BACKEND_POOL_ID excludes"),
        ({"BROKER_BACKEND_POOL_ID": "not-a-pool"}, "BROKER_BACKEND_POOL_ID must look like"),
        ({"BROKER_BACKEND_POOL_NAME": "x"}, "go together"),
        (
            {"BROKER_BACKEND_POOL_NAME": "bad/name", "BROKER_BACKEND_DEVELOPER_PROVIDER": "p"},
            "BROKER_BACKEND_POOL_NAME must match",
        ),
        (
            {"BROKER_BACKEND_POOL_NAME": "n", "BROKER_BACKEND_DEVELOPER_PROVIDER": "bad provider"},
            "BROKER_BACKEND_DEVELOPER_PROVIDER must match",
        ),
        (_without(JWT, "BROKER_BACKEND_JWT_HS_SECRET"), "exactly one of"),
        ({**JWT, "BROKER_BACKEND_JWT_JWKS_URL": "https://x"}, "exactly one of"),
        ({**JWT, "BROKER_BACKEND_JWT_HS_SECRET": "short"}, "at least 32 bytes"),
        (
            {**JWT, "BROKER_BACKEND_JWT_HS_SECRET": "-----BEGIN PUBLIC KEY-----" + "A" * 40},
            "looks like a PEM key",
        ),
        (_without(JWT, "BROKER_BACKEND_JWT_ISSUER"), "BROKER_BACKEND_JWT_ISSUER is required"),
        (_without(JWT, "BROKER_BACKEND_JWT_AUDIENCE"), "BROKER_BACKEND_JWT_AUDIENCE is required"),
        ({**JWT, "BROKER_BACKEND_JWT_ALGORITHMS": "none"}, "'none' is never accepted"),
        ({**JWT, "BROKER_BACKEND_JWT_ALGORITHMS": "HS256,None"}, "'none' is never accepted"),
        ({**JWT, "BROKER_BACKEND_JWT_ALGORITHMS": "RS256"}, "does not fit the configured key"),
        ({**JWT, "BROKER_BACKEND_JWT_ALGORITHMS": "HS999"}, "unknown JWS algorithm"),
        ({**JWT, "BROKER_BACKEND_JWT_ALGORITHMS": " , "}, "at least one algorithm"),
        (
            {
                **_without(JWT, "BROKER_BACKEND_JWT_HS_SECRET"),
                "BROKER_BACKEND_JWT_JWKS_URL": "https://x",
                "BROKER_BACKEND_JWT_ALGORITHMS": "HS256",
            },
            "does not fit the configured key",
        ),
        (
            {
                **_without(JWT, "BROKER_BACKEND_JWT_HS_SECRET"),
                "BROKER_BACKEND_JWT_JWKS_URL": "ftp://x",
            },
            "must be an https URL",
        ),
        ({**JWT, "BROKER_BACKEND_JWT_LEEWAY": "301"}, "between 0 and 300"),
        ({**JWT, "BROKER_BACKEND_JWT_LEEWAY": "soon"}, "whole number"),
        ({**JWT, "BROKER_BACKEND_JWT_TAG_CLAIMS": "org"}, "SOURCE:TAG pairs"),
        ({**JWT, "BROKER_BACKEND_JWT_TAG_CLAIMS": "a:t,b:t"}, "named twice"),
        ({**JWT, "BROKER_BACKEND_JWT_TAG_CLAIMS": "a:" + "t" * 129}, "over 128 characters"),
        ({**JWT, "BROKER_BACKEND_JWT_JWKS_TIMEOUT": "0"}, "between 0 and 60 seconds"),
        ({"BROKER_BACKEND_AUTH": "cookie", **POOL}, "BROKER_BACKEND_COOKIE_SECRET is required"),
        (
            {"BROKER_BACKEND_AUTH": "cookie", "BROKER_BACKEND_COOKIE_SECRET": "short", **POOL},
            "at least 16 characters",
        ),
        (
            {
                "BROKER_BACKEND_AUTH": "cookie",
                "BROKER_BACKEND_COOKIE_SECRET": "x" * 16,
                "BROKER_BACKEND_COOKIE_MAX_AGE": "0",
                **POOL,
            },
            "between 1",
        ),
        ({"BROKER_BACKEND_AUTH": "api_key", **POOL}, "needs BROKER_BACKEND_API_KEYS"),
        (
            {"BROKER_BACKEND_AUTH": "api_key", "BROKER_BACKEND_API_KEYS": "short", **POOL},
            "key #1 must be at least 32",
        ),
        (
            {
                "BROKER_BACKEND_AUTH": "api_key",
                "BROKER_BACKEND_API_KEYS": f"{KEY}, with space {KEY}",
                **POOL,
            },
            "key #2",
        ),
        ({"BROKER_BACKEND_CACHE_MIN_REMAINING": "0"}, "above 0 and at most 1"),
        ({"BROKER_BACKEND_CACHE_MIN_REMAINING": "1.5"}, "above 0 and at most 1"),
        ({"BROKER_BACKEND_CACHE_MIN_REMAINING": "half"}, "a fraction"),
    ],
)
def test_bad_values_fail_fast_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert message in str(info.value)
    for secret in (SECRET, KEY):
        assert secret not in str(info.value)


def test_a_public_key_file_that_does_not_fit_stops_the_app(tmp_path: object) -> None:
    """Key files are read when the app is built (Settings.from_env stays pure)."""
    from pathlib import Path

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from broker.app.factory import create_app

    path = Path(str(tmp_path)) / "ec.pem"
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    env = {
        **_without(JWT, "BROKER_BACKEND_JWT_HS_SECRET"),
        "BROKER_BACKEND_JWT_PUBLIC_KEY_FILE": str(path),
    }
    with pytest.raises(ConfigError, match="RS256 cannot be verified with the EC key"):
        create_app(Settings.from_env(env))
    settings = Settings.from_env({**env, "BROKER_BACKEND_JWT_ALGORITHMS": "ES256"})
    create_app(settings)  # fits
    with pytest.raises(ConfigError, match="cannot read"):
        create_app(
            Settings.from_env({**env, "BROKER_BACKEND_JWT_PUBLIC_KEY_FILE": str(path) + ".missing"})
        )
