"""boto3 clients for a broker the tests started, and the pool most tests make with one."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.config

from support.processes import BrokerServer

REGION = "us-east-1"


def cognito_client(server: BrokerServer, **config: Any) -> Any:
    """A ``cognito-identity`` client at ``server`` with its first key pair and no retries
    (so a test sees every error); ``config`` adds botocore Config options."""
    return cognito_at(
        server.url,
        server.access_key_id,
        server.secret_access_key,
        retries={"max_attempts": 1},
        **config,
    )


def cognito_at(endpoint: str, key_id: str, secret: str, **config: Any) -> Any:
    """A ``cognito-identity`` client at ``endpoint`` signing with ``key_id``/``secret``
    (botocore Config options in ``config``). Each call makes its own session: boto3
    sessions are not to be shared between threads."""
    session = boto3.session.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=REGION
    )
    return session.client(
        "cognito-identity", endpoint_url=endpoint, config=botocore.config.Config(**config)
    )


def create_developer_pool(client: Any, name: str, provider: str) -> str:
    """CreateIdentityPool through a boto3 ``client``: a pool named ``name`` with ``provider``
    as its developer provider and no unauthenticated identities. Returns its id."""
    pool: dict[str, Any] = client.create_identity_pool(
        IdentityPoolName=name,
        AllowUnauthenticatedIdentities=False,
        DeveloperProviderName=provider,
    )
    return str(pool["IdentityPoolId"])
