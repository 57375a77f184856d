"""One GetOpenIdTokenForDeveloperIdentity attempt at upstream Cognito, with boto3.

Why boto3 and its defaults: the credentials come from the standard chain of a default
``boto3.session.Session`` (environment, shared profile, container or instance role), so the
broker holds no AWS secret of its own and rotating role credentials just work. botocore's
retries are off (``total_max_attempts=1``): ``broker.upstream.guard`` retries with jittered
backoff inside the request's deadline, consults the circuit breaker and the shared quota
first, and botocore's own retries would hide every one of those decisions. Timeouts are
short and come from the settings.

One client per process, built after gunicorn forks (a client's connection pool must not be
shared across a fork); every failure leaves here as :class:`UpstreamFailure`. boto3 is
imported on first use, so that local mode's workers never load the AWS SDK (0.2 s each).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from broker.upstream.errors import from_aws_error, no_credentials, unreachable
from config.upstream import UpstreamSettings

SERVICE: Final = "cognito-identity"
MAX_POOL_CONNECTIONS: Final = 4  # a sync worker makes one call at a time


@dataclass(frozen=True)
class UpstreamToken:
    identity_id: str
    token: str


class CognitoUpstream:
    def __init__(
        self,
        settings: UpstreamSettings,
    ) -> None:
        self._settings = settings
        self._client: Any = None
        self._pid = 0
        self._lock = threading.Lock()

    def client(self) -> Any:
        client = self._client
        if client is not None and self._pid == os.getpid():
            return client
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                self._client = self._build()
                self._pid = os.getpid()
            return self._client

    def _build(self) -> Any:
        import boto3
        import botocore.config

        settings = self._settings
        session = boto3.session.Session(region_name=settings.region)
        config = botocore.config.Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            max_pool_connections=MAX_POOL_CONNECTIONS,
            user_agent_extra="identity-broker",
        )
        return session.client(SERVICE, endpoint_url=settings.endpoint_url, config=config)

    def get_token(
        self,
        *,
        user_id: str,
        identity_id: str | None,
        tags: Mapping[str, str],
        duration: int,
    ) -> UpstreamToken:
        """One call; raises :class:`UpstreamFailure` on any error."""
        params: dict[str, Any] = {
            "IdentityPoolId": self._settings.pool_id,
            "Logins": {self._settings.developer_provider: user_id},
            "TokenDuration": duration,
        }
        if identity_id is not None:
            params["IdentityId"] = identity_id
        if tags:
            params["PrincipalTags"] = dict(tags)
        from botocore import exceptions as boto

        try:
            answer = self.client().get_open_id_token_for_developer_identity(**params)
        except boto.ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            raise from_aws_error(
                str(error.get("Code", "Unknown")), str(error.get("Message", "")), int(status)
            ) from None
        except (
            boto.NoCredentialsError,
            boto.PartialCredentialsError,
            boto.CredentialRetrievalError,
            boto.NoRegionError,
        ) as exc:
            raise no_credentials(type(exc).__name__) from None
        except boto.BotoCoreError as exc:  # connect, read, closed, parse...
            raise unreachable(type(exc).__name__) from None
        identity = answer.get("IdentityId")
        token = answer.get("Token")
        if not isinstance(identity, str) or not isinstance(token, str) or not token:
            raise unreachable("IncompleteResponse")
        return UpstreamToken(identity, token)
