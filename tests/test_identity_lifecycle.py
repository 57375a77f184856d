"""LookupDeveloperIdentity, MergeDeveloperIdentities, UnlinkDeveloperIdentity,
DescribeIdentity, ListIdentities and DeleteIdentities over boto3 against the live broker
(contract section 7); tokens checked by PyJWT; every test ends with the checker clean."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from support import oidc
from support.identities import (
    DEVELOPER_PROVIDER,
    REGION,
    assert_consistent,
    developer_token,
    error_of,
    identity_of,
    list_all,
    merge,
    temporary_pool,
)
from support.processes import BrokerServer
from support.topologies import Topology

pytestmark = pytest.mark.every_topology


@pytest.fixture
def pool_id(pool: dict[str, Any], store: Topology) -> Iterator[str]:
    """The test's pool; after the test the checker must find nothing in it."""
    yield pool["IdentityPoolId"]
    with store.client() as client:
        assert_consistent(client, pool["IdentityPoolId"])


def lookup(cognito: Any, pool_id: str, **kw: Any) -> dict[str, Any]:
    response: dict[str, Any] = cognito.lookup_developer_identity(IdentityPoolId=pool_id, **kw)
    return response


# --- LookupDeveloperIdentity -------------------------------------------------------------
def test_lookup_by_user_by_identity_and_by_both(cognito: Any, pool_id: str) -> None:
    identity = identity_of(cognito, pool_id, "ann")
    by_user = lookup(cognito, pool_id, DeveloperUserIdentifier="ann")
    by_identity = lookup(cognito, pool_id, IdentityId=identity)
    both = lookup(cognito, pool_id, IdentityId=identity, DeveloperUserIdentifier="ann")
    for response in (by_user, by_identity, both):
        assert response["IdentityId"] == identity
        assert response["DeveloperUserIdentifierList"] == ["ann"]
        assert "NextToken" not in response


@pytest.mark.parametrize(
    ("members", "code", "message"),
    [
        (
            {},
            "InvalidParameterException",
            "One of IdentityId or DeveloperUserIdentifier must be specified.",
        ),
        (
            {"DeveloperUserIdentifier": "nobody"},
            "ResourceNotFoundException",
            "The developer user identifier is not linked to any identity of identity pool "
            "'{pool}'.",
        ),
        (
            {"IdentityId": "us-east-1:00000000-0000-4000-8000-000000000000"},
            "ResourceNotFoundException",
            "Identity 'us-east-1:00000000-0000-4000-8000-000000000000' not found.",
        ),
        (
            {"IdentityId": "{ann}", "DeveloperUserIdentifier": "bob"},
            "ResourceConflictException",
            "The developer user identifier is not linked to Identity '{ann}'.",
        ),
        (
            {"IdentityId": "{ann}", "DeveloperUserIdentifier": "nobody"},
            "ResourceConflictException",
            "The developer user identifier is not linked to Identity '{ann}'.",
        ),
    ],
    ids=["neither", "unknown-user", "unknown-identity", "other-user", "unlinked-user"],
)
def test_lookup_errors(
    cognito: Any, pool_id: str, members: dict[str, str], code: str, message: str
) -> None:
    names = {"ann": identity_of(cognito, pool_id, "ann"), "pool": pool_id}
    identity_of(cognito, pool_id, "bob")
    members = {key: value.format(**names) for key, value in members.items()}
    with pytest.raises(ClientError) as exc:
        lookup(cognito, pool_id, **members)
    assert error_of(exc) == (code, 400, message.format(**names))


def test_lookup_in_an_unknown_pool_or_one_without_developer_provider(cognito: Any) -> None:
    unknown = f"{REGION}:{uuid.uuid4()}"
    with pytest.raises(ClientError) as exc:
        lookup(cognito, unknown, DeveloperUserIdentifier="x")
    assert error_of(exc) == (
        "ResourceNotFoundException",
        400,
        f"IdentityPool '{unknown}' not found.",
    )
    with temporary_pool(
        cognito, IdentityPoolName="no_developer", AllowUnauthenticatedIdentities=False
    ) as plain:
        with pytest.raises(ClientError) as exc:
            lookup(cognito, plain, DeveloperUserIdentifier="x")
        assert error_of(exc)[:2] == ("NotAuthorizedException", 400)


