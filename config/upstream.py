"""Settings of upstream mode (``BROKER_UPSTREAM=aws``), read by ``Settings.from_env``.

Why a module of its own: in upstream mode the backend door (``POST /v1/token``) gets its
identities and tokens from a real Cognito identity pool (GetOpenIdTokenForDeveloperIdentity
with boto3) instead of the local store, and the variables that shape those calls (the pool,
the region, time budgets, the quota and the circuit breaker) belong together. Like the rest
of ``config/``, ``UpstreamSettings.from_env`` is pure and fails fast with a
:class:`ConfigError` naming the variable. AWS credentials are NOT settings of the broker:
boto3's standard chain finds them (environment, shared profile, container or instance role).

When ``BROKER_UPSTREAM`` is unset (or ``off``) the mode is off, and any other
``BROKER_UPSTREAM_*`` variable is refused so that a typo in the mode cannot go unnoticed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from config.aws_model import DEVELOPER_PROVIDER_NAME_PATTERN as PROVIDER_PATTERN
from config.aws_model import MAX_ID_LENGTH as MAX_POOL_ID_LENGTH
from config.aws_model import MAX_PROVIDER_NAME_LENGTH as MAX_PROVIDER_LENGTH
from config.aws_model import POOL_ID_PATTERN  # the service model's (constraints.md)
from config.env import matches, read_choice, read_float, read_int, required, text
from config.errors import ConfigError

MODES: Final = ("aws",)
WITH_UPSTREAM: Final = " with BROKER_UPSTREAM=aws"  # in "... is required with ..."

REGION_PATTERN: Final = r"[a-z]{2}(-[a-z]+)+-\d+"

DEFAULT_DEADLINE: Final = 3.0
DEFAULT_CONNECT_TIMEOUT: Final = 0.5
DEFAULT_READ_TIMEOUT: Final = 1.5
#: AWS's default quota for GetOpenIdTokenForDeveloperIdentity is 50 calls/s per account
#: (contract section 8); the default leaves headroom for the account's other callers.
DEFAULT_MAX_RATE: Final = 45
MAX_RATE: Final = 10_000
DEFAULT_BREAKER_FAILURES: Final = 5
MAX_BREAKER_FAILURES: Final = 1000
DEFAULT_BREAKER_COOLDOWN: Final = 5.0
MAX_BREAKER_COOLDOWN: Final = 300.0
MAX_SECONDS: Final = 60.0

#: Variables of this mode, refused while the mode is off.
VARIABLES: Final = (
    "BROKER_UPSTREAM_POOL_ID",
    "BROKER_UPSTREAM_DEVELOPER_PROVIDER",
    "BROKER_UPSTREAM_REGION",
    "BROKER_UPSTREAM_ENDPOINT_URL",
    "BROKER_UPSTREAM_DEADLINE",
    "BROKER_UPSTREAM_CONNECT_TIMEOUT",
    "BROKER_UPSTREAM_READ_TIMEOUT",
    "BROKER_UPSTREAM_MAX_RATE",
    "BROKER_UPSTREAM_BREAKER_FAILURES",
    "BROKER_UPSTREAM_BREAKER_COOLDOWN",
)
#: The backend door's own pool variables, which upstream mode replaces.
LOCAL_POOL_VARIABLES: Final = (
    "BROKER_BACKEND_POOL_ID",
    "BROKER_BACKEND_POOL_NAME",
    "BROKER_BACKEND_DEVELOPER_PROVIDER",
)


@dataclass(frozen=True)
class UpstreamSettings:
    mode: str | None = None  # None: tokens are signed here (local mode)
    pool_id: str = ""
    developer_provider: str = ""
    region: str = ""
    endpoint_url: str | None = None  # None: boto3's own endpoint for the region
    deadline: float = DEFAULT_DEADLINE
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_rate: int = DEFAULT_MAX_RATE
    breaker_failures: int = DEFAULT_BREAKER_FAILURES
    breaker_cooldown: float = DEFAULT_BREAKER_COOLDOWN

    @property
    def enabled(self) -> bool:
        return self.mode is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> UpstreamSettings:
        mode = read_choice(
            environ,
            "BROKER_UPSTREAM",
            (*MODES, "off"),
            "off",
            "{name} must be aws or off, got {raw!r}",
        )
        if mode == "off":
            stray = [name for name in VARIABLES if text(environ, name)]
            if stray:
                raise ConfigError(
                    f"{stray[0]} is set but BROKER_UPSTREAM is not; "
                    "set BROKER_UPSTREAM=aws or unset it"
                )
            return cls()
        pool_id = required(
            environ, "BROKER_UPSTREAM_POOL_ID", "the Cognito identity pool id", WITH_UPSTREAM
        )
        if not matches(POOL_ID_PATTERN, pool_id, MAX_POOL_ID_LENGTH):
            raise ConfigError(
                f"BROKER_UPSTREAM_POOL_ID must look like us-east-1:<uuid>, got {pool_id!r}"
            )
        provider = required(
            environ,
            "BROKER_UPSTREAM_DEVELOPER_PROVIDER",
            "the pool's DeveloperProviderName",
            WITH_UPSTREAM,
        )
        if not matches(PROVIDER_PATTERN, provider, MAX_PROVIDER_LENGTH):
            raise ConfigError(
                f"BROKER_UPSTREAM_DEVELOPER_PROVIDER must match {PROVIDER_PATTERN} "
                f"(1..{MAX_PROVIDER_LENGTH} characters), got {provider!r}"
            )
        pool_region = pool_id.partition(":")[0]
        region = text(environ, "BROKER_UPSTREAM_REGION") or pool_region
        if re.fullmatch(REGION_PATTERN, region) is None:
            raise ConfigError(f"BROKER_UPSTREAM_REGION must look like us-east-1, got {region!r}")
        if region != pool_region:
            raise ConfigError(
                f"BROKER_UPSTREAM_REGION is {region!r} but BROKER_UPSTREAM_POOL_ID is a pool "
                f"of {pool_region!r} (a pool id starts with its region)"
            )
        endpoint = text(environ, "BROKER_UPSTREAM_ENDPOINT_URL") or None
        if endpoint is not None:
            parts = urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
                raise ConfigError(
                    f"BROKER_UPSTREAM_ENDPOINT_URL must be an http(s) URL, got {endpoint!r}"
                )
        deadline = _seconds(environ, "BROKER_UPSTREAM_DEADLINE", DEFAULT_DEADLINE)
        connect = _seconds(environ, "BROKER_UPSTREAM_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT)
        read = _seconds(environ, "BROKER_UPSTREAM_READ_TIMEOUT", DEFAULT_READ_TIMEOUT)
        if connect + read > deadline:
            raise ConfigError(
                "BROKER_UPSTREAM_CONNECT_TIMEOUT plus BROKER_UPSTREAM_READ_TIMEOUT "
                f"({connect + read:g} s) must fit in BROKER_UPSTREAM_DEADLINE ({deadline:g} s)"
            )
        return cls(
            mode=mode,
            pool_id=pool_id,
            developer_provider=provider,
            region=region,
            endpoint_url=endpoint.rstrip("/") if endpoint else None,
            deadline=deadline,
            connect_timeout=connect,
            read_timeout=read,
            max_rate=read_int(
                environ, "BROKER_UPSTREAM_MAX_RATE", DEFAULT_MAX_RATE, low=1, high=MAX_RATE
            ),
            breaker_failures=read_int(
                environ,
                "BROKER_UPSTREAM_BREAKER_FAILURES",
                DEFAULT_BREAKER_FAILURES,
                low=1,
                high=MAX_BREAKER_FAILURES,
            ),
            breaker_cooldown=_seconds(
                environ,
                "BROKER_UPSTREAM_BREAKER_COOLDOWN",
                DEFAULT_BREAKER_COOLDOWN,
                MAX_BREAKER_COOLDOWN,
            ),
        )

    def door_environ(self, environ: Mapping[str, str]) -> Mapping[str, str]:
        """The environment the backend door's settings are read from.

        In upstream mode the door's pool is the upstream pool: the local pool variables are
        refused (they would name a pool of the local store), and ``BROKER_BACKEND_POOL_ID``
        is set to the upstream pool id so that ``BackendSettings`` sees a configured pool.
        """
        if not self.enabled:
            return environ
        for name in LOCAL_POOL_VARIABLES:
            if text(environ, name):
                raise ConfigError(
                    f"{name} does not apply with BROKER_UPSTREAM=aws: the door's pool is "
                    "BROKER_UPSTREAM_POOL_ID (with BROKER_UPSTREAM_DEVELOPER_PROVIDER)"
                )
        if not text(environ, "BROKER_BACKEND_AUTH"):
            raise ConfigError(
                "BROKER_UPSTREAM=aws serves the backend door: set BROKER_BACKEND_AUTH "
                "(jwt, cookie or api_key) and its variables (docs/backend.md)"
            )
        return {**environ, "BROKER_BACKEND_POOL_ID": self.pool_id}


def _seconds(
    environ: Mapping[str, str], name: str, default: float, high: float = MAX_SECONDS
) -> float:
    bounds = "{name} must be above 0 and at most {high:g} seconds, got {raw!r}"
    return read_float(environ, name, default, high=high, bounds=bounds)
