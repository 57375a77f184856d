"""AWS credentials from upstream Cognito for a verified session: ``POST /v1/credentials``
in upstream mode (no Flask here).

Cognito's enhanced flow for developer identities, as a boto3 backend runs it: the user's
upstream token (``broker.upstream.tokens``, so its caches, its one call in flight per user
and its identity memory serve this path too), then GetCredentialsForIdentity with that token
as the ``cognito-identity.amazonaws.com`` login; AWS picks the role from the upstream pool's
roles and mappings. The second call goes through the same guard (circuit breaker, shared
quota, jittered retries inside the deadline) and is never cached: credentials are live AWS
secrets.
"""

from __future__ import annotations

import time

from broker import blocking
from broker.backend.credentials import IssuedCredentials
from broker.backend.schemas import CredentialsRequest, TokenRequest
from broker.backend.translators.session import Session
from broker.identity.models import Credentials
from broker.upstream.client import CognitoUpstream
from broker.upstream.errors import UpstreamFailure
from broker.upstream.guard import Guard
from broker.upstream.tokens import UpstreamTokens


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
        issued = self._tokens.issue(
            session, TokenRequest(principal_tags=request.principal_tags, user_id=request.user_id)
        )
        deadline_at = time.monotonic() + self._deadline

        def attempt() -> Credentials:
            return self._client.get_credentials(
                identity_id=issued.identity_id,
                token=issued.token,
                custom_role_arn=request.custom_role_arn,
                deadline_at=deadline_at,
            )

        try:
            credentials = self._guard.call(attempt, deadline_at)
        except UpstreamFailure as refused:  # Kind.REFUSED: upstream answered no
            raise refused.error from None
        return IssuedCredentials(issued.identity_id, credentials, issued.new_identity)
