"""Pool settings and tags (contract section 7): Set/GetIdentityPoolRoles,
Set/GetPrincipalTagAttributeMap, TagResource, UntagResource, ListTagsForResource."""

from __future__ import annotations

from typing import Any

from broker.identity import pool_settings
from broker.identity.models import PrincipalTagMap
from broker.services import Services


def set_identity_pool_roles(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    pool_settings.set_pool_roles(
        svc.store, p["identity_pool_id"], p["roles"], p.get("role_mappings", {})
    )
    return {}


def get_identity_pool_roles(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    pool_id = p["identity_pool_id"]
    roles = pool_settings.get_pool_roles(svc.store, pool_id)
    out: dict[str, Any] = {"IdentityPoolId": pool_id}
    if roles.roles:
        out["Roles"] = dict(roles.roles)
    if roles.role_mappings:
        out["RoleMappings"] = dict(roles.role_mappings)
    return out


def _tag_map_output(pool_id: str, provider: str, tag_map: PrincipalTagMap) -> dict[str, Any]:
    out: dict[str, Any] = {
        "IdentityPoolId": pool_id,
        "IdentityProviderName": provider,
        "UseDefaults": tag_map.use_defaults,
    }
    if tag_map.principal_tags:
        out["PrincipalTags"] = dict(tag_map.principal_tags)
    return out


def set_principal_tag_attribute_map(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    pool_id, provider = p["identity_pool_id"], p["identity_provider_name"]
    tag_map = PrincipalTagMap(
        use_defaults=p.get("use_defaults", False), principal_tags=p.get("principal_tags", {})
    )
    stored = pool_settings.set_principal_tag_map(svc.store, pool_id, provider, tag_map)
    return _tag_map_output(pool_id, provider, stored)


def get_principal_tag_attribute_map(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    pool_id, provider = p["identity_pool_id"], p["identity_provider_name"]
    tag_map = pool_settings.get_principal_tag_map(svc.store, pool_id, provider)
    return _tag_map_output(pool_id, provider, tag_map)


def _pool_of(svc: Services, p: dict[str, Any]) -> str:
    return pool_settings.pool_of_arn(
        p["resource_arn"], region=svc.settings.region, account_id=svc.settings.account_id
    )


def tag_resource(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    pool_settings.tag_pool(svc.store, _pool_of(svc, p), p["tags"])
    return {}


def untag_resource(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    pool_settings.untag_pool(svc.store, _pool_of(svc, p), p["tag_keys"])
    return {}


def list_tags_for_resource(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    return {"Tags": dict(pool_settings.list_tags(svc.store, _pool_of(svc, p)))}