def test_lookup_pages_the_user_ids_of_a_merged_identity(cognito: Any, pool_id: str) -> None:
    users = [f"user-{n}" for n in range(5)]
    for user in users:
        identity_of(cognito, pool_id, user)
    for user in users[1:]:
        merge(cognito, pool_id, user, users[0])
    seen: list[str] = []
    pages = 0
    kwargs: dict[str, Any] = {"DeveloperUserIdentifier": "user-3", "MaxResults": 2}
    while True:
        page = lookup(cognito, pool_id, **kwargs)
        pages += 1
        assert len(page["DeveloperUserIdentifierList"]) <= 2
        seen.extend(page["DeveloperUserIdentifierList"])
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert pages == 3
    assert seen == sorted(users)


def test_a_lookup_walk_is_stable_while_user_ids_change(cognito: Any, pool_id: str) -> None:
    users = ["b", "d", "f", "h"]
    identity = identity_of(cognito, pool_id, "b")
    for user in users[1:]:
        identity_of(cognito, pool_id, user)
        merge(cognito, pool_id, user, "b")
    first = lookup(cognito, pool_id, IdentityId=identity, MaxResults=2)
    assert first["DeveloperUserIdentifierList"] == ["b", "d"]
    cognito.unlink_developer_identity(  # one already returned goes away
        IdentityId=identity,
        IdentityPoolId=pool_id,
        DeveloperProviderName=DEVELOPER_PROVIDER,
        DeveloperUserIdentifier="b",
    )
    identity_of(cognito, pool_id, "a")  # one joins before the position
    merge(cognito, pool_id, "a", "d")
    rest = lookup(cognito, pool_id, IdentityId=identity, MaxResults=2, NextToken=first["NextToken"])
    assert rest["DeveloperUserIdentifierList"] == ["f", "h"]
    assert "NextToken" not in rest


def test_lookup_refuses_forged_and_foreign_next_tokens(
    cognito: Any, pool_id: str, pool: dict[str, Any]
) -> None:
    for user in ("p", "q", "r"):
        identity_of(cognito, pool_id, user)
    merge(cognito, pool_id, "q", "p")
    other = identity_of(cognito, pool_id, "r")
    token = lookup(cognito, pool_id, DeveloperUserIdentifier="p", MaxResults=1)["NextToken"]
    list_token = cognito.list_identities(IdentityPoolId=pool_id, MaxResults=1)["NextToken"]
    for forged in ("forged", token[:-2] + "AA", list_token):
        with pytest.raises(ClientError) as exc:
            lookup(cognito, pool_id, DeveloperUserIdentifier="p", NextToken=forged)
        assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    with pytest.raises(ClientError) as exc:  # another identity's walk
        lookup(cognito, pool_id, IdentityId=other, NextToken=token)
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)


# --- MergeDeveloperIdentities ------------------------------------------------------------
def test_merge_moves_logins_and_disables_the_source(
    cognito: Any, pool_id: str, broker_server: BrokerServer
) -> None:
    source = identity_of(cognito, pool_id, "src-user")
    destination = identity_of(cognito, pool_id, "dst-user")

    assert merge(cognito, pool_id, "src-user", "dst-user") == destination

    for user in ("src-user", "dst-user"):
        response = developer_token(cognito, pool_id, user)
        _, claims = oidc.verify(broker_server.url, response["Token"], audience=pool_id)
        assert response["IdentityId"] == claims["sub"] == destination
    with pytest.raises(ClientError) as exc:
        developer_token(cognito, pool_id, "src-user", IdentityId=source)
    assert error_of(exc) == (
        "NotAuthorizedException",
        400,
        f"Access to Identity '{source}' is forbidden.",
    )
    described = cognito.describe_identity(IdentityId=destination)
    assert described["Logins"] == [DEVELOPER_PROVIDER]
    assert "Logins" not in cognito.describe_identity(IdentityId=source)
    assert sorted(
        lookup(cognito, pool_id, IdentityId=destination)["DeveloperUserIdentifierList"]
    ) == [
        "dst-user",
        "src-user",
    ]
    assert lookup(cognito, pool_id, IdentityId=source)["DeveloperUserIdentifierList"] == []
    assert lookup(cognito, pool_id, DeveloperUserIdentifier="src-user")["IdentityId"] == destination


