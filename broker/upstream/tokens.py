"""Issue a token from upstream Cognito for a verified session: upstream mode's core (no
Flask here). The backend door calls it exactly as it calls ``BackendTokens``.

Why these caches, and in this order (docs/upstream.md):

1. **user -> IdentityId** (``broker.upstream.identity_store``): Cognito gives one user one
   identity, so the broker remembers it, with the time it first saw it (the door's
   ``created_at`` in this mode). Knowing the identity, the broker can look for a token
   without asking AWS at all.
2. **tokens per identity, developer login, tags and duration**: the backend door's own cache
   (``broker.backend.cache.cache_key``, ``is_fresh`` and ``broker.store.token_cache``), with
   the same rule: a token is reused while more than ``BROKER_BACKEND_CACHE_MIN_REMAINING``
   of its lifetime is left. Its lifetime is read from the upstream token's ``iat``/``exp``
   (decoded without verification, only to read them; the token is AWS's, relying parties
   verify it) or, when the token is no JWT, from TokenDuration. Entries are kept until the
   token expires, not only while fresh, so that a still-valid token can be served when
   upstream is throttling or unreachable.
3. **one upstream call in flight per user**, across workers and processes: a miss takes the
   user's lock (``SET NX PX``, the cache's primitive) and calls; the others poll the caches
   for a bounded time (the deadline and a little more), and when the holder's call failed
   they take its recorded answer instead of calling in turn.

On a cache miss the holder passes the remembered IdentityId upstream (with the login), as a
boto3 backend would; if upstream refuses that identity (merged, unlinked or deleted there)
the broker forgets it and asks once more with the login alone. Changes made at AWS show on a
user's next upstream call, that is, once their cached token is past the reuse threshold.
"""

from __future__ import annotations

import binascii
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from joserfc.errors import JoseError
from joserfc.jws import extract_compact

from broker import blocking
from broker.backend.cache import cache_key, is_fresh
from broker.backend.schemas import TokenRequest
from broker.backend.tokens import IssuedToken, requested_user
from broker.backend.translators.session import Session
from broker.errors import BrokerError, StoreUnavailable
from broker.store.token_cache import CachedToken, RedisTokenCache
from broker.upstream import metrics
from broker.upstream.client import CognitoUpstream, UpstreamToken
from broker.upstream.errors import (
    IDENTITY_REFUSALS,
    UpstreamFailure,
    UpstreamThrottled,
    UpstreamUnavailable,
    rebuild,
)
from broker.upstream.guard import Guard
from broker.upstream.identity_store import (
    Failure,
    KnownIdentity,
    RedisUpstreamIdentities,
    login_key,
)
from config.upstream import UpstreamSettings

log = logging.getLogger("broker.upstream")

#: A waiter gives up this long after the holder's deadline would have passed.
WAIT_MARGIN_SECONDS: Final = 1.0
#: The lock outlives the holder's deadline by this much (Redis writes after the call).
LOCK_MARGIN_SECONDS: Final = 2.0
POLL_SECONDS: Final = 0.01
#: A stale token is served only with at least this much of its validity left.
STALE_MIN_SECONDS: Final = 5
#: The ``issuer`` in the token cache key: upstream tokens never share keys with local ones.
CACHE_ISSUER_PREFIX: Final = "upstream:"

STILL_WAITING: Final = (
    "Another request for this user is still waiting for upstream Cognito; retry shortly."
)


@dataclass(frozen=True)
class UserRequest:
    """One request, with the keys it is cached under."""

    user_id: str
    tags: Mapping[str, str]
    duration: int
    login: str  # the user's identity-cache key (and lock)


