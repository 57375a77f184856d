"""The unsigned operations (contract sections 2, 7 and 10): GetId, GetOpenIdToken,
UnlinkIdentity and GetCredentialsForIdentity.

Each is limited per source address by the door and, once its pool is found, per pool here
(``config/limits.py``). GetCredentialsForIdentity and GetOpenIdToken also count toward the
identity's token limit: both sign a token for it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from broker import blocking
from broker.identity import public
from broker.identity.linking import PublicLogin
from broker.services import Services
from broker.tokens.claims import OPEN_ID_TOKEN_DURATION, AmrLogin, principal_tags_of
from broker.tokens.verify import UnknownSigningKey, verify_token


def _verifier(svc: Services) -> public.Verifier:
    """Verify against the keys this process publishes; a kid it does not know yet is looked
    up once more, since another process may have just rotated it in. That reload goes
    through the ring, which allows one a second: the operation is unsigned, so unknown
    kids must not each cost Redis reads (or a key generation)."""

    def verify(token: str) -> Mapping[str, Any]:
        issuer, now = svc.settings.issuer, svc.clock()
        try:
            return verify_token(token, svc.keyring.published(), issuer=issuer, now=now)
        except UnknownSigningKey:
            return verify_token(token, svc.keyring.refresh(), issuer=issuer, now=now)

    return verify


def get_id(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    identity = public.get_id(
        svc.store,
        pool_id=p["identity_pool_id"],
        account_id=p.get("account_id"),
        logins=p.get("logins", {}),
        broker_account_id=svc.settings.account_id,
        region=svc.settings.region,
        now=svc.clock(),
        limit_pool=svc.limits.check_unsigned_pool,
        verifier=svc.logins,
    )
    return {"IdentityId": identity.id}


def get_open_id_token(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    """A fresh token for the identity, valid 600 s as AWS's GetOpenIdToken tokens are."""
    now = svc.clock()
    access = public.authenticate(
        svc.store,
        identity_id=p["identity_id"],
        logins=p.get("logins", {}),
        verify=_verifier(svc),
        limit_pool=svc.limits.check_unsigned_pool,
        verifier=svc.logins,
        region=svc.settings.region,
        now=now,
    )
    return {"IdentityId": access.identity.id, "Token": token_for(svc, now)(access)}


def token_for(svc: Services, now: float) -> public.TokenFor:
    """Signs the token GetOpenIdToken answers for an accepted call; an authenticated one
    names the logins the call proved (its public logins, and those of the token presented)
    and keeps the presented token's principal tags. Counts toward the identity's token
    limit first (as for developers)."""

    def sign(access: public.Access) -> str:
        svc.limits.check_identity(access.identity.id)
        pool_id = access.pool.id
        if not access.authenticated:
            return svc.tokens.unauthenticated(
                pool_id=pool_id, identity_id=access.identity.id, issued_at=int(now)
            )
        provider, user_id = access.login or ("", "")
        return svc.tokens.developer(
            pool_id=pool_id,
            identity_id=access.identity.id,
            provider=provider,
            user_id=user_id,
            issued_at=int(now),
            duration=OPEN_ID_TOKEN_DURATION,
            principal_tags=principal_tags_of(access.presented),
            also=amr_of(access.public),
        )

    return sign


def amr_of(logins: Iterable[PublicLogin]) -> list[AmrLogin]:
    """Public logins as a token's ``amr`` names them."""
    return [AmrLogin(login.provider, login.subject, login.user_pool) for login in logins]


def unlink_identity(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    public.unlink_identity(
        svc.store,
        identity_id=p["identity_id"],
        logins=p["logins"],
        logins_to_remove=p["logins_to_remove"],
        verify=_verifier(svc),
        limit_pool=svc.limits.check_unsigned_pool,
        verifier=svc.logins,
        region=svc.settings.region,
        now=svc.clock(),
    )
    return {}


def get_credentials_for_identity(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    """AWS credentials from STS for the identity (contract section 10). STS is waited on
    for every call, so ``broker.blocking.check()`` comes first, before anything is counted
    or linked (the keep-alive worker sends this operation to a thread at once anyway:
    ``broker.app.factory.AWS_WAITING_OPERATIONS``)."""
    blocking.check()
    now = svc.clock()
    access, credentials = public.get_credentials_for_identity(
        svc.store,
        identity_id=p["identity_id"],
        logins=p.get("logins", {}),
        custom_role_arn=p.get("custom_role_arn"),
        verify=_verifier(svc),
        limit_pool=svc.limits.check_unsigned_pool,
        verifier=svc.logins,
        region=svc.settings.region,
        now=now,
        token_for=token_for(svc, now),
        sts=svc.sts,
    )
    return {
        "IdentityId": access.identity.id,
        "Credentials": {
            "AccessKeyId": credentials.access_key_id,
            "SecretKey": credentials.secret_key,
            "SessionToken": credentials.session_token,
            "Expiration": credentials.expiration,
        },
    }