def test_merge_carries_every_login_of_the_source_identity(cognito: Any, pool_id: str) -> None:
    for user in ("a", "b", "c"):
        identity_of(cognito, pool_id, user)
    merge(cognito, pool_id, "a", "b")
    final = merge(cognito, pool_id, "b", "c")  # b's identity holds a and b
    listed = lookup(cognito, pool_id, IdentityId=final)["DeveloperUserIdentifierList"]
    assert sorted(listed) == ["a", "b", "c"]
    assert {identity_of(cognito, pool_id, user) for user in ("a", "b", "c")} == {final}


def test_merging_users_of_one_identity_changes_nothing(cognito: Any, pool_id: str) -> None:
    identity = identity_of(cognito, pool_id, "same")
    before = cognito.describe_identity(IdentityId=identity)
    assert merge(cognito, pool_id, "same", "same") == identity
    after = cognito.describe_identity(IdentityId=identity)
    assert after["LastModifiedDate"] == before["LastModifiedDate"]


def test_merge_updates_the_destination_last_modified_date(cognito: Any, pool_id: str) -> None:
    identity_of(cognito, pool_id, "early")
    destination = identity_of(cognito, pool_id, "late")
    before = cognito.describe_identity(IdentityId=destination)["LastModifiedDate"]
    merge(cognito, pool_id, "early", "late")
    after = cognito.describe_identity(IdentityId=destination)
    assert after["LastModifiedDate"] >= before
    assert after["CreationDate"] <= after["LastModifiedDate"]


def test_merge_past_twenty_logins_is_a_conflict_and_changes_nothing(
    cognito: Any, pool_id: str
) -> None:
    destination = identity_of(cognito, pool_id, "hub")
    for n in range(19):
        identity_of(cognito, pool_id, f"spoke-{n}")
        merge(cognito, pool_id, f"spoke-{n}", "hub")
    assert (
        len(lookup(cognito, pool_id, IdentityId=destination)["DeveloperUserIdentifierList"]) == 20
    )
    extra = identity_of(cognito, pool_id, "one-too-many")
    with pytest.raises(ClientError) as exc:
        merge(cognito, pool_id, "one-too-many", "hub")
    assert error_of(exc) == (
        "ResourceConflictException",
        400,
        f"Identity '{destination}' would have more than 20 linked logins after the merge.",
    )
    assert identity_of(cognito, pool_id, "one-too-many") == extra


@pytest.mark.parametrize(
    ("source", "destination", "provider", "code", "message"),
    [
        ("ghost", "kim", DEVELOPER_PROVIDER, "ResourceNotFoundException", "The source user"),
        ("kim", "ghost", DEVELOPER_PROVIDER, "ResourceNotFoundException", "The destination user"),
        ("kim", "lee", "login.other", "NotAuthorizedException", "This identity pool does not"),
    ],
    ids=["unknown-source", "unknown-destination", "other-provider"],
)
def test_merge_errors(
    cognito: Any,
    pool_id: str,
    source: str,
    destination: str,
    provider: str,
    code: str,
    message: str,
) -> None:
    identity_of(cognito, pool_id, "kim")
    identity_of(cognito, pool_id, "lee")
    with pytest.raises(ClientError) as exc:
        cognito.merge_developer_identities(
            SourceUserIdentifier=source,
            DestinationUserIdentifier=destination,
            DeveloperProviderName=provider,
            IdentityPoolId=pool_id,
        )
    found = error_of(exc)
    assert found[:2] == (code, 400)
    assert found[2].startswith(message)


