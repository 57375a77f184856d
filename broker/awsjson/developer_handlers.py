"""GetOpenIdTokenForDeveloperIdentity (contract sections 5 and 6)."""

from __future__ import annotations

from typing import Any

from broker.awsjson.public_handlers import amr_of
from broker.identity.developer import resolve_developer_login
from broker.observability import metrics
from broker.services import Services
from broker.tokens.claims import DEFAULT_TOKEN_DURATION


def get_open_id_token_for_developer_identity(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    now = svc.clock()
    pool_id = p["identity_pool_id"]
    resolved = resolve_developer_login(
        svc.store,
        pool_id=pool_id,
        logins=p["logins"],
        identity_id=p.get("identity_id"),
        region=svc.settings.region,
        now=now,
        providers=svc.providers,
        verifier=svc.logins,
    )
    svc.limits.check_identity(resolved.identity.id)
    token = svc.tokens.developer(
        pool_id=pool_id,
        identity_id=resolved.identity.id,
        provider=resolved.provider,
        user_id=resolved.user_id,
        issued_at=int(now),
        duration=p.get("token_duration", DEFAULT_TOKEN_DURATION),
        principal_tags=p.get("principal_tags"),
        also=amr_of(resolved.public),
    )
    metrics.count_token("aws", new_identity=resolved.created)
    return {"IdentityId": resolved.identity.id, "Token": token}
