"""Operation name -> handler: the explicit dispatch table of the AWS JSON front door.

An operation absent from this table is answered with UnknownOperationException. ``signed``
is False only for the operations Cognito serves without SigV4 (contract section 2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from broker.awsjson import developer_handlers as developer
from broker.awsjson import pool_handlers as pools
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
}
