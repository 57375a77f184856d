"""Identity pool operations: AWS request members in, AWS output shapes out (contract §4)."""

from __future__ import annotations

from typing import Any

from broker.identity import pools
from broker.identity.models import IdentityPool, PoolConfig
from broker.services import Services

POOL_LIST_KIND = "pools"


def pool_config(p: dict[str, Any]) -> PoolConfig:
    return PoolConfig(
        name=p["identity_pool_name"],
        allow_unauthenticated=p["allow_unauthenticated_identities"],
        allow_classic_flow=p.get("allow_classic_flow", False),
        supported_login_providers=p.get("supported_login_providers", {}),
        developer_provider_name=p.get("developer_provider_name"),
        open_id_connect_provider_arns=tuple(p.get("open_id_connect_provider_arns", ())),
        cognito_identity_providers=tuple(p.get("cognito_identity_providers", ())),
        saml_provider_arns=tuple(p.get("saml_provider_arns", ())),
        tags=p.get("identity_pool_tags", {}),
    )


def pool_output(pool: IdentityPool) -> dict[str, Any]:
    c = pool.config
    out: dict[str, Any] = {
        "IdentityPoolId": pool.id,
        "IdentityPoolName": c.name,
        "AllowUnauthenticatedIdentities": c.allow_unauthenticated,
        "AllowClassicFlow": c.allow_classic_flow,
    }
    optional: dict[str, Any] = {
        "SupportedLoginProviders": dict(c.supported_login_providers),
        "DeveloperProviderName": c.developer_provider_name,
        "OpenIdConnectProviderARNs": list(c.open_id_connect_provider_arns),
        "CognitoIdentityProviders": [dict(p) for p in c.cognito_identity_providers],
        "SamlProviderARNs": list(c.saml_provider_arns),
        "IdentityPoolTags": dict(c.tags),
    }
    out.update({name: value for name, value in optional.items() if value})
    return out


def create_identity_pool(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    pool = pools.create_pool(
        svc.store,
        pool_config(p),
        region=svc.settings.region,
        max_pools=svc.settings.max_pools,
        now=svc.clock(),
    )
    return pool_output(pool)


def describe_identity_pool(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    return pool_output(pools.describe_pool(svc.store, p["identity_pool_id"]))


def update_identity_pool(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    """IdentityPoolTags left out keeps the pool's tags; given (even ``{}``) replaces them."""
    replace_tags = "identity_pool_tags" in p
    return pool_output(
        pools.update_pool(
            svc.store, p["identity_pool_id"], pool_config(p), replace_tags=replace_tags
        )
    )


def delete_identity_pool(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    pools.delete_pool(svc.store, p["identity_pool_id"])
    return {}


def list_identity_pools(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    token = p.get("next_token")
    after = svc.pages.decode(token, POOL_LIST_KIND, "") if token else None
    page = pools.list_pools(svc.store, after=after, limit=p["max_results"])
    out: dict[str, Any] = {
        "IdentityPools": [
            {"IdentityPoolId": pool.id, "IdentityPoolName": pool.name} for pool in page.items
        ]
    }
    if page.after is not None:
        out["NextToken"] = svc.pages.encode(POOL_LIST_KIND, "", page.after)
    return out