def test_merge_in_an_unknown_pool(cognito: Any) -> None:
    unknown = f"{REGION}:{uuid.uuid4()}"
    with pytest.raises(ClientError) as exc:
        merge(cognito, unknown, "a", "b")
    assert error_of(exc) == (
        "ResourceNotFoundException",
        400,
        f"IdentityPool '{unknown}' not found.",
    )


# --- UnlinkDeveloperIdentity -------------------------------------------------------------
def unlink(
    cognito: Any, pool_id: str, identity: str, user: str, provider: str = DEVELOPER_PROVIDER
) -> None:
    cognito.unlink_developer_identity(
        IdentityId=identity,
        IdentityPoolId=pool_id,
        DeveloperProviderName=provider,
        DeveloperUserIdentifier=user,
    )


def test_after_unlink_the_user_is_new_next_time(cognito: Any, pool_id: str) -> None:
    first = identity_of(cognito, pool_id, "leaver")
    unlink(cognito, pool_id, first, "leaver")
    second = identity_of(cognito, pool_id, "leaver")
    assert second != first
    assert "Logins" not in cognito.describe_identity(IdentityId=first)
    assert lookup(cognito, pool_id, IdentityId=first)["DeveloperUserIdentifierList"] == []
    assert lookup(cognito, pool_id, DeveloperUserIdentifier="leaver")["IdentityId"] == second


def test_unlink_one_of_two_logins_keeps_the_other(cognito: Any, pool_id: str) -> None:
    identity_of(cognito, pool_id, "one")
    identity = identity_of(cognito, pool_id, "two")
    merge(cognito, pool_id, "one", "two")
    unlink(cognito, pool_id, identity, "one")
    assert lookup(cognito, pool_id, IdentityId=identity)["DeveloperUserIdentifierList"] == ["two"]
    assert identity_of(cognito, pool_id, "two") == identity
    enabled = [i["IdentityId"] for i in list_all(cognito, pool_id, HideDisabled=True)]
    assert identity in enabled


def test_unlinking_the_last_login_disables_the_identity(cognito: Any, pool_id: str) -> None:
    """Contract section 7 (AWS: remove every login and the identity becomes inaccessible):
    the identity is disabled in the unlink's own step, so it is hidden by HideDisabled and
    refuses every further access, as the source of a merge does."""
    identity = identity_of(cognito, pool_id, "last")
    kept = identity_of(cognito, pool_id, "stays")
    before = cognito.describe_identity(IdentityId=identity)["LastModifiedDate"]
    unlink(cognito, pool_id, identity, "last")
    described = cognito.describe_identity(IdentityId=identity)
    assert "Logins" not in described and described["LastModifiedDate"] >= before
    assert [i["IdentityId"] for i in list_all(cognito, pool_id)] == [identity, kept]
    assert [i["IdentityId"] for i in list_all(cognito, pool_id, HideDisabled=True)] == [kept]
    forbidden = ("NotAuthorizedException", 400, f"Access to Identity '{identity}' is forbidden.")
    for user in ("last", "someone-new"):
        with pytest.raises(ClientError) as exc:
            developer_token(cognito, pool_id, user, IdentityId=identity)
        assert error_of(exc) == forbidden
    identity_of(cognito, pool_id, "someone-new")  # linking to no identity still works
    with pytest.raises(ClientError) as exc:
        unlink(cognito, pool_id, identity, "someone-new")
    assert error_of(exc) == forbidden


