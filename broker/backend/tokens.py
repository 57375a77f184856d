"""Issue one token for a verified session: the backend door's core (no Flask here).

Why it composes the same parts as the AWS door (``broker.awsjson.developer_handlers``):
the session's user becomes the login ``{D: u}`` of the pool's developer provider D, resolved
by ``resolve_developer_login`` and signed by ``broker.tokens.issuing``, so a token from
``POST /v1/token`` has the same ``sub`` and the same claims as
GetOpenIdTokenForDeveloperIdentity gives for that user. Only the cache is added.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from broker.backend.cache import CacheKey, CoalescingTokenCache, login_cache_key
from broker.backend.errors import TagRefused
from broker.backend.pool import BackendPool, PoolResolver
from broker.backend.schemas import TokenRequest
from broker.backend.translators.session import Session
from broker.errors import ValidationException
from broker.identity.developer import DeveloperLogin, DeveloperProviders, resolve_developer_login
from broker.identity.ports import IdentityStore
from broker.store.token_cache import CachedToken
from broker.tokens.issuing import TokenIssuer
from config.aws_model import MAX_PRINCIPAL_TAGS

TAG_FROM_SESSION: Final = (
    "principal_tags.{tag}: this tag comes from the session and cannot be set in the body."
)
TOO_MANY_TAGS: Final = (
    "principal_tags: the session's and the body's tags add up to {count}, over the limit of "
    f"{MAX_PRINCIPAL_TAGS}."
)


@dataclass(frozen=True)
class IssuedToken:
    identity_id: str
    token: str
    expires_at: int
    identity_created: float
    cached: bool
    new_identity: bool  # this request created the identity


def user_login(
    store: IdentityStore,
    pool: BackendPool,
    user_id: str,
    *,
    region: str,
    now: float,
    providers: DeveloperProviders,
    peek: str | None = None,
) -> DeveloperLogin:
    """The user's developer login ``{D: user_id}`` in the door's pool, its identity found or
    created (``resolve_developer_login``); ``peek``: a key read in the same round trip.
    Both paths of the local door find their user here."""
    return resolve_developer_login(
        store,
        pool_id=pool.id,
        logins={pool.developer_provider: user_id},
        identity_id=None,
        region=region,
        now=now,
        providers=providers,
        peek=peek,
    )


class UserRequest(Protocol):
    """What both doors' bodies say about the user: trusted mode's user, and the tags."""

    @property
    def user_id(self) -> str | None: ...

    @property
    def principal_tags(self) -> Mapping[str, str]: ...


def requested_user(session: Session, request: UserRequest) -> tuple[str, dict[str, str]]:
    """The user a token is for (the session's, or in trusted mode the body's) and the
    principal tags it carries (:func:`merge_tags`); both token sources start here."""
    user_id = session.user_id if session.user_id is not None else request.user_id
    if user_id is None:  # trusted mode without user_id is refused by the schema
        raise ValidationException("user_id: Missing data for required field.")
    return user_id, merge_tags(session.tags, request.principal_tags, session.session_tags)


def merge_tags(
    session: Mapping[str, str], body: Mapping[str, str], reserved: Collection[str] = ()
) -> dict[str, str]:
    """The session's tags, and the body's beside them. The body may set no tag the session
    carries and no tag configured to come from the session (``reserved``), even when this
    session lacks it or holds an unusable value: such a tag is the backend's to vouch for."""
    for tag in body:
        if tag in session or tag in reserved:
            raise TagRefused(TAG_FROM_SESSION.format(tag=tag))
    merged = {**session, **body}
    if len(merged) > MAX_PRINCIPAL_TAGS:
        raise ValidationException(TOO_MANY_TAGS.format(count=len(merged)))
    return merged


class TokenSource(Protocol):
    """Where the backend door's tokens come from: the local store (:class:`BackendTokens`)
    or, in upstream mode, AWS (``broker.upstream.tokens.UpstreamTokens``). The composition
    root (``broker.app.wiring``) chooses one per process."""

    def issue(self, session: Session, request: TokenRequest) -> IssuedToken: ...


class BackendTokens:
    def __init__(
        self,
        *,
        store: IdentityStore,
        tokens: TokenIssuer,
        pools: PoolResolver,
        cache: CoalescingTokenCache,
        region: str,
        clock: Callable[[], float],
        limit_identity: Callable[[str], None],
        providers: DeveloperProviders,
    ) -> None:
        self._providers = providers
        self._limit_identity = limit_identity
        self._store = store
        self._tokens = tokens
        self._pools = pools
        self._cache = cache
        self._region = region
        self._clock = clock

    def issue(self, session: Session, request: TokenRequest) -> IssuedToken:
        user_id, tags = requested_user(session, request)
        pool, key, login = self._pools.serving(
            lambda pool: (pool, *self._resolve(pool, user_id, tags, request.token_duration))
        )
        self._limit_identity(login.identity.id)  # TooManyRequests -> RATE_LIMITED

        def sign() -> CachedToken:
            now = int(self._clock())
            token = self._tokens.developer(
                pool_id=pool.id,
                identity_id=login.identity.id,
                provider=login.provider,
                user_id=login.user_id,
                issued_at=now,
                duration=request.token_duration,
                principal_tags=tags,
            )
            return CachedToken(token, now, now + request.token_duration, login.identity.id)

        # The entry was read with the login, in one round trip (none can name a new identity).
        token, cached = self._cache.get_or_sign(
            key, sign, identity_id=login.identity.id, seen=login.peeked
        )
        return IssuedToken(
            identity_id=login.identity.id,
            token=token.token,
            expires_at=token.expires_at,
            identity_created=login.identity.created,
            cached=cached,
            new_identity=login.created,
        )

    def _resolve(
        self, pool: BackendPool, user_id: str, tags: Mapping[str, str], duration: int
    ) -> tuple[CacheKey, DeveloperLogin]:
        """The login's identity and its cache key; the cache entry is read in the same
        Redis round trip (when the cache is on)."""
        key = login_cache_key(
            issuer=self._tokens.issuer,
            pool_id=pool.id,
            provider=pool.developer_provider,
            user_id=user_id,
            tags=tags,
            duration=duration,
        )
        login = user_login(
            self._store,
            pool,
            user_id,
            region=self._region,
            now=self._clock(),
            providers=self._providers,
            peek=key.entry if self._cache.enabled else None,
        )
        return key, login
