"""Settings built once from the environment by one pure function.

``Settings.from_env(environ)`` reads nothing else and fails fast with a
:class:`ConfigError` naming the variable and what is wrong with it. Nothing here reads the
environment at import time, and there are no default secrets: the only built-in credential
is the documented development key pair, accepted only while the service listens on loopback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from config.backend import DEV_API_KEY, BackendSettings
from config.env import read_int
from config.errors import ConfigError as ConfigError  # re-exported: callers import it here
from config.keys import KeySettings
from config.limits import RateLimitSettings
from config.providers import ProviderSettings
from config.redis import DEFAULT_REDIS_TIMEOUT as DEFAULT_REDIS_TIMEOUT
from config.redis import DEFAULT_REDIS_URL as DEFAULT_REDIS_URL
from config.redis import RedisSettings
from config.server import DEFAULT_BIND as DEFAULT_BIND
from config.server import Bind
from config.sts import StsSettings
from config.upstream import UpstreamSettings

DEV_ACCESS_KEY_ID = "AKIDBROKERDEV"
DEV_SECRET_ACCESS_KEY = "broker-development-secret-loopback-only"  # noqa: S105 - documented dev key

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "000000000000"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_POOLS = 1000


@dataclass(frozen=True)
class Settings:
    #: Which Redis, its timeout and its durability; see ``config/redis.py``.
    redis: RedisSettings = field(default_factory=RedisSettings)
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    issuer: str = "http://" + DEFAULT_BIND
    #: False when BROKER_ISSUER was left to its default (derived from BROKER_BIND).
    issuer_configured: bool = False
    signing_key_file: str | None = None
    bind: str = DEFAULT_BIND
    bind_host: str = "127.0.0.1"  # BROKER_BIND's host ("unix" for a unix socket)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_pools: int = DEFAULT_MAX_POOLS
    dev_credentials: bool = False
    #: The backend front door (``POST /v1/token``); see ``config/backend.py``.
    backend: BackendSettings = field(default_factory=BackendSettings)
    #: Signing keys: encryption at rest, refresh, retention; see ``config/keys.py``.
    keys: KeySettings = field(default_factory=KeySettings)
    #: Optional rate limits; see ``config/limits.py``.
    limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    #: Upstream mode (tokens from a real Cognito pool); see ``config/upstream.py``.
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    #: Public-provider logins (OpenID Connect, Cognito user pools); see ``config/providers.py``.
    providers: ProviderSettings = field(default_factory=ProviderSettings)
    #: GetCredentialsForIdentity's STS endpoint and deadline; see ``config/sts.py``.
    sts: StsSettings = field(default_factory=StsSettings)

    def warnings(self) -> list[str]:
        """What an operator must hear at start: a default that holds on loopback only, or
        an issuer left to its default where several brokers may serve. Logged once by
        gunicorn's master (config/gunicorn.conf.py), or by ``create_app`` elsewhere."""
        found = []
        if not self.issuer_configured and not self.loopback:
            found.append(
                f"BROKER_ISSUER is not set: tokens name {self.issuer} as their issuer, derived "
                "from BROKER_BIND. Behind a load balancer every broker must name the same "
                "issuer (the URL clients and verifiers reach): set BROKER_ISSUER to it on all "
                "of them."
            )
        if self.backend.development_key:
            pool = self.backend.pool_id or repr(self.backend.pool_name)
            provider = self.backend.developer_provider or "its own"
            found.append(
                "BROKER_BACKEND_AUTH is not set: the backend door accepts only the documented "
                f"development key (X-Api-Key: {DEV_API_KEY}) on pool {pool}, provider "
                f"{provider}, because the service listens on loopback ({self.bind}). Set "
                "BROKER_BACKEND_AUTH for anything but local use."
            )
        if self.dev_credentials:
            found.append(
                "BROKER_CREDENTIALS is not set: accepting only the documented development key "
                f"pair ({DEV_ACCESS_KEY_ID}), because the service listens on loopback "
                f"({self.bind}). Set BROKER_CREDENTIALS for anything but local use."
            )
        return found

    @property
    def loopback(self) -> bool:
        """Does the service listen on loopback only (BROKER_BIND)?"""
        return Bind(self.bind, self.bind_host).loopback

    @property
    def redis_url(self) -> str:
        """The standalone server's URL (``REDIS_URL``); ``redis`` names the topology."""
        return self.redis.url

    @property
    def redis_timeout(self) -> float:
        return self.redis.timeout

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build and check the settings; raise ConfigError on the first bad value."""
        listen = Bind.from_env(environ)
        bind = listen.address
        creds_raw = environ.get("BROKER_CREDENTIALS")
        if creds_raw is not None and not creds_raw.strip():
            raise ConfigError(
                "BROKER_CREDENTIALS is set but empty: name ACCESS_KEY_ID:SECRET pairs, or "
                "unset it to accept the development key pair on loopback"
            )
        credentials = _parse_credentials(creds_raw.strip()) if creds_raw else {}
        dev = not credentials
        if dev:
            if not listen.loopback:
                raise ConfigError(
                    "BROKER_CREDENTIALS is required when BROKER_BIND is not a loopback address "
                    f"(BROKER_BIND={bind!r}); the development key pair works on loopback only"
                )
            credentials = {DEV_ACCESS_KEY_ID: DEV_SECRET_ACCESS_KEY}
        elif not listen.loopback and (
            DEV_ACCESS_KEY_ID in credentials or DEV_SECRET_ACCESS_KEY in credentials.values()
        ):
            raise ConfigError(
                f"BROKER_CREDENTIALS names the documented development key pair "
                f"({DEV_ACCESS_KEY_ID}), which works on loopback only: set your own pair when "
                f"BROKER_BIND is not a loopback address (BROKER_BIND={bind!r})"
            )
        region = environ.get("BROKER_REGION", DEFAULT_REGION).strip()
        if not region or not all(c.isalnum() or c == "-" for c in region):
            raise ConfigError(f"BROKER_REGION must look like us-east-1, got {region!r}")
        account = environ.get("BROKER_ACCOUNT_ID", DEFAULT_ACCOUNT_ID).strip()
        if not (account.isdigit() and len(account) == 12):
            raise ConfigError(f"BROKER_ACCOUNT_ID must be 12 digits, got {account!r}")
        if listen.unix and not environ.get("BROKER_ISSUER", "").strip():
            raise ConfigError(
                f"BROKER_BIND={bind!r} is a unix socket: set BROKER_ISSUER to the https URL "
                "clients and verifiers reach the broker at (the proxy's); no issuer can be "
                "derived from a socket path"
            )
        issuer = (
            environ.get("BROKER_ISSUER", "").strip().rstrip("/")
            or f"http://{bind.removeprefix('tcp://')}"
        )
        parts = urlsplit(issuer)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ConfigError(f"BROKER_ISSUER must be an http(s) URL without query, got {issuer!r}")
        key_file = environ.get("BROKER_SIGNING_KEY_FILE", "").strip() or None
        upstream = UpstreamSettings.from_env(environ)
        return cls(
            redis=RedisSettings.from_env(environ),
            credentials=credentials,
            region=region,
            account_id=account,
            issuer=issuer,
            issuer_configured=bool(environ.get("BROKER_ISSUER", "").strip()),
            signing_key_file=key_file,
            bind=bind,
            bind_host=listen.host,
            max_body_bytes=read_int(
                environ, "BROKER_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, low=1024
            ),
            max_pools=read_int(environ, "BROKER_MAX_POOLS", DEFAULT_MAX_POOLS, low=1),
            dev_credentials=dev,
            backend=BackendSettings.from_env(
                upstream.door_environ(environ), loopback=listen.loopback
            ),
            keys=KeySettings.from_env(environ),
            limits=RateLimitSettings.from_env(environ),
            upstream=upstream,
            providers=ProviderSettings.from_env(environ),
            sts=StsSettings.from_env(environ, region=region),
        )


def _parse_credentials(raw: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in raw.split(","):
        key_id, sep, secret = item.strip().partition(":")
        if not sep or not key_id or not secret:
            raise ConfigError(
                "BROKER_CREDENTIALS must be comma-separated ACCESS_KEY_ID:SECRET pairs "
                "(one entry has no ':' or an empty part)"
            )
        if not key_id.isalnum():
            raise ConfigError(f"BROKER_CREDENTIALS: access key id {key_id!r} must be alphanumeric")
        if len(secret) < 16:
            raise ConfigError(f"BROKER_CREDENTIALS: the secret of {key_id} is under 16 characters")
        if key_id in pairs:
            raise ConfigError(
                f"BROKER_CREDENTIALS names access key id {key_id} twice: give each key id "
                "one secret"
            )
        pairs[key_id] = secret
    return pairs
