"""One attempt at upstream Cognito, with boto3: GetOpenIdTokenForDeveloperIdentity, or
GetCredentialsForIdentity for ``POST /v1/credentials``.

Why boto3 and its defaults: the credentials come from the standard chain of a default
``boto3.session.Session`` (environment, shared profile, container or instance role), so the
broker holds no AWS secret of its own and rotating role credentials just work. botocore's
retries are off (``total_max_attempts=1``): ``broker.upstream.guard`` retries with jittered
backoff inside the request's deadline, consults the circuit breaker and the shared quota
first, and botocore's own retries would hide every one of those decisions. Timeouts are
short and come from the settings.

botocore's connect and read timeouts bound one connect and one read, not an attempt: an
answer sent a byte at a time satisfies the read timeout for as long as it lasts. So each
attempt runs in a thread of :class:`broker.outbound.BoundedCalls` and is waited for until
the request's deadline only; an attempt still running then fails as unreachable (and
counts toward the breaker), and its thread is given back when botocore's own read timeout
ends it. With every such thread held, an attempt fails at once instead of queueing.

One client per process, built after gunicorn forks (a client's connection pool must not be
shared across a fork); every failure leaves here as :class:`UpstreamFailure`. boto3 is
imported on first use, so that local mode's workers never load the AWS SDK (0.2 s each).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from broker.identity.models import Credentials
from broker.outbound import BoundedCalls, DeadlineExceeded, Unreachable
from broker.outbound.aws import IncompleteCredentials, PerProcess, client_config, read_credentials
from broker.upstream.errors import from_aws_error, missing_profile, no_credentials, unreachable
from config.upstream import UpstreamSettings

SERVICE: Final = "cognito-identity"
#: The login an identity's own Cognito token is given under (the enhanced flow).
COGNITO_LOGIN: Final = "cognito-identity.amazonaws.com"
#: Attempts in flight at once per process (the keep-alive worker serves upstream requests
#: in its threads, ``BROKER_WORKER_THREADS``), and so botocore's connection pool.
CALL_THREADS: Final = 16
MAX_POOL_CONNECTIONS: Final = CALL_THREADS


def setup_fault(settings: UpstreamSettings) -> str | None:
    """Why no client can be built at all (AWS_PROFILE naming no profile), or None. For the
    start's log line and /readyz: boto3 reads the config files once per process and
    profile (no call is made); a profile added later needs a restart, as the client does."""
    where = tuple(os.environ.get(name) for name in _PROFILE_VARIABLES)
    return _profile_fault(settings.region, where)


#: What boto3 reads to find the profile: the answer is kept per value of these.
_PROFILE_VARIABLES: Final = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


@functools.cache
def _profile_fault(region: str, where: tuple[str | None, ...]) -> str | None:
    profile = where[0] or where[1]
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        boto3.session.Session(region_name=region)
    except ProfileNotFound as exc:
        return missing_profile(str(exc.kwargs.get("profile", profile or ""))).error.message
    return None


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
        self._client: PerProcess[Any] = PerProcess(self._build)
        self._calls = BoundedCalls(CALL_THREADS, "upstream-call")

    def client(self) -> Any:
        return self._client.get()

    def _build(self) -> Any:
        import boto3

        settings = self._settings
        session = boto3.session.Session(region_name=settings.region)
        config = client_config(
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            connections=MAX_POOL_CONNECTIONS,
        )
        return session.client(SERVICE, endpoint_url=settings.endpoint_url, config=config)

    def setup_fault(self) -> str | None:
        return setup_fault(self._settings)

    def get_token(
        self,
        *,
        user_id: str,
        identity_id: str | None,
        tags: Mapping[str, str],
        duration: int,
        deadline_at: float,
    ) -> UpstreamToken:
        """One call, over by ``deadline_at`` (``time.monotonic()``) whatever upstream does;
        raises :class:`UpstreamFailure` on any error."""
        params: dict[str, Any] = {
            "IdentityPoolId": self._settings.pool_id,
            "Logins": {self._settings.developer_provider: user_id},
            "TokenDuration": duration,
        }
        if identity_id is not None:
            params["IdentityId"] = identity_id
        if tags:
            params["PrincipalTags"] = dict(tags)
        answer = self._call("get_open_id_token_for_developer_identity", params, deadline_at)
        identity = answer.get("IdentityId")
        token = answer.get("Token")
        if not isinstance(identity, str) or not isinstance(token, str) or not token:
            raise unreachable("IncompleteResponse")
        return UpstreamToken(identity, token)

    def get_credentials(
        self,
        *,
        identity_id: str,
        token: str,
        custom_role_arn: str | None,
        deadline_at: float,
    ) -> Credentials:
        """GetCredentialsForIdentity for an identity upstream, with its upstream token as
        the ``cognito-identity.amazonaws.com`` login (Cognito's enhanced flow for developer
        identities); the same deadline and failures as :meth:`get_token`."""
        params: dict[str, Any] = {
            "IdentityId": identity_id,
            "Logins": {COGNITO_LOGIN: token},
        }
        if custom_role_arn is not None:
            params["CustomRoleArn"] = custom_role_arn
        answer = self._call("get_credentials_for_identity", params, deadline_at)
        return _credentials(answer)

    def _call(self, operation: str, params: dict[str, Any], deadline_at: float) -> Any:
        from botocore import exceptions as boto

        def call() -> Any:
            return getattr(self.client(), operation)(**params)

        try:
            answer = self._calls.run(call, deadline_at - time.monotonic())
        except DeadlineExceeded:
            raise unreachable("DeadlineExceeded") from None
        except Unreachable:  # every call thread is held by an attempt past its deadline
            raise unreachable("AllCallsBusy") from None
        except boto.ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            raise from_aws_error(
                str(error.get("Code", "Unknown")), str(error.get("Message", "")), int(status)
            ) from None
        except boto.ProfileNotFound as exc:
            raise missing_profile(str(exc.kwargs.get("profile", ""))) from None
        except (
            boto.NoCredentialsError,
            boto.PartialCredentialsError,
            boto.CredentialRetrievalError,
            boto.NoRegionError,
        ) as exc:
            raise no_credentials(type(exc).__name__) from None
        except boto.BotoCoreError as exc:  # connect, read, closed, parse...
            raise unreachable(type(exc).__name__) from None
        if not isinstance(answer, dict):
            raise unreachable("IncompleteResponse")
        return answer


def _credentials(answer: Any) -> Credentials:
    try:
        return read_credentials(answer, key_member="SecretKey")
    except IncompleteCredentials:
        raise unreachable("IncompleteResponse") from None
