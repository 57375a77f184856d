"""Identity pools over boto3 against the live broker (contract section 4)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import DEVELOPER_PROVIDER, REGION


def new_name() -> str:
    return f"pool_{uuid.uuid4().hex[:12]}"


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = exc.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def test_create_returns_the_whole_pool_and_describe_agrees(cognito: Any) -> None:
    created = cognito.create_identity_pool(
        IdentityPoolName="My pool +=,.@-",
        AllowUnauthenticatedIdentities=True,
        AllowClassicFlow=True,
        DeveloperProviderName="login.acme",
        SupportedLoginProviders={"graph.facebook.com": "1234567890"},
        IdentityPoolTags={"env": "test", "empty": ""},
    )
    try:
        pool_id = created["IdentityPoolId"]
        region, _, rest = pool_id.partition(":")
        assert region == REGION
        assert uuid.UUID(rest).version == 4
        described = cognito.describe_identity_pool(IdentityPoolId=pool_id)
        for body in (created, described):
            body.pop("ResponseMetadata")
        assert described == created
        assert created == {
            "IdentityPoolId": pool_id,
            "IdentityPoolName": "My pool +=,.@-",
            "AllowUnauthenticatedIdentities": True,
            "AllowClassicFlow": True,
            "DeveloperProviderName": "login.acme",
            "SupportedLoginProviders": {"graph.facebook.com": "1234567890"},
            "IdentityPoolTags": {"env": "test", "empty": ""},
        }
    finally:
        cognito.delete_identity_pool(IdentityPoolId=created["IdentityPoolId"])


def test_update_resets_left_out_members_but_keeps_the_developer_provider(
    cognito: Any, pool: dict[str, Any]
) -> None:
    pool_id = pool["IdentityPoolId"]
    cognito.update_identity_pool(
        IdentityPoolId=pool_id,
        IdentityPoolName="renamed",
        AllowUnauthenticatedIdentities=True,
        SupportedLoginProviders={"accounts.google.com": "client-id"},
    )
    updated = cognito.update_identity_pool(
        IdentityPoolId=pool_id,
        IdentityPoolName="renamed again",
        AllowUnauthenticatedIdentities=False,
    )
    assert updated["IdentityPoolName"] == "renamed again"
    assert updated["AllowUnauthenticatedIdentities"] is False
    assert "SupportedLoginProviders" not in updated
    assert updated["DeveloperProviderName"] == DEVELOPER_PROVIDER
    assert cognito.describe_identity_pool(IdentityPoolId=pool_id)["IdentityPoolName"] == (
        "renamed again"
    )


def test_the_developer_provider_cannot_change_once_set(cognito: Any, pool: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as exc:
        cognito.update_identity_pool(
            IdentityPoolId=pool["IdentityPoolId"],
            IdentityPoolName="x",
            AllowUnauthenticatedIdentities=False,
            DeveloperProviderName="login.other",
        )
    code, status, message = error_of(exc)
    assert (code, status) == ("InvalidParameterException", 400)
    assert DEVELOPER_PROVIDER in message and "cannot be changed" in message


def test_a_pool_without_developer_provider_may_get_one(cognito: Any) -> None:
    pool_id = cognito.create_identity_pool(
        IdentityPoolName=new_name(), AllowUnauthenticatedIdentities=False
    )["IdentityPoolId"]
    try:
        updated = cognito.update_identity_pool(
            IdentityPoolId=pool_id,
            IdentityPoolName="named",
            AllowUnauthenticatedIdentities=False,
            DeveloperProviderName="login.late",
        )
        assert updated["DeveloperProviderName"] == "login.late"
    finally:
        cognito.delete_identity_pool(IdentityPoolId=pool_id)


@pytest.mark.parametrize("operation", ["describe", "update", "delete"])
def test_unknown_pool_is_resource_not_found(cognito: Any, operation: str) -> None:
    pool_id = f"{REGION}:{uuid.uuid4()}"
    calls = {
        "describe": lambda: cognito.describe_identity_pool(IdentityPoolId=pool_id),
        "update": lambda: cognito.update_identity_pool(
            IdentityPoolId=pool_id, IdentityPoolName="n", AllowUnauthenticatedIdentities=False
        ),
        "delete": lambda: cognito.delete_identity_pool(IdentityPoolId=pool_id),
    }
    with pytest.raises(ClientError) as exc:
        calls[operation]()
    assert error_of(exc) == (
        "ResourceNotFoundException",
        400,
        f"IdentityPool '{pool_id}' not found.",
    )


def test_delete_removes_the_pool_and_its_identities(cognito: Any, redis_server: Any) -> None:
    pool_id = cognito.create_identity_pool(
        IdentityPoolName=new_name(),
        AllowUnauthenticatedIdentities=False,
        DeveloperProviderName=DEVELOPER_PROVIDER,
    )["IdentityPoolId"]
    for user in ("a", "b", "c"):
        cognito.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: user}
        )
    cognito.delete_identity_pool(IdentityPoolId=pool_id)

    left = list(redis_server.client().scan_iter(match=f"*{pool_id}*"))
    assert left == []
    assert redis_server.client().zscore("ib:{pools}:index", pool_id) is None
    with pytest.raises(cognito.exceptions.ResourceNotFoundException):
        cognito.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: "a"}
        )


def test_list_pages_through_every_pool_once_with_the_paginator(cognito: Any) -> None:
    made = [
        cognito.create_identity_pool(
            IdentityPoolName=new_name(), AllowUnauthenticatedIdentities=False
        )["IdentityPoolId"]
        for _ in range(7)
    ]
    try:
        seen: list[str] = []
        pages = 0
        paginator = cognito.get_paginator("list_identity_pools")
        for page in paginator.paginate(PaginationConfig={"PageSize": 3}):
            pages += 1
            assert len(page["IdentityPools"]) <= 3
            seen.extend(p["IdentityPoolId"] for p in page["IdentityPools"])
        assert len(seen) == len(set(seen))
        assert set(made) <= set(seen)
        assert pages >= 3
    finally:
        for pool_id in made:
            cognito.delete_identity_pool(IdentityPoolId=pool_id)


@pytest.mark.parametrize(
    "token",
    ["forged", "eyJhIjoxfQ.AAAA", "x" * 300],
)
def test_a_forged_next_token_is_invalid_parameter(cognito: Any, token: str) -> None:
    with pytest.raises(ClientError) as exc:
        cognito.list_identity_pools(MaxResults=5, NextToken=token)
    code, status, _ = error_of(exc)
    assert (code, status) == ("InvalidParameterException", 400)


def test_a_next_token_with_a_changed_position_is_refused(cognito: Any) -> None:
    made = [
        cognito.create_identity_pool(
            IdentityPoolName=new_name(), AllowUnauthenticatedIdentities=False
        )["IdentityPoolId"]
        for _ in range(2)
    ]
    try:
        token = cognito.list_identity_pools(MaxResults=1)["NextToken"]
        payload, _, mac = token.partition(".")
        import base64
        import json

        raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        raw[2] = 0
        forged = base64.urlsafe_b64encode(json.dumps(raw).encode()).rstrip(b"=").decode()
        with pytest.raises(ClientError) as exc:
            cognito.list_identity_pools(MaxResults=1, NextToken=f"{forged}.{mac}")
        assert error_of(exc)[0] == "InvalidParameterException"
    finally:
        for pool_id in made:
            cognito.delete_identity_pool(IdentityPoolId=pool_id)
