"""boto3 clients for a broker the tests started, and the pool most tests make with one."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.config

from support.processes import BrokerServer

REGION = "us-east-1"


def cognito_client(server: BrokerServer, **config: Any) -> Any:
    """A ``cognito-identity`` client at ``server`` with its first key pair and no retries
    (so a test sees every error); ``config`` adds botocore Config options. Each call makes
    its own session: boto3 sessions are not to be shared between threads."""
    session = boto3.session.Session(
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        region_name=REGION,
    )
    return session.client(
        "cognito-identity",
        endpoint_url=server.url,
        config=botocore.config.Config(retries={"max_attempts": 1}, **config),
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
