"""Identity pools over boto3 against the live broker (contract section 4)."""

from __future__ import annotations

import base64
import threading
import uuid
from typing import Any

import botocore.config
import pytest
from botocore.exceptions import ClientError
from conftest import DEVELOPER_PROVIDER, REGION
from support import layout
from support.identities import error_of, temporary_pool
from support.processes import BrokerServer
from support.topologies import Topology

pytestmark = pytest.mark.every_topology


def new_name() -> str:
    return f"pool_{uuid.uuid4().hex[:12]}"


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
    with temporary_pool(
        cognito, IdentityPoolName=new_name(), AllowUnauthenticatedIdentities=False
    ) as pool_id:
        updated = cognito.update_identity_pool(
            IdentityPoolId=pool_id,
            IdentityPoolName="named",
            AllowUnauthenticatedIdentities=False,
            DeveloperProviderName="login.late",
        )
        assert updated["DeveloperProviderName"] == "login.late"


RACERS = 12
RACE_ROUNDS = 5


def race_updates(clients: list[Any], pool_id: str) -> list[tuple[str, str]]:
    """Every client updates the pool at once, each with its own DeveloperProviderName;
    returns (the value asked for, "set:<value answered>" or the error code) per client."""
    barrier = threading.Barrier(len(clients))
    answers: list[tuple[str, str]] = []

    def update(client: Any, developer: str) -> None:
        barrier.wait()
        try:
            response = client.update_identity_pool(
                IdentityPoolId=pool_id,
                IdentityPoolName="raced",
                AllowUnauthenticatedIdentities=False,
                DeveloperProviderName=developer,
            )
            answers.append((developer, "set:" + response["DeveloperProviderName"]))
        except ClientError as exc:
            answers.append((developer, exc.response["Error"]["Code"]))

    threads = [
        threading.Thread(target=update, args=(client, f"login.racer{n}"))
        for n, client in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def test_racing_updates_set_the_developer_provider_once(
    broker_server: BrokerServer, boto_session: Any
) -> None:
    """Threads race UpdateIdentityPool with different DeveloperProviderName on a pool that
    has none (contract 4: once set it never changes): exactly one value wins; every other
    call either succeeded with that same value or got InvalidParameterException."""
    config = botocore.config.Config(retries={"max_attempts": 1}, read_timeout=30)
    clients = [
        boto_session.client("cognito-identity", endpoint_url=broker_server.url, config=config)
        for _ in range(RACERS)
    ]
    for _ in range(RACE_ROUNDS):
        pool_id = clients[0].create_identity_pool(
            IdentityPoolName=new_name(), AllowUnauthenticatedIdentities=False
        )["IdentityPoolId"]
        try:
            answers = race_updates(clients, pool_id)
            won = clients[0].describe_identity_pool(IdentityPoolId=pool_id)["DeveloperProviderName"]
            assert len(answers) == RACERS
            for developer, answer in answers:
                expected = f"set:{won}" if developer == won else "InvalidParameterException"
                assert answer == expected, (developer, won)
        finally:
            clients[0].delete_identity_pool(IdentityPoolId=pool_id)


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


def test_delete_removes_the_pool_and_its_identities(cognito: Any, store: Topology) -> None:
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

    with store.client() as client:
        left = list(client.scan_iter(match=f"*{pool_id}*"))
        assert left == []
        assert client.zscore(layout.POOL_INDEX, pool_id) is None
        assert client.hget(layout.POOL_NAMES, pool_id) is None
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


def flipped(token: str, index: int) -> str:
    """The token with one bit of its decoded bytes flipped, re-encoded the same way."""
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_a_next_token_with_a_flipped_bit_is_refused(cognito: Any) -> None:
    made = [
        cognito.create_identity_pool(
            IdentityPoolName=new_name(), AllowUnauthenticatedIdentities=False
        )["IdentityPoolId"]
        for _ in range(2)
    ]
    try:
        token = cognito.list_identity_pools(MaxResults=1)["NextToken"]
        size = len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        for index in (0, 11, 12, size // 2, size - 1):  # nonce, sealed position, tag
            with pytest.raises(ClientError) as exc:
                cognito.list_identity_pools(MaxResults=1, NextToken=flipped(token, index))
            assert error_of(exc)[:2] == ("InvalidParameterException", 400)
        assert cognito.list_identity_pools(MaxResults=1, NextToken=token)["IdentityPools"]
    finally:
        for pool_id in made:
            cognito.delete_identity_pool(IdentityPoolId=pool_id)


def test_a_lookup_next_token_does_not_show_the_developer_user_id(
    cognito: Any, pool: dict[str, Any]
) -> None:
    """NextToken is opaque: LookupDeveloperIdentity's position (a developer user id) is
    sealed, not merely base64-encoded; a bit flipped anywhere in it is refused."""
    pool_id, user = pool["IdentityPoolId"], "secret-user-alice@example.com"
    identity = cognito.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: user}
    )["IdentityId"]
    cognito.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: "secret-user-bob"}
    )
    cognito.merge_developer_identities(
        SourceUserIdentifier="secret-user-bob",
        DestinationUserIdentifier=user,
        DeveloperProviderName=DEVELOPER_PROVIDER,
        IdentityPoolId=pool_id,
    )
    token = cognito.lookup_developer_identity(
        IdentityPoolId=pool_id, IdentityId=identity, MaxResults=1
    )["NextToken"]
    parts = [base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in token.split(".")]
    assert not any(b"secret-user" in part for part in parts)
    size = len(parts[0])
    for index in (0, 12, size - 1):
        with pytest.raises(ClientError) as exc:
            cognito.lookup_developer_identity(
                IdentityPoolId=pool_id, IdentityId=identity, NextToken=flipped(token, index)
            )
        assert error_of(exc)[:2] == ("InvalidParameterException", 400)
