"""Developer identity lifecycle operations (contract section 7): LookupDeveloperIdentity,
MergeDeveloperIdentities, UnlinkDeveloperIdentity, DescribeIdentity, ListIdentities and
DeleteIdentities. Request members in, AWS output shapes out."""

from __future__ import annotations

from typing import Any

from broker.identity import lifecycle, lookup
from broker.identity.models import Identity
from broker.services import Services
from config.aws_model import MAX_RESULTS

#: NextToken kinds: a token of one listing is refused by every other.
IDENTITY_LIST_KIND = "identities"
USER_ID_LIST_KIND = "developer-user-ids"


def identity_output(identity: Identity) -> dict[str, Any]:
    """IdentityDescription: provider names only, never user ids (contract section 7)."""
    out: dict[str, Any] = {"IdentityId": identity.id}
    providers = identity.provider_names()
    if providers:
        out["Logins"] = providers
    out["CreationDate"] = identity.created
    out["LastModifiedDate"] = identity.modified
    return out


def lookup_developer_identity(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    pool_id = p["identity_pool_id"]
    developer, identity = lookup.find_developer_identity(
        svc.store,
        pool_id=pool_id,
        identity_id=p.get("identity_id"),
        user_id=p.get("developer_user_identifier"),
    )
    scope = f"{pool_id}/{identity.id}"
    token = p.get("next_token")
    after = svc.pages.decode_text(token, USER_ID_LIST_KIND, scope) if token else None
    page = lookup.page_user_ids(
        identity, developer, after=after, limit=p.get("max_results", MAX_RESULTS)
    )
    out: dict[str, Any] = {
        "IdentityId": identity.id,
        "DeveloperUserIdentifierList": page.user_ids,
    }
    if page.after is not None:
        out["NextToken"] = svc.pages.encode(USER_ID_LIST_KIND, scope, page.after)
    return out


def merge_developer_identities(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    identity = lifecycle.merge_developer_identities(
        svc.store,
        pool_id=p["identity_pool_id"],
        provider=p["developer_provider_name"],
        source_user=p["source_user_identifier"],
        destination_user=p["destination_user_identifier"],
        now=svc.clock(),
    )
    return {"IdentityId": identity.id}


def unlink_developer_identity(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    lifecycle.unlink_developer_identity(
        svc.store,
        pool_id=p["identity_pool_id"],
        identity_id=p["identity_id"],
        provider=p["developer_provider_name"],
        user_id=p["developer_user_identifier"],
        now=svc.clock(),
    )
    return {}


def describe_identity(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    return identity_output(lookup.describe_identity(svc.store, p["identity_id"]))


def list_identities(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    pool_id = p["identity_pool_id"]
    token = p.get("next_token")
    after = svc.pages.decode(token, IDENTITY_LIST_KIND, pool_id) if token else None
    page = lookup.list_identities(
        svc.store,
        pool_id,
        after=after,
        limit=p["max_results"],
        hide_disabled=p.get("hide_disabled", False),
    )
    out: dict[str, Any] = {
        "IdentityPoolId": pool_id,
        "Identities": [identity_output(identity) for identity in page.items],
    }
    if page.after is not None:
        out["NextToken"] = svc.pages.encode(IDENTITY_LIST_KIND, pool_id, page.after)
    return out


def delete_identities(svc: Services, p: dict[str, Any]) -> dict[str, Any]:
    unprocessed = lifecycle.delete_identities(svc.store, p["identity_ids_to_delete"])
    return {"UnprocessedIdentityIds": unprocessed}
