"""Helpers shared by the identity lifecycle tests: boto3 calls, error triples, listings, an
unsigned client, pools made for one block of a test, and the consistency checker run
against the session's Redis."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.config
import pytest
from botocore import UNSIGNED
from botocore.exceptions import ClientError

from broker.store.checker import check_store

DEVELOPER_PROVIDER = "login.example.dev"  # as conftest's pool fixture
REGION = "us-east-1"


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = exc.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def developer_token(cognito: Any, pool_id: str, user: str, **extra: Any) -> dict[str, Any]:
    response: dict[str, Any] = cognito.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: user}, **extra
    )
    return response


def identity_of(cognito: Any, pool_id: str, user: str) -> str:
    return str(developer_token(cognito, pool_id, user)["IdentityId"])


def merge(cognito: Any, pool_id: str, source: str, destination: str) -> str:
    response = cognito.merge_developer_identities(
        SourceUserIdentifier=source,
        DestinationUserIdentifier=destination,
        DeveloperProviderName=DEVELOPER_PROVIDER,
        IdentityPoolId=pool_id,
    )
    return str(response["IdentityId"])


def list_all(cognito: Any, pool_id: str, page_size: int = 60, **extra: Any) -> list[dict[str, Any]]:
    """Every identity of the pool, following NextToken; asserts pages stay within size."""
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"IdentityPoolId": pool_id, "MaxResults": page_size, **extra}
    while True:
        page = cognito.list_identities(**kwargs)
        assert len(page["Identities"]) <= page_size
        found.extend(page["Identities"])
        if "NextToken" not in page:
            return found
        kwargs["NextToken"] = page["NextToken"]


@contextmanager
def temporary_pool(cognito: Any, **create: Any) -> Iterator[str]:
    """A pool made with these CreateIdentityPool parameters for the ``with`` block (its id),
    deleted when the block ends, however it ends."""
    pool_id = str(cognito.create_identity_pool(**create)["IdentityPoolId"])
    try:
        yield pool_id
    finally:
        cognito.delete_identity_pool(IdentityPoolId=pool_id)


def unsigned_client(url: str, **config: Any) -> Any:
    """A boto3 client that signs nothing, as an app without developer credentials calls
    (no retries; ``config`` adds botocore Config options)."""
    return boto3.session.Session(region_name=REGION).client(
        "cognito-identity",
        endpoint_url=url,
        config=botocore.config.Config(
            signature_version=UNSIGNED, retries={"max_attempts": 1, "mode": "standard"}, **config
        ),
    )


def assert_consistent(redis_url_client: Any, *pool_ids: str) -> None:
    """The checker finds nothing in these pools (and the index entries naming them)."""
    report = check_store(redis_url_client, pool_ids)
    assert report.clean, "\n".join(str(problem) for problem in report.problems)
