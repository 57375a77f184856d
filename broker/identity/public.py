"""The operations Cognito serves without SigV4 (contract sections 2, 7 and 9): GetId,
GetOpenIdToken, UnlinkIdentity and GetCredentialsForIdentity (section 10).

Without developer credentials the caller proves nothing but what it sends: no logins (an
unauthenticated identity, if the pool allows them), public-provider tokens (each verified by
``broker.providers`` and linked, section 9), or under ``cognito-identity.amazonaws.com`` a
token this broker issued for the identity (decision). Developer logins belong to the signed
GetOpenIdTokenForDeveloperIdentity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from broker.errors import (
    InvalidParameterException,
    NotAuthorizedException,
    ResourceNotFoundException,
)
from broker.identity import messages
from broker.identity.linking import (
    LoginVerifier,
    PublicLogin,
    link_logins,
    user_pool_names,
    verify_public_logins,
)
from broker.identity.models import (
    COGNITO_PROVIDER,
    Credentials,
    Identity,
    IdentityPool,
    PoolRoles,
    login_key,
    new_resource_id,
    split_login_key,
)
from broker.identity.outcomes import UNLINK_ERRORS, raise_for
from broker.identity.pools import describe_pool
from broker.identity.ports import IdentityStore, RoleAssumer, UnlinkOutcome
from broker.identity.roles import ProvenCall, role_for_call

#: The middle part of a Cognito user pool login in a token's ``amr`` (as AWS writes it;
#: ``broker.tokens.claims`` writes it the same).
USER_POOL_SIGN_IN = "CognitoSignIn"

#: Returns the claims of a token the broker issued; raises ValueError (the reason) if it is
#: not one, or no longer valid. ``broker.tokens.verify.verify_token`` is the real one.
Verifier = Callable[[str], Mapping[str, Any]]

#: Called with the pool's id once the pool is known and before any work is done for the
#: caller; raises TooManyRequestsException past the per-pool limit of the unsigned
#: operations (``broker.ratelimit.limiter.RateLimiter.check_unsigned_pool``).
PoolLimit = Callable[[str], None]


@dataclass(frozen=True)
class Access:
    """Who a public call turned out to be: the identity, its pool, the developer login
    (D, u) the presented token was issued for (None if none) and the public logins the call
    proved, verified now or named by the presented token. An unauthenticated identity has
    neither."""

    pool: IdentityPool
    identity: Identity
    login: tuple[str, str] | None
    presented: Mapping[str, Any]  # the claims of the token presented; empty when none
    public: tuple[PublicLogin, ...] = ()
    created: bool = False  # GetId only: the call made the identity
    #: The verified claims of the call's public-provider tokens (provider name -> claims),
    #: what role mappings read (``broker.identity.roles``). Empty for a broker token.
    claims: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def authenticated(self) -> bool:
        """Did the call prove a login (a developer one or a public one)?"""
        return self.login is not None or bool(self.public)


def get_id(
    store: IdentityStore,
    *,
    pool_id: str,
    account_id: str | None,
    logins: Mapping[str, str],
    broker_account_id: str,
    region: str,
    now: float,
    limit_pool: PoolLimit,
    verifier: LoginVerifier,
) -> Identity:
    """GetId: without logins, a new unauthenticated identity if the pool allows them; with
    public logins, each verified, the identity linked to them (made when none is, merged
    when they are linked to several; section 9). An AccountId other than the broker's names
    a pool that is not here (decision)."""
    if account_id is not None and account_id != broker_account_id:
        raise ResourceNotFoundException(messages.POOL_NOT_FOUND.format(pool_id=pool_id))
    pool = describe_pool(store, pool_id)
    limit_pool(pool.id)
    _refuse_developer_login(pool, logins, "GetId")
    if logins:
        public = verify_public_logins(pool, logins, verifier, now)
        return link_logins(store, pool, public, region=region, now=now).identity
    if not pool.config.allow_unauthenticated:
        raise NotAuthorizedException(messages.UNAUTHENTICATED_NOT_SUPPORTED)
    identity = store.create_unauthenticated(pool_id, new_resource_id(region), now)
    if identity is None:  # the pool was deleted meanwhile
        raise ResourceNotFoundException(messages.POOL_NOT_FOUND.format(pool_id=pool_id))
    return identity


def _refuse_developer_login(pool: IdentityPool, logins: Mapping[str, str], operation: str) -> None:
    developer = pool.config.developer_provider_name
    if developer is not None and developer in logins:
        raise NotAuthorizedException(
            messages.DEVELOPER_LOGIN_NOT_HERE.format(developer=developer, operation=operation)
        )
    known = pool.provider_names() | {COGNITO_PROVIDER}
    for provider in logins:
        if provider not in known:
            raise NotAuthorizedException(messages.NOT_A_PROVIDER)


def authenticate(
    store: IdentityStore,
    *,
    identity_id: str,
    logins: Mapping[str, str],
    verify: Verifier,
    limit_pool: PoolLimit,
    verifier: LoginVerifier,
    region: str,
    now: float,
    operation: str = "GetOpenIdToken",
) -> Access:
    """Decide whether a public call may act for the identity (GetOpenIdToken, UnlinkIdentity).

    An identity holding logins must be proven by the call: public-provider tokens (verified,
    then linked to it in one step, merging any other identity holding them into it; the
    identity must already hold one of them, or hold none while no other does), or a valid
    broker token whose sub is the identity, whose aud is its pool and whose logins are still
    linked to it. An identity without logins needs nothing (or its own unauthenticated
    token) and a pool that allows unauthenticated identities. A disabled identity is
    forbidden: the source of a merge, and an identity whose last login was unlinked (the
    store disables it then, so an identity without logins that is still enabled never had
    one).
    """
    identity = store.get_identity(identity_id)
    pool = None if identity is None else store.get_pool(identity.pool_id)
    if identity is None or pool is None:
        raise ResourceNotFoundException(messages.IDENTITY_NOT_FOUND.format(identity_id=identity_id))
    limit_pool(pool.id)  # before a presented token costs a signature check
    if identity.disabled:
        raise NotAuthorizedException(messages.FORBIDDEN.format(identity_id=identity_id))
    _refuse_developer_login(pool, logins, operation)
    presented: Mapping[str, Any] = {}
    if COGNITO_PROVIDER in logins:
        try:
            presented = verify(logins[COGNITO_PROVIDER])
        except ValueError as exc:
            raise NotAuthorizedException(messages.INVALID_LOGIN.format(reason=exc)) from None
        if presented.get("sub") != identity.id or presented.get("aud") != pool.id:
            raise NotAuthorizedException(
                messages.LOGIN_NOT_FOR_IDENTITY.format(identity_id=identity_id)
            )
    login, named = _presented_logins(presented, pool)
    if presented.get("amr") != ["unauthenticated"] and presented and login is None and not named:
        raise NotAuthorizedException(messages.LOGINS_DONT_MATCH)
    held = set(identity.logins)
    if login is not None and login_key(*login) not in held:
        raise NotAuthorizedException(messages.LOGINS_DONT_MATCH)
    if any(p.key not in held for p in named):
        raise NotAuthorizedException(messages.LOGINS_DONT_MATCH)
    others = {name: token for name, token in logins.items() if name != COGNITO_PROVIDER}
    proven = verify_public_logins(pool, others, verifier, now)
    if proven:  # every check passed: only now may the call link (or merge) anything
        identity = link_logins(
            store, pool, proven, region=region, now=now, named=identity.id
        ).identity
    public = tuple(dict.fromkeys([*proven, *named]))
    if login is not None or public:
        claims = {proof.provider: proof.claims for proof in proven}
        return Access(
            pool=pool,
            identity=identity,
            login=login,
            presented=presented,
            public=public,
            claims=claims,
        )
    if identity.logins:
        raise NotAuthorizedException(messages.LOGINS_DONT_MATCH)
    if not pool.config.allow_unauthenticated:
        raise NotAuthorizedException(messages.UNAUTHENTICATED_NOT_SUPPORTED)
    return Access(pool=pool, identity=identity, login=None, presented=presented)


def _presented_logins(
    claims: Mapping[str, Any], pool: IdentityPool
) -> tuple[tuple[str, str] | None, list[PublicLogin]]:
    """The logins an authenticated broker token names in its ``amr``
    (``["authenticated", P, "P:<pool>:u", ...]``, ``P:CognitoSignIn:sub`` for a user pool):
    the developer login (D, u), if one, and the public ones. Anything else names none."""
    amr = claims.get("amr")
    if not (isinstance(amr, list) and len(amr) >= 3 and len(amr) % 2 == 1):
        return None, []
    if amr[0] != "authenticated" or not all(isinstance(part, str) for part in amr):
        return None, []
    developer = pool.config.developer_provider_name
    user_pools = user_pool_names(pool)
    login: tuple[str, str] | None = None
    public: list[PublicLogin] = []
    for provider, qualified in zip(amr[1::2], amr[2::2], strict=True):
        middle = USER_POOL_SIGN_IN if provider in user_pools else pool.id
        prefix = f"{provider}:{middle}:"
        if not qualified.startswith(prefix):
            return None, []
        user = qualified[len(prefix) :]
        if provider == developer and login is None:
            login = (provider, user)
        else:
            public.append(PublicLogin(provider, user, provider in user_pools))
    return login, public


def unlink_identity(
    store: IdentityStore,
    *,
    identity_id: str,
    logins: Mapping[str, str],
    logins_to_remove: Sequence[str],
    verify: Verifier,
    limit_pool: PoolLimit,
    verifier: LoginVerifier,
    region: str,
    now: float,
) -> None:
    """UnlinkIdentity: Logins must prove the identity (as for GetOpenIdToken); then each
    provider of LoginsToRemove is unlinked from it, one atomic step each. The developer
    provider's logins are refused (UnlinkDeveloperIdentity removes them); a provider the
    identity does not hold is nothing to do. An identity left without logins is disabled by
    the store, as after UnlinkDeveloperIdentity."""
    access = authenticate(
        store,
        identity_id=identity_id,
        logins=logins,
        verify=verify,
        limit_pool=limit_pool,
        verifier=verifier,
        region=region,
        now=now,
        operation="UnlinkIdentity",
    )
    developer = access.pool.config.developer_provider_name
    for provider in logins_to_remove:
        if provider == developer:
            raise InvalidParameterException(
                messages.UNLINK_DEVELOPER_ELSEWHERE.format(developer=developer)
            )
    removed = set(logins_to_remove)
    for key in access.identity.logins:
        if split_login_key(key)[0] not in removed:
            continue
        outcome, _ = store.unlink_login(access.pool.id, access.identity.id, key, now)
        if outcome is not UnlinkOutcome.NOT_LINKED:  # unlinked meanwhile: nothing to do
            raise_for(UNLINK_ERRORS, outcome, pool_id=access.pool.id, identity_id=identity_id)


#: Signs the broker's OpenID token for a call ``authenticate`` accepted, as GetOpenIdToken
#: would answer it (``broker.awsjson.public_handlers.token_for``).
TokenFor = Callable[[Access], str]


def get_credentials_for_identity(
    store: IdentityStore,
    *,
    identity_id: str,
    logins: Mapping[str, str],
    custom_role_arn: str | None,
    verify: Verifier,
    limit_pool: PoolLimit,
    verifier: LoginVerifier,
    region: str,
    now: float,
    token_for: TokenFor,
    sts: RoleAssumer,
) -> tuple[Access, Credentials]:
    """GetCredentialsForIdentity (contract section 10): the caller proves the identity as
    for GetOpenIdToken (``authenticate``), the role is chosen from the pool's roles and
    role mappings (``broker.identity.roles``: CustomRoleArn only where the
    mapping allows it), and STS exchanges a token the broker signs for the identity for
    that role's credentials. The role is chosen before anything is signed or sent, so a
    pool without roles, or a mapping that denies, costs no STS call."""
    access = authenticate(
        store,
        identity_id=identity_id,
        logins=logins,
        verify=verify,
        limit_pool=limit_pool,
        verifier=verifier,
        region=region,
        now=now,
        operation="GetCredentialsForIdentity",
    )
    credentials = assume_pool_role(
        store,
        sts,
        pool_id=access.pool.id,
        call=access,
        custom_role_arn=custom_role_arn,
        token=lambda: token_for(access),
    )
    return access, credentials


def assume_pool_role(
    store: IdentityStore,
    sts: RoleAssumer,
    *,
    pool_id: str,
    call: ProvenCall,
    custom_role_arn: str | None,
    token: Callable[[], str],
) -> Credentials:
    """The credentials of the role the pool's roles and mappings choose for ``call``, from
    STS for ``token()``. The role is chosen first: no token is signed and STS is not asked
    when there is none (InvalidIdentityPoolConfigurationException) or a mapping denies.
    GetCredentialsForIdentity and the backend door's ``POST /v1/credentials`` both end here."""
    roles = store.get_pool_roles(pool_id) or PoolRoles()
    role = role_for_call(roles, call, custom_role_arn)
    return sts.assume_role(role, token())
