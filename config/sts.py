"""Settings of GetCredentialsForIdentity's call to AWS STS, read by ``Settings.from_env``.

Why a module of its own: GetCredentialsForIdentity exchanges a token the broker signs for
AWS credentials with STS ``AssumeRoleWithWebIdentity`` (contract section 10), and where STS
is and how long a request may wait for it belong together. The call is unsigned, so there
is no AWS credential among these (and none is needed): STS trusts the token, and the IAM
OpenID Connect provider registered for ``BROKER_ISSUER`` (docs/credentials.md).

- ``BROKER_STS_ENDPOINT_URL``: STS's URL; default AWS's regional endpoint for
  ``BROKER_REGION`` (``https://sts.<region>.amazonaws.com``).
- ``BROKER_STS_DEADLINE``: seconds one GetCredentialsForIdentity may spend on STS, retries
  of a throttled call included (default 3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from config.env import read_float, text
from config.errors import ConfigError

DEFAULT_DEADLINE: Final = 3.0
MAX_DEADLINE: Final = 30.0
#: One connect may take this much of the deadline at most.
CONNECT_TIMEOUT: Final = 1.0


def regional_endpoint(region: str) -> str:
    return f"https://sts.{region}.amazonaws.com"


@dataclass(frozen=True)
class StsSettings:
    endpoint_url: str = regional_endpoint("us-east-1")
    region: str = "us-east-1"
    deadline: float = DEFAULT_DEADLINE

    @property
    def connect_timeout(self) -> float:
        return min(CONNECT_TIMEOUT, self.deadline)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, region: str) -> StsSettings:
        endpoint = text(environ, "BROKER_STS_ENDPOINT_URL") or regional_endpoint(region)
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ConfigError(f"BROKER_STS_ENDPOINT_URL must be an http(s) URL, got {endpoint!r}")
        deadline = read_float(
            environ,
            "BROKER_STS_DEADLINE",
            DEFAULT_DEADLINE,
            high=MAX_DEADLINE,
            bounds="{name} must be above 0 and at most {high:g} seconds, got {raw!r}",
        )
        return cls(endpoint_url=endpoint.rstrip("/"), region=region, deadline=deadline)
