"""One GetCredentialsForIdentity's AssumeRoleWithWebIdentity at STS, with botocore.

Why botocore, unsigned: AssumeRoleWithWebIdentity needs no AWS credentials (the web
identity token is the proof), so the broker holds none for it and the client is built with
``signature_version=UNSIGNED``, which also keeps botocore from searching the credential
chain (the instance metadata service included) when the client is made. botocore's
retries are off (``total_max_attempts=1``): a throttled attempt is retried here after a
jittered delay (``broker.outbound.backoff_delay``), and only while another attempt still
fits the deadline.

The deadline is total. botocore's timeouts bound one connect and one read, so each attempt
runs in a thread of :class:`broker.outbound.BoundedCalls` and is waited for until the
deadline only, as upstream mode's calls are (``broker.upstream.client``). The caller must
have called ``broker.blocking.check()`` before the request changed anything (the AWS door
does, first thing).

One client per process, built on first use after gunicorn forks, with botocore imported
then (``broker.outbound.aws``), so a broker that never serves GetCredentialsForIdentity
never loads it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from broker.identity.models import Credentials
from broker.outbound import BoundedCalls, DeadlineExceeded, Unreachable, backoff_delay
from broker.outbound.aws import IncompleteCredentials, PerProcess, client_config, read_credentials
from broker.sts.errors import StsFailure, from_sts_error, unreachable
from config.sts import StsSettings

SERVICE: Final = "sts"
#: The session name STS gives the assumed role, as Cognito names it.
ROLE_SESSION_NAME: Final = "CognitoIdentityCredentials"
#: Seconds the credentials last, as Cognito's GetCredentialsForIdentity gives them.
DURATION_SECONDS: Final = 3600
#: Attempts in flight at once per process, and so botocore's connection pool.
CALL_THREADS: Final = 16


class StsClient:
    """:class:`broker.identity.ports.RoleAssumer` at ``settings.endpoint_url``."""

    def __init__(
        self,
        settings: StsSettings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._monotonic = monotonic
        self._sleep = sleep
        self._client: PerProcess[Any] = PerProcess(self._build)
        self._calls = BoundedCalls(CALL_THREADS, "sts-call")

    def _botocore(self) -> Any:
        return self._client.get()

    def _build(self) -> Any:
        import botocore.session

        settings = self._settings
        config = client_config(
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.deadline,
            connections=CALL_THREADS,
            unsigned=True,
        )
        return botocore.session.Session().create_client(
            SERVICE,
            region_name=settings.region,
            endpoint_url=settings.endpoint_url,
            config=config,
        )

    def assume_role(self, role_arn: str, token: str) -> Credentials:
        """Credentials for ``role_arn`` in exchange for ``token``, or the broker's error for
        STS's answer (``broker.sts.errors``) within the deadline."""
        deadline_at = self._monotonic() + self._settings.deadline
        retry = 0
        while True:
            try:
                return self._attempt(role_arn, token, deadline_at)
            except StsFailure as failure:
                if not failure.retry:
                    raise failure.error from None
                delay = backoff_delay(retry)
                retry += 1
                # Another attempt needs at least a connect's worth of time after the delay.
                if self._monotonic() + delay + self._settings.connect_timeout > deadline_at:
                    raise failure.error from None
                self._sleep(delay)

    def _attempt(self, role_arn: str, token: str, deadline_at: float) -> Credentials:
        from botocore import exceptions as boto

        def call() -> Any:
            return self._botocore().assume_role_with_web_identity(
                RoleArn=role_arn,
                RoleSessionName=ROLE_SESSION_NAME,
                WebIdentityToken=token,
                DurationSeconds=DURATION_SECONDS,
            )

        try:
            answer = self._calls.run(call, deadline_at - self._monotonic())
        except DeadlineExceeded:
            raise unreachable("DeadlineExceeded", "no answer within the deadline") from None
        except Unreachable:  # every call thread is held by an attempt past its deadline
            raise unreachable("AllCallsBusy", "every STS call thread is busy") from None
        except boto.ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            raise from_sts_error(
                str(error.get("Code", "")), str(error.get("Message", "")), int(status)
            ) from None
        except boto.BotoCoreError as exc:  # connect, read, closed, parse...
            raise unreachable(type(exc).__name__, "STS could not be reached") from None
        return _credentials(answer)


def _credentials(answer: Any) -> Credentials:
    try:
        return read_credentials(answer, key_member="SecretAccessKey")
    except IncompleteCredentials as exc:
        raise unreachable("IncompleteResponse", str(exc)) from None