class UpstreamTokens:
    def __init__(
        self,
        *,
        settings: UpstreamSettings,
        identities: RedisUpstreamIdentities,
        tokens: RedisTokenCache,
        client: CognitoUpstream,
        guard: Guard,
        min_remaining: float,
        clock: Callable[[], float],
        limit_identity: Callable[[str], None],
    ) -> None:
        self._settings = settings
        self._identities = identities
        self._tokens = tokens
        self._client = client
        self._guard = guard
        self._min_remaining = min_remaining
        self._clock = clock
        self._limit_identity = limit_identity
        self._issuer = CACHE_ISSUER_PREFIX + (settings.endpoint_url or settings.region)
        self._lock_ttl_ms = round((settings.deadline + LOCK_MARGIN_SECONDS) * 1000)

    def warm(self) -> None:
        """Build this worker's boto3 client now (it loads the service model), not on the
        first request; say at start which pool the door serves."""
        fault = self._client.setup_fault()
        if fault is not None:  # said now, and by /readyz, rather than as an outage later
            log.error("upstream mode cannot call AWS: %s", fault)
        try:
            self._client.client()
        except Exception as exc:  # the first request reports it in the envelope
            log.warning("upstream client not built at start (%s)", type(exc).__name__)
        log.info(
            "backend door: upstream mode, pool %s, developer provider %s, endpoint %s",
            self._settings.pool_id,
            self._settings.developer_provider,
            self._settings.endpoint_url or f"AWS {self._settings.region}",
        )

    def issue(self, session: Session, request: TokenRequest) -> IssuedToken:
        user_id, tags = requested_user(session, request)
        wanted = UserRequest(
            user_id=user_id,
            tags=tags,
            duration=request.token_duration,
            login=login_key(self._settings.pool_id, self._settings.developer_provider, user_id),
        )
        known = self._identities.get(wanted.login)
        if known is not None:
            cached = self._tokens.get(self._entry(wanted, known.identity_id))
            if cached is not None and self._fresh(cached):
                self._limit_identity(known.identity_id)  # TooManyRequests -> RATE_LIMITED
                return _issued(known, cached, cached=True)
        # A miss waits on upstream (or on the request that calls it): not on the worker's
        # loop. Nothing has been counted or locked yet, so the request can start again.
        blocking.check()
        if known is not None:
            self._limit_identity(known.identity_id)
        return self._coalesced(wanted)

    def forget(self, user_id: str, identity_id: str) -> None:
        """Forget that ``user_id`` has ``identity_id`` (upstream refused that identity in
        another call): the user's next token is asked for by login alone."""
        login = login_key(self._settings.pool_id, self._settings.developer_provider, user_id)
        self._identities.forget(login, identity_id)

    # --- the miss: one upstream call per user ------------------------------------------
    def _coalesced(self, wanted: UserRequest) -> IssuedToken:
        give_up_at = time.monotonic() + self._settings.deadline + WAIT_MARGIN_SECONDS
        waited_on: str | None = None
        while True:
            holder = self._tokens.try_lock(wanted.login, self._lock_ttl_ms)
            if holder is not None:
                return self._fetch_holding(wanted, holder)
            current, failure = self._identities.holder_and_failure(wanted.login)
            if failure is not None and failure.holder in (waited_on, current):
                return self._fall_back(wanted, rebuild(failure.error, failure.message))
            waited_on = current or waited_on
            if time.monotonic() >= give_up_at:
                return self._fall_back(wanted, UpstreamUnavailable(STILL_WAITING))
            time.sleep(POLL_SECONDS)
            hit = self._cached(wanted)
            if hit is not None:
                return hit

    def _fetch_holding(self, wanted: UserRequest, holder: str) -> IssuedToken:
        try:
            known = self._identities.get(wanted.login)
            stale = None
            if known is not None:
                stale = self._tokens.get(self._entry(wanted, known.identity_id))
                if stale is not None and self._fresh(stale):  # a holder before us stored it
                    return _issued(known, stale, cached=True)
            try:
                got = self._fetch(wanted, known)
            except (UpstreamThrottled, UpstreamUnavailable) as err:
                self._record(wanted, holder, err)
                served = self._stale(known, stale)
                if served is None:
                    raise
                log.warning("upstream %s; serving a still-valid cached token", type(err).__name__)
                return served
            except BrokerError as err:
                self._record(wanted, holder, err)
                raise
            return self._store(wanted, known, got)
        finally:
            with contextlib.suppress(StoreUnavailable):  # keep the original error
                self._tokens.release(wanted.login, holder)

    def _fetch(self, wanted: UserRequest, known: KnownIdentity | None) -> UpstreamToken:
        deadline_at = time.monotonic() + self._settings.deadline
        identity = known.identity_id if known is not None else None
        try:
            return self._guard.call(
                lambda: self._attempt(wanted, identity, deadline_at), deadline_at
            )
        except UpstreamFailure as refused:  # Kind.REFUSED: upstream answered no
            if identity is None or refused.code not in IDENTITY_REFUSALS:
                raise refused.error from None
            # The remembered identity may be gone upstream (merged, unlinked, deleted):
            # forget it and let the login alone find the user's identity, once.
            log.info("upstream refused the remembered identity (%s); asking by login", refused.code)
            self._identities.forget(wanted.login, identity)
        try:
            return self._guard.call(lambda: self._attempt(wanted, None, deadline_at), deadline_at)
        except UpstreamFailure as refused:
            raise refused.error from None

    def _attempt(
        self, wanted: UserRequest, identity_id: str | None, deadline_at: float
    ) -> UpstreamToken:
        return self._client.get_token(
            user_id=wanted.user_id,
            identity_id=identity_id,
            tags=wanted.tags,
            duration=wanted.duration,
            deadline_at=deadline_at,
        )

    def _store(
        self, wanted: UserRequest, known: KnownIdentity | None, got: UpstreamToken
    ) -> IssuedToken:
        now = self._clock()
        if known is None or known.identity_id != got.identity_id:
            if known is not None:
                log.info("upstream gave this user another identity than the remembered one")
            known = KnownIdentity(got.identity_id, now)
        issued_at, expires_at = token_lifetime(got.token, now, wanted.duration)
        token = CachedToken(got.token, issued_at, expires_at)
        keep = max(1, expires_at - int(now))  # until it expires: a fallback when upstream fails
        entry = self._entry(wanted, known.identity_id)
        self._tokens.put(self._settings.pool_id, entry, token, keep, None, known.identity_id)
        self._identities.remember(wanted.login, known.identity_id, known.first_seen)
        return _issued(known, token, cached=False)

    # --- reading the caches ------------------------------------------------------------
    def _cached(self, wanted: UserRequest) -> IssuedToken | None:
        known = self._identities.get(wanted.login)
        if known is None:
            return None
        cached = self._tokens.get(self._entry(wanted, known.identity_id))
        if cached is not None and self._fresh(cached):
            return _issued(known, cached, cached=True)
        return None

    def _fall_back(self, wanted: UserRequest, err: BrokerError) -> IssuedToken:
        """A waiter's answer when the holder failed or took too long."""
        if isinstance(err, UpstreamThrottled | UpstreamUnavailable):
            known = self._identities.get(wanted.login)
            if known is not None:
                served = self._stale(
                    known, self._tokens.get(self._entry(wanted, known.identity_id))
                )
                if served is not None:
                    return served
        raise err

    def _stale(self, known: KnownIdentity | None, cached: CachedToken | None) -> IssuedToken | None:
        if known is None or cached is None:
            return None
        if cached.expires_at - self._clock() < STALE_MIN_SECONDS:
            return None
        metrics.STALE.inc()
        return _issued(known, cached, cached=True)

    def _fresh(self, cached: CachedToken) -> bool:
        return is_fresh(cached, self._clock(), self._min_remaining)

    def _entry(self, wanted: UserRequest, identity_id: str) -> str:
        return cache_key(
            issuer=self._issuer,
            pool_id=self._settings.pool_id,
            identity_id=identity_id,
            provider=self._settings.developer_provider,
            user_id=wanted.user_id,
            tags=wanted.tags,
            duration=wanted.duration,
        ).entry

    def _record(self, wanted: UserRequest, holder: str, err: BrokerError) -> None:
        with contextlib.suppress(StoreUnavailable):
            failure = Failure(holder, type(err).__name__, err.message)
            self._identities.record_failure(wanted.login, failure)


def _issued(known: KnownIdentity, token: CachedToken, *, cached: bool) -> IssuedToken:
    return IssuedToken(
        identity_id=known.identity_id,
        token=token.token,
        expires_at=token.expires_at,
        identity_created=known.first_seen,
        cached=cached,
        new_identity=False,  # upstream creates identities; the broker only remembers them
    )


def token_lifetime(token: str, now: float, duration: int) -> tuple[int, int]:
    """``(iat, exp)`` of an upstream token, read from its JWT claims without verifying
    them (only to know when to renew it); ``(now, now + duration)`` when it has none."""
    issued, expires = int(now), int(now) + duration
    try:
        claims = json.loads(extract_compact(token.encode("ascii")).payload)
        exp = claims["exp"]
        iat = claims.get("iat", exp - duration)
    except (JoseError, ValueError, TypeError, KeyError, UnicodeError, binascii.Error):
        return issued, expires
    if type(exp) is not int or type(iat) is not int or not iat < exp:
        return issued, expires
    return iat, exp
