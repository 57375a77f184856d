"""AWS credentials for a verified session: ``POST /v1/credentials``'s core (no Flask here).

Why it composes the AWS door's parts: the session's user becomes the developer login
``{D: u}`` of the pool's developer provider, resolved by ``resolve_developer_login`` as for
``POST /v1/token`` (``user_login``); the role and STS's credentials come from
``broker.identity.public.assume_pool_role``, as for GetCredentialsForIdentity with that
developer login (an authenticated identity whose call
carries no public-provider claims: the pool's authenticated role, CustomRoleArn only where
it is that role); STS exchanges a token the broker signs for the identity, with the
request's principal tags, for the role's credentials. So the backend gets what a client
would get from GetOpenIdTokenForDeveloperIdentity followed by GetCredentialsForIdentity,
in one request.

Nothing is cached: credentials are live AWS secrets, and a cache would hold them in Redis.
STS is asked on every request (the backend reuses credentials until ``expires_at``, as an
AWS SDK's credential provider does), and the role is chosen before anything is signed or
sent, so a pool without roles costs no STS call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from broker import blocking
from broker.backend.pool import PoolResolver
from broker.backend.schemas import CredentialsRequest
from broker.backend.tokens import requested_user, user_login
from broker.backend.translators.session import Session
from broker.identity.developer import DeveloperLogin, DeveloperProviders
from broker.identity.models import Credentials
from broker.identity.ports import IdentityStore, RoleAssumer
from broker.identity.public import assume_pool_role
from broker.identity.roles import DEVELOPER_LOGIN_ONLY
from broker.tokens.claims import OPEN_ID_TOKEN_DURATION
from broker.tokens.issuing import TokenIssuer


@dataclass(frozen=True)
class IssuedCredentials:
    identity_id: str
    credentials: Credentials
    new_identity: bool  # this request created the identity


class CredentialsSource(Protocol):
    """Where the backend door's credentials come from: the local store and STS
    (:class:`BackendCredentials`) or, in upstream mode, upstream Cognito
    (``broker.upstream.credentials.UpstreamCredentials``)."""

    def credentials(self, session: Session, request: CredentialsRequest) -> IssuedCredentials: ...


class BackendCredentials:
    def __init__(
        self,
        *,
        store: IdentityStore,
        tokens: TokenIssuer,
        pools: PoolResolver,
        sts: RoleAssumer,
        region: str,
        clock: Callable[[], float],
        limit_identity: Callable[[str], None],
        providers: DeveloperProviders,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._pools = pools
        self._sts = sts
        self._region = region
        self._clock = clock
        self._limit_identity = limit_identity
        self._providers = providers

    def credentials(self, session: Session, request: CredentialsRequest) -> IssuedCredentials:
        # STS is waited on every time: not on the keep-alive worker's loop. Nothing has been
        # created or counted yet, so the request can start again in a thread.
        blocking.check()
        user_id, tags = requested_user(session, request)
        login = self._pools.serving(
            lambda pool: user_login(
                self._store,
                pool,
                user_id,
                region=self._region,
                now=self._clock(),
                providers=self._providers,
            )
        )
        self._limit_identity(login.identity.id)  # TooManyRequests -> RATE_LIMITED
        credentials = assume_pool_role(
            self._store,
            self._sts,
            pool_id=login.pool_id,
            call=DEVELOPER_LOGIN_ONLY,
            custom_role_arn=request.custom_role_arn,
            token=lambda: self._token(login, tags),
        )
        return IssuedCredentials(login.identity.id, credentials, new_identity=login.created)

    def _token(self, login: DeveloperLogin, tags: dict[str, str]) -> str:
        """The web identity token STS sees: the broker's developer token for the login,
        as GetOpenIdTokenForDeveloperIdentity signs it (``aud`` the pool, ``amr``
        authenticated), short-lived since STS reads it at once."""
        return self._tokens.developer(
            pool_id=login.pool_id,
            identity_id=login.identity.id,
            provider=login.provider,
            user_id=login.user_id,
            issued_at=int(self._clock()),
            duration=OPEN_ID_TOKEN_DURATION,
            principal_tags=tags,
        )
