"""Operation name -> handler: the explicit dispatch table of the AWS JSON front door.

An operation absent from this table is answered with UnknownOperationException. ``signed``
is False only for the operations Cognito serves without SigV4 (contract section 2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from broker.awsjson import developer_handlers as developer
from broker.awsjson import lifecycle_handlers as lifecycle
from broker.awsjson import pool_handlers as pools
from broker.awsjson import pool_settings_handlers as settings
from broker.awsjson import public_handlers as public
from broker.services import Services

TARGET_PREFIX = "AWSCognitoIdentityService"

Handler = Callable[[Services, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Operation:
    handler: Handler
    signed: bool = True


OPERATIONS: dict[str, Operation] = {
    "CreateIdentityPool": Operation(pools.create_identity_pool),
    "DescribeIdentityPool": Operation(pools.describe_identity_pool),
    "UpdateIdentityPool": Operation(pools.update_identity_pool),
    "ListIdentityPools": Operation(pools.list_identity_pools),
    "DeleteIdentityPool": Operation(pools.delete_identity_pool),
    "GetOpenIdTokenForDeveloperIdentity": Operation(
        developer.get_open_id_token_for_developer_identity
    ),
    "LookupDeveloperIdentity": Operation(lifecycle.lookup_developer_identity),
    "MergeDeveloperIdentities": Operation(lifecycle.merge_developer_identities),
    "UnlinkDeveloperIdentity": Operation(lifecycle.unlink_developer_identity),
    "DescribeIdentity": Operation(lifecycle.describe_identity),
    "ListIdentities": Operation(lifecycle.list_identities),
    "DeleteIdentities": Operation(lifecycle.delete_identities),
    "GetId": Operation(public.get_id, signed=False),
    "GetOpenIdToken": Operation(public.get_open_id_token, signed=False),
    "UnlinkIdentity": Operation(public.unlink_identity, signed=False),
    "GetCredentialsForIdentity": Operation(public.get_credentials_for_identity, signed=False),
    "SetIdentityPoolRoles": Operation(settings.set_identity_pool_roles),
    "GetIdentityPoolRoles": Operation(settings.get_identity_pool_roles),
    "SetPrincipalTagAttributeMap": Operation(settings.set_principal_tag_attribute_map),
    "GetPrincipalTagAttributeMap": Operation(settings.get_principal_tag_attribute_map),
    "TagResource": Operation(settings.tag_resource),
    "UntagResource": Operation(settings.untag_resource),
    "ListTagsForResource": Operation(settings.list_tags_for_resource),
}
