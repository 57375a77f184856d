"""boto3 clients for a broker the tests started."""

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
