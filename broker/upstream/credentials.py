"""AWS credentials from upstream Cognito for a verified session: ``POST /v1/credentials``
in upstream mode (no Flask here).

Cognito's enhanced flow for developer identities, as a boto3 backend runs it: the user's
upstream token (``broker.upstream.tokens``, so its caches, its one call in flight per user
and its identity memory serve this path too), then GetCredentialsForIdentity with that token
as the ``cognito-identity.amazonaws.com`` login; AWS picks the role from the upstream pool's
roles and mappings. The second call goes through the same guard (circuit breaker, shared
quota, jittered retries) and is never cached: credentials are live AWS secrets. Both calls
fit in one ``BROKER_UPSTREAM_DEADLINE``, counted from the request's start.

When upstream refuses a cached token's identity (merged, unlinked or deleted at AWS since),
the broker forgets it and asks once more with a new token for the login, as the token path
does for a remembered identity.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from broker import blocking
from broker.backend.credentials import IssuedCredentials
from broker.backend.schemas import CredentialsRequest, TokenRequest
from broker.backend.tokens import IssuedToken, requested_user
from broker.backend.translators.session import Session
from broker.identity.models import Credentials
from broker.upstream.client import CognitoUpstream
from broker.upstream.errors import IDENTITY_REFUSALS, UpstreamFailure, UpstreamUnavailable
from broker.upstream.guard import Guard
from broker.upstream.tokens import UpstreamTokens

log = logging.getLogger("broker.upstream")

NO_TIME_LEFT: Final = (
    "Getting the user's upstream token took all of BROKER_UPSTREAM_DEADLINE, leaving none for "
    "GetCredentialsForIdentity; retry shortly."
)


class UpstreamCredentials:
    def __init__(
        self,
        *,
        tokens: UpstreamTokens,
        client: CognitoUpstream,
        guard: Guard,
        deadline: float,
    ) -> None:
        self._tokens = tokens
        self._client = client
        self._guard = guard
        self._deadline = deadline

    def credentials(self, session: Session, request: CredentialsRequest) -> IssuedCredentials:
        blocking.check()  # AWS is waited on every time: not on the keep-alive worker's loop
        deadline_at = time.monotonic() + self._deadline  # the whole request's
        user_id, _ = requested_user(session, request)
        wanted = TokenRequest(principal_tags=request.principal_tags, user_id=request.user_id)
        issued = self._tokens.issue(session, wanted)
        try:
            credentials = self._get(issued, request, deadline_at)
        except UpstreamFailure as refused:  # Kind.REFUSED: upstream answered no
            if not issued.cached or refused.code not in IDENTITY_REFUSALS:
                raise refused.error from None
            log.info("upstream refused the cached token's identity (%s); asking by login",
                     refused.code)  # fmt: skip
            self._tokens.forget(user_id, issued.identity_id)
            issued = self._tokens.issue(session, wanted)
            try:
                credentials = self._get(issued, request, deadline_at)
            except UpstreamFailure as again:
                raise again.error from None
        return IssuedCredentials(issued.identity_id, credentials, issued.new_identity)

    def _get(
        self, issued: IssuedToken, request: CredentialsRequest, deadline_at: float
    ) -> Credentials:
        if deadline_at - time.monotonic() <= 0:  # not an outage: the breaker is not told
            raise UpstreamUnavailable(NO_TIME_LEFT)

        def attempt() -> Credentials:
            return self._client.get_credentials(
                identity_id=issued.identity_id,
                token=issued.token,
                custom_role_arn=request.custom_role_arn,
                deadline_at=deadline_at,
            )

        return self._guard.call(attempt, deadline_at)
