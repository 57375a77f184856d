"""The unsigned operations (contract sections 2 and 7): GetId, GetOpenIdToken,
UnlinkIdentity and GetCredentialsForIdentity's refusal.

Each is limited per source address by the door and, once its pool is found, per pool here
(``config/limits.py``). GetCredentialsForIdentity refuses at once, without reading the
identity, so only the address limit applies to it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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
    """A fresh token for the identity, valid 600 s as AWS's GetOpenIdToken tokens are; an
    authenticated one names the logins the call proved (its public logins, and those of the
    token presented) and keeps the presented token's principal tags."""
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
    svc.limits.check_identity(access.identity.id)  # tokens per identity, as for developers
    pool_id = access.pool.id
    if access.login is None and not access.public:
        token = svc.tokens.unauthenticated(
            pool_id=pool_id, identity_id=access.identity.id, issued_at=int(now)
        )
    else:
        provider, user_id = access.login or ("", "")
        token = svc.tokens.developer(
            pool_id=pool_id,
            identity_id=access.identity.id,
            provider=provider,
            user_id=user_id,
            issued_at=int(now),
            duration=OPEN_ID_TOKEN_DURATION,
            principal_tags=principal_tags_of(access.presented),
            also=amr_of(access.public),
        )
    return {"IdentityId": access.identity.id, "Token": token}


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
    public.get_credentials_for_identity()
