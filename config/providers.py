"""Settings of the public-provider login verifier (``broker.providers``).

``BROKER_OIDC_PROVIDERS``: a JSON object naming the OpenID Connect providers this broker
can verify, each under its AWS name (the issuer URL without ``https://``, which is also the
Logins key and the last part of the IAM OIDC provider ARN a pool lists):
``{"login.example.com": {"client_ids": ["app"], "issuer": "...", "jwks_uri": "..."}}``.
``issuer`` defaults to ``https://<name>``; without ``jwks_uri`` the keys come from the
issuer's discovery document. An entry named ``accounts.google.com`` or ``appleid.apple.com``
overrides that provider's issuer and JWKS (a test issuer, a proxy); its ``client_ids`` may
be left out and are ignored: the audience is always the app id the pool maps the provider
to (``SupportedLoginProviders``), as AWS does.

``BROKER_COGNITO_IDP_ENDPOINT``: where the JWKS of Cognito user pools is fetched from
(``<endpoint>/<userPoolId>/.well-known/jwks.json``), by default the AWS endpoint of the
region the provider name holds; the tokens' issuer stays the AWS form whatever it says.

Every URL here carries keys that decide who a user is, so it is https, or http to a
loopback host only (a provider on the same machine, or tests), where nobody sits between.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from config.backend_jwt import LOOPBACK_NAMES
from config.env import BETWEEN_0_AND_60_SECONDS, is_loopback, read_float, read_int, text
from config.errors import ConfigError

OIDC_VAR: Final = "BROKER_OIDC_PROVIDERS"
ENDPOINT_VAR: Final = "BROKER_COGNITO_IDP_ENDPOINT"
#: Supported login providers verified as OpenID Connect providers (their AWS names).
OIDC_LOGIN_PROVIDERS: Final = ("accounts.google.com", "appleid.apple.com")
ENTRY_MEMBERS: Final = frozenset({"client_ids", "issuer", "jwks_uri"})
DEFAULT_JWKS_TIMEOUT: Final = 5.0
DEFAULT_JWKS_TTL: Final = 3600
DEFAULT_JWKS_MIN_REFETCH: Final = 10
HTTPS_RULE: Final = (
    "an https URL without query (http only for a loopback host: 127.0.0.0/8, ::1, localhost)"
)


@dataclass(frozen=True)
class OidcProvider:
    """One entry of ``BROKER_OIDC_PROVIDERS``."""

    name: str
    issuer: str
    client_ids: tuple[str, ...] = ()
    #: None: read from ``<issuer>/.well-known/openid-configuration``.
    jwks_uri: str | None = None


@dataclass(frozen=True)
class ProviderSettings:
    oidc: Mapping[str, OidcProvider] = field(default_factory=dict)
    cognito_idp_endpoint: str | None = None
    #: Seconds one JWKS or discovery fetch may take in all (``BROKER_PROVIDER_JWKS_TIMEOUT``).
    jwks_timeout: float = DEFAULT_JWKS_TIMEOUT
    #: Seconds a fetched JWKS is kept before it is fetched again (``BROKER_PROVIDER_JWKS_TTL``).
    jwks_ttl: int = DEFAULT_JWKS_TTL
    #: At most one fetch per JWKS in this many seconds, unknown kids or failures
    #: notwithstanding (``BROKER_PROVIDER_JWKS_MIN_REFETCH``).
    jwks_min_refetch: int = DEFAULT_JWKS_MIN_REFETCH

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ProviderSettings:
        endpoint = text(environ, ENDPOINT_VAR).rstrip("/") or None
        if endpoint is not None and not fetchable(endpoint):
            raise ConfigError(f"{ENDPOINT_VAR} must be {HTTPS_RULE}, got {endpoint!r}")
        return cls(
            oidc=_oidc(text(environ, OIDC_VAR)),
            cognito_idp_endpoint=endpoint,
            jwks_timeout=read_float(
                environ,
                "BROKER_PROVIDER_JWKS_TIMEOUT",
                DEFAULT_JWKS_TIMEOUT,
                high=60,
                bounds=BETWEEN_0_AND_60_SECONDS,
            ),
            jwks_ttl=read_int(
                environ, "BROKER_PROVIDER_JWKS_TTL", DEFAULT_JWKS_TTL, low=1, high=86400
            ),
            jwks_min_refetch=read_int(
                environ,
                "BROKER_PROVIDER_JWKS_MIN_REFETCH",
                DEFAULT_JWKS_MIN_REFETCH,
                low=0,
                high=3600,
            ),
        )


def fetchable(url: str) -> bool:
    """May keys (or the document naming them) be fetched from ``url``? https, or http to a
    loopback host; a host, no credentials, no query or fragment. Also used at run time on
    the ``jwks_uri`` a discovery document names."""
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # an unbalanced IPv6 bracket, a port out of range
        return False
    if not port_ok or parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if "@" in parts.netloc or parts.query or parts.fragment:
        return False
    return parts.scheme == "https" or is_loopback(parts.hostname.lower(), LOOPBACK_NAMES)


def _oidc(raw: str) -> dict[str, OidcProvider]:
    if not raw:
        return {}
    try:
        document = json.loads(raw)
    except ValueError:
        raise ConfigError(f"{OIDC_VAR} must be a JSON object (it is not JSON)") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{OIDC_VAR} must be a JSON object of provider name -> settings")
    return {name: _entry(name, value) for name, value in document.items()}


def _entry(name: str, value: Any) -> OidcProvider:
    where = f"{OIDC_VAR} entry {name!r}"
    if not name or name.startswith(("http://", "https://")) or name != name.strip():
        raise ConfigError(f"{where}: name the provider as AWS does, its issuer without https://")
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a JSON object")
    unknown = sorted(set(value) - ENTRY_MEMBERS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown member {unknown[0]!r} (known: client_ids, issuer, jwks_uri)"
        )
    client_ids = value.get("client_ids")
    if client_ids is None and name in OIDC_LOGIN_PROVIDERS:
        client_ids = []  # the pool's app id is the audience of these
    if not (
        isinstance(client_ids, list)
        and (client_ids or name in OIDC_LOGIN_PROVIDERS)
        and all(isinstance(c, str) and c.strip() for c in client_ids)
    ):
        raise ConfigError(f"{where}: client_ids must be a non-empty list of client id strings")
    issuer = value.get("issuer", f"https://{name}")
    jwks_uri = value.get("jwks_uri")
    for member, url in (("issuer", issuer), ("jwks_uri", jwks_uri)):
        if url is not None and not (isinstance(url, str) and fetchable(url)):
            raise ConfigError(f"{where}: {member} must be {HTTPS_RULE}, got {url!r}")
    return OidcProvider(
        name=name,
        issuer=issuer,
        client_ids=tuple(c.strip() for c in client_ids),
        jwks_uri=jwks_uri,
    )