def test_unlink_errors(cognito: Any, pool_id: str) -> None:
    mine = identity_of(cognito, pool_id, "mine")
    identity_of(cognito, pool_id, "theirs")
    identity_of(cognito, pool_id, "merged")
    source = identity_of(cognito, pool_id, "merged")
    merge(cognito, pool_id, "merged", "theirs")
    unknown = f"{REGION}:{uuid.uuid4()}"
    cases = [
        (
            mine,
            "theirs",
            DEVELOPER_PROVIDER,
            "ResourceConflictException",
            f"The developer user identifier is not linked to Identity '{mine}'.",
        ),
        (
            mine,
            "nobody",
            DEVELOPER_PROVIDER,
            "ResourceConflictException",
            f"The developer user identifier is not linked to Identity '{mine}'.",
        ),
        (
            unknown,
            "mine",
            DEVELOPER_PROVIDER,
            "ResourceNotFoundException",
            f"Identity '{unknown}' not found.",
        ),
        (
            mine,
            "mine",
            "login.other",
            "NotAuthorizedException",
            "This identity pool does not support the specified developer provider",
        ),
        (
            source,
            "merged",
            DEVELOPER_PROVIDER,
            "NotAuthorizedException",
            f"Access to Identity '{source}' is forbidden.",
        ),
    ]
    for identity, user, provider, code, message in cases:
        with pytest.raises(ClientError) as exc:
            unlink(cognito, pool_id, identity, user, provider)
        assert error_of(exc) == (code, 400, message)
    assert identity_of(cognito, pool_id, "mine") == mine


# --- DescribeIdentity --------------------------------------------------------------------
def test_describe_identity(cognito: Any, pool_id: str) -> None:
    identity = identity_of(cognito, pool_id, "describe-me")
    described = cognito.describe_identity(IdentityId=identity)
    described.pop("ResponseMetadata")
    assert set(described) == {"IdentityId", "Logins", "CreationDate", "LastModifiedDate"}
    assert described["IdentityId"] == identity
    assert described["Logins"] == [DEVELOPER_PROVIDER]  # the provider, never the user id
    now = dt.datetime.now(dt.UTC)
    assert abs((now - described["CreationDate"]).total_seconds()) < 60
    assert described["LastModifiedDate"] == described["CreationDate"]


def test_describe_an_unknown_identity(cognito: Any) -> None:
    unknown = f"{REGION}:{uuid.uuid4()}"
    with pytest.raises(ClientError) as exc:
        cognito.describe_identity(IdentityId=unknown)
    assert error_of(exc) == ("ResourceNotFoundException", 400, f"Identity '{unknown}' not found.")


# --- ListIdentities ----------------------------------------------------------------------
def test_130_identities_paged_by_60_each_exactly_once(cognito: Any, pool_id: str) -> None:
    made = [identity_of(cognito, pool_id, f"many-{n}") for n in range(130)]
    pages: list[list[str]] = []
    kwargs: dict[str, Any] = {"IdentityPoolId": pool_id, "MaxResults": 60}
    while True:
        page = cognito.list_identities(**kwargs)
        assert page["IdentityPoolId"] == pool_id
        pages.append([i["IdentityId"] for i in page["Identities"]])
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert [len(p) for p in pages] == [60, 60, 10]
    assert [i for p in pages for i in p] == made  # creation order, each exactly once
    first = cognito.list_identities(IdentityPoolId=pool_id, MaxResults=1)["Identities"][0]
    assert first["Logins"] == [DEVELOPER_PROVIDER]
    assert set(first) == {"IdentityId", "Logins", "CreationDate", "LastModifiedDate"}


def test_a_list_walk_is_stable_while_identities_come_and_go(cognito: Any, pool_id: str) -> None:
    made = [identity_of(cognito, pool_id, f"walk-{n}") for n in range(9)]
    first = cognito.list_identities(IdentityPoolId=pool_id, MaxResults=3)
    seen = [i["IdentityId"] for i in first["Identities"]]
    cognito.delete_identities(IdentityIdsToDelete=[made[0], made[5]])  # one seen, one ahead
    late = identity_of(cognito, pool_id, "walk-late")
    kwargs: dict[str, Any] = {
        "IdentityPoolId": pool_id,
        "MaxResults": 3,
        "NextToken": first["NextToken"],
    }
    while True:
        page = cognito.list_identities(**kwargs)
        seen.extend(i["IdentityId"] for i in page["Identities"])
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    throughout = [i for i in made if i not in (made[0], made[5])]
    assert len(seen) == len(set(seen))
    assert set(throughout) <= set(seen)
    assert made[5] not in seen
    assert late in seen


def test_hide_disabled(cognito: Any, pool_id: str) -> None:
    source = identity_of(cognito, pool_id, "hidden-src")
    destination = identity_of(cognito, pool_id, "hidden-dst")
    merge(cognito, pool_id, "hidden-src", "hidden-dst")
    everyone = [i["IdentityId"] for i in list_all(cognito, pool_id)]
    enabled = [i["IdentityId"] for i in list_all(cognito, pool_id, page_size=1, HideDisabled=True)]
    assert everyone == [source, destination]
    assert enabled == [destination]


@pytest.mark.parametrize("which", ["forged", "other-pool", "pool-list"])
def test_list_refuses_forged_and_foreign_next_tokens(
    cognito: Any, pool_id: str, which: str
) -> None:
    for n in range(2):
        identity_of(cognito, pool_id, f"tok-{n}")
    with temporary_pool(
        cognito,
        IdentityPoolName="other_pool",
        AllowUnauthenticatedIdentities=False,
        DeveloperProviderName=DEVELOPER_PROVIDER,
    ) as other:
        for n in range(2):
            identity_of(cognito, other, f"tok-{n}")
        tokens = {
            "forged": "eyJhIjoxfQ.AAAA",
            "other-pool": cognito.list_identities(IdentityPoolId=other, MaxResults=1)["NextToken"],
            "pool-list": cognito.list_identity_pools(MaxResults=1)["NextToken"],
        }
        with pytest.raises(ClientError) as exc:
            cognito.list_identities(IdentityPoolId=pool_id, MaxResults=1, NextToken=tokens[which])
        assert error_of(exc)[:2] == ("InvalidParameterException", 400)


def test_list_an_unknown_pool(cognito: Any) -> None:
    unknown = f"{REGION}:{uuid.uuid4()}"
    with pytest.raises(ClientError) as exc:
        cognito.list_identities(IdentityPoolId=unknown, MaxResults=5)
    assert error_of(exc) == (
        "ResourceNotFoundException",
        400,
        f"IdentityPool '{unknown}' not found.",
    )


def test_list_identities_has_no_botocore_paginator(cognito: Any) -> None:
    """botocore models a paginator for ListIdentityPools only (tests/test_pools.py uses it)."""
    assert not cognito.can_paginate("list_identities")
    assert cognito.can_paginate("list_identity_pools")


# --- DeleteIdentities --------------------------------------------------------------------
def test_delete_identities_removes_them_and_their_logins(cognito: Any, pool_id: str) -> None:
    doomed = [identity_of(cognito, pool_id, user) for user in ("del-1", "del-2")]
    kept = identity_of(cognito, pool_id, "keep")
    unknown = f"{REGION}:{uuid.uuid4()}"
    response = cognito.delete_identities(IdentityIdsToDelete=[*doomed, unknown])
    assert response["UnprocessedIdentityIds"] == []
    for identity in doomed:
        with pytest.raises(ClientError) as exc:
            cognito.describe_identity(IdentityId=identity)
        assert error_of(exc)[0] == "ResourceNotFoundException"
    assert [i["IdentityId"] for i in list_all(cognito, pool_id)] == [kept]
    assert identity_of(cognito, pool_id, "del-1") not in doomed  # a new identity
    with pytest.raises(ClientError) as exc:
        lookup(cognito, pool_id, IdentityId=doomed[1])
    assert error_of(exc)[0] == "ResourceNotFoundException"


def test_delete_identities_across_pools(cognito: Any, pool_id: str, store: Topology) -> None:
    with temporary_pool(
        cognito,
        IdentityPoolName="second_pool",
        AllowUnauthenticatedIdentities=False,
        DeveloperProviderName=DEVELOPER_PROVIDER,
    ) as other:
        ids = [identity_of(cognito, pool_id, "x"), identity_of(cognito, other, "x")]
        assert cognito.delete_identities(IdentityIdsToDelete=ids)["UnprocessedIdentityIds"] == []
        assert list_all(cognito, pool_id) == list_all(cognito, other) == []
        with store.client() as client:
            assert_consistent(client, other)
