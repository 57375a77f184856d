"""Pool roles, principal tag attribute maps and tags over boto3 against the live broker
(contract section 7), and DeleteIdentityPool leaving no key of the pool behind."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis
from botocore.exceptions import ClientError
from support import layout
from support.clients import cognito_client
from support.identities import (
    DEVELOPER_PROVIDER,
    REGION,
    assert_consistent,
    developer_token,
    error_of,
    identity_of,
    merge,
    temporary_pool,
    unsigned_client,
)
from support.processes import BrokerServer, RedisServer

from broker.errors import BrokerError, ConcurrentModificationException
from broker.ratelimit.redis_counter import WINDOW_TTL_MS
from broker.store.connection import RedisConnector
from broker.store.pool_store import POOL_CHANGE_ATTEMPTS
from broker.store.redis_store import RedisStore
from broker.store.token_cache import CachedToken, RedisTokenCache, entry_key

ACCOUNT = "000000000000"
ROLE = "arn:aws:iam::000000000000:role/{}"
RULES_MAPPING = {
    "Type": "Rules",
    "AmbiguousRoleResolution": "Deny",
    "RulesConfiguration": {
        "Rules": [
            {
                "Claim": "team",
                "MatchType": "Equals",
                "Value": "blue",
                "RoleARN": ROLE.format("blue"),
            }
        ]
    },
}


def arn_of(pool_id: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:cognito-identity:{region}:{account}:identitypool/{pool_id}"


def unknown_pool() -> str:
    return f"{REGION}:{uuid.uuid4()}"


# --- Set/GetIdentityPoolRoles ------------------------------------------------------------
def test_roles_round_trip(cognito: Any, pool: dict[str, Any]) -> None:
    pool_id = pool["IdentityPoolId"]
    assert cognito.get_identity_pool_roles(IdentityPoolId=pool_id)["IdentityPoolId"] == pool_id
    cognito.update_identity_pool(
        IdentityPoolId=pool_id,
        IdentityPoolName=pool["IdentityPoolName"],
        AllowUnauthenticatedIdentities=False,
        DeveloperProviderName=DEVELOPER_PROVIDER,
        SupportedLoginProviders={"graph.facebook.com": "1234"},
    )
    roles = {"authenticated": ROLE.format("auth"), "unauthenticated": ROLE.format("unauth")}
    token = {"Type": "Token", "AmbiguousRoleResolution": "AuthenticatedRole"}
    mappings = {DEVELOPER_PROVIDER: RULES_MAPPING, "graph.facebook.com": token}
    cognito.set_identity_pool_roles(IdentityPoolId=pool_id, Roles=roles, RoleMappings=mappings)
    got = cognito.get_identity_pool_roles(IdentityPoolId=pool_id)
    got.pop("ResponseMetadata")
    assert got == {"IdentityPoolId": pool_id, "Roles": roles, "RoleMappings": mappings}
    cognito.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={})
    got = cognito.get_identity_pool_roles(IdentityPoolId=pool_id)
    assert "Roles" not in got and "RoleMappings" not in got


def test_roles_errors(cognito: Any, pool: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as exc:
        cognito.set_identity_pool_roles(
            IdentityPoolId=pool["IdentityPoolId"],
            Roles={},
            RoleMappings={DEVELOPER_PROVIDER: {"Type": "Rules"}},
        )
    assert error_of(exc) == (
        "InvalidParameterException",
        400,
        f"RoleMappings entry '{DEVELOPER_PROVIDER}' has Type Rules but no RulesConfiguration.",
    )
    unknown = unknown_pool()
    for call in (
        lambda: cognito.set_identity_pool_roles(IdentityPoolId=unknown, Roles={}),
        lambda: cognito.get_identity_pool_roles(IdentityPoolId=unknown),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == (
            "ResourceNotFoundException",
            400,
            f"IdentityPool '{unknown}' not found.",
        )


def rules_with(**rule: Any) -> dict[str, Any]:
    first = {**RULES_MAPPING["RulesConfiguration"]["Rules"][0], **rule}  # type: ignore[index]
    return {**RULES_MAPPING, "RulesConfiguration": {"Rules": [first]}}


@pytest.mark.parametrize(
    ("roles", "mappings", "message"),
    [
        (
            {"authenticated": "arn:aws:iam::000000000000:user/someone"},
            {},
            "Roles.authenticated 'arn:aws:iam::000000000000:user/someone' is not an IAM role "
            "ARN (arn:aws:iam::<12-digit account>:role/<name>).",
        ),
        (
            {"unauthenticated": "arn:aws:iam::123:role/short-account"},
            {},
            "Roles.unauthenticated 'arn:aws:iam::123:role/short-account' is not an IAM role "
            "ARN (arn:aws:iam::<12-digit account>:role/<name>).",
        ),
        (
            {},
            {"accounts.google.com": RULES_MAPPING},
            "'accounts.google.com' is not an identity provider of identity pool '{pool_id}'.",
        ),
        (
            {},
            {DEVELOPER_PROVIDER: {"Type": "Token"}},
            f"RoleMappings entry '{DEVELOPER_PROVIDER}' needs AmbiguousRoleResolution "
            "(AuthenticatedRole or Deny) with Type Token or Rules.",
        ),
        (
            {},
            {DEVELOPER_PROVIDER: rules_with(RoleARN="arn:aws:s3:::bucket/role/x")},
            f"RoleMappings.{DEVELOPER_PROVIDER} rule 1 'arn:aws:s3:::bucket/role/x' is not an "
            "IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>).",
        ),
        (
            {},
            {
                DEVELOPER_PROVIDER: {
                    **RULES_MAPPING,
                    "RulesConfiguration": {
                        "Rules": RULES_MAPPING["RulesConfiguration"]["Rules"] * 26  # type: ignore[index]
                    },
                }
            },
            f"RoleMappings entry '{DEVELOPER_PROVIDER}' has more than 25 rules.",
        ),
    ],
)
def test_set_roles_refuses_what_aws_refuses(
    cognito: Any, pool: dict[str, Any], roles: Any, mappings: Any, message: str
) -> None:
    """Checked when set (contract section 10), so a mapping that cannot work is not stored;
    nothing is stored when one part is refused."""
    pool_id = pool["IdentityPoolId"]
    good = {"authenticated": ROLE.format("kept")}
    cognito.set_identity_pool_roles(IdentityPoolId=pool_id, Roles=good)
    with pytest.raises(ClientError) as exc:
        cognito.set_identity_pool_roles(IdentityPoolId=pool_id, Roles=roles, RoleMappings=mappings)
    assert error_of(exc) == ("InvalidParameterException", 400, message.format(pool_id=pool_id))
    assert cognito.get_identity_pool_roles(IdentityPoolId=pool_id)["Roles"] == good


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("Claim", "has space"),
        ("Claim", "c" * 65),
        ("MatchType", "Matches"),
        ("Value", "v" * 129),
        ("Value", ""),
    ],
)
def test_set_roles_refuses_malformed_rules(
    broker_server: BrokerServer, pool: dict[str, Any], member: str, value: str
) -> None:
    """boto3's own checks are off, so the broker's are what refuses."""
    raw = cognito_client(broker_server, parameter_validation=False)
    with pytest.raises(ClientError) as exc:
        raw.set_identity_pool_roles(
            IdentityPoolId=pool["IdentityPoolId"],
            Roles={},
            RoleMappings={DEVELOPER_PROVIDER: rules_with(**{member: value})},
        )
    assert error_of(exc)[:2] in {("InvalidParameterException", 400), ("ValidationException", 400)}


def test_set_roles_refuses_more_than_ten_mappings(
    broker_server: BrokerServer, pool: dict[str, Any]
) -> None:
    mappings = {f"provider{n}.example.com": RULES_MAPPING for n in range(11)}
    raw = cognito_client(broker_server, parameter_validation=False)
    with pytest.raises(ClientError) as exc:
        raw.set_identity_pool_roles(
            IdentityPoolId=pool["IdentityPoolId"], Roles={}, RoleMappings=mappings
        )
    assert error_of(exc)[:2] in {("InvalidParameterException", 400), ("ValidationException", 400)}


# --- Set/GetPrincipalTagAttributeMap -----------------------------------------------------
def test_principal_tag_map_round_trip(cognito: Any, pool: dict[str, Any]) -> None:
    pool_id = pool["IdentityPoolId"]
    unset = cognito.get_principal_tag_attribute_map(
        IdentityPoolId=pool_id, IdentityProviderName=DEVELOPER_PROVIDER
    )
    assert unset["UseDefaults"] is False and "PrincipalTags" not in unset
    tags = {"team": "custom:team", "tier": "custom:tier"}
    set_answer = cognito.set_principal_tag_attribute_map(
        IdentityPoolId=pool_id,
        IdentityProviderName=DEVELOPER_PROVIDER,
        UseDefaults=False,
        PrincipalTags=tags,
    )
    got = cognito.get_principal_tag_attribute_map(
        IdentityPoolId=pool_id, IdentityProviderName=DEVELOPER_PROVIDER
    )
    for answer in (set_answer, got):
        answer.pop("ResponseMetadata")
        assert answer == {
            "IdentityPoolId": pool_id,
            "IdentityProviderName": DEVELOPER_PROVIDER,
            "UseDefaults": False,
            "PrincipalTags": tags,
        }
    cognito.set_principal_tag_attribute_map(
        IdentityPoolId=pool_id, IdentityProviderName=DEVELOPER_PROVIDER, UseDefaults=True
    )
    got = cognito.get_principal_tag_attribute_map(
        IdentityPoolId=pool_id, IdentityProviderName=DEVELOPER_PROVIDER
    )
    assert got["UseDefaults"] is True and "PrincipalTags" not in got


def test_principal_tag_map_errors(cognito: Any, pool: dict[str, Any]) -> None:
    pool_id = pool["IdentityPoolId"]
    for call in (cognito.set_principal_tag_attribute_map, cognito.get_principal_tag_attribute_map):
        with pytest.raises(ClientError) as exc:
            call(IdentityPoolId=pool_id, IdentityProviderName="accounts.google.com")
        assert error_of(exc) == (
            "InvalidParameterException",
            400,
            f"'accounts.google.com' is not an identity provider of identity pool '{pool_id}'.",
        )
        unknown = unknown_pool()
        with pytest.raises(ClientError) as exc:
            call(IdentityPoolId=unknown, IdentityProviderName=DEVELOPER_PROVIDER)
        assert error_of(exc)[:2] == ("ResourceNotFoundException", 400)


class RacedStore(RedisStore):
    """A store whose first read of the pool record is followed at once by ``rival`` (another
    request's change), between the rule's check and its write."""

    def __init__(self, url: str, pool_id: str, rival: Any) -> None:
        super().__init__(RedisConnector.from_url(url, 2.0))
        self._pool_key = f"ib:{{{pool_id}}}:pool"
        self._rival = rival

    @property
    def redis(self) -> Any:
        client = super().redis
        store = self

        class Raced:
            def __getattr__(self, name: str) -> Any:
                return getattr(client, name)

            def get(self, key: str) -> Any:
                value = client.get(key)
                if key == store._pool_key and store._rival is not None:
                    rival, store._rival = store._rival, None
                    rival()
                return value

        return Raced()


def test_a_tag_map_is_not_written_for_a_provider_removed_meanwhile(
    cognito: Any, redis_server: RedisServer
) -> None:
    """SetPrincipalTagAttributeMap checks the provider against the pool and writes in one
    step: an UpdateIdentityPool removing the provider between the check and the write makes
    the write fail and the check run again, which refuses it."""
    from broker.identity import pool_settings
    from broker.identity.models import PrincipalTagMap

    with temporary_pool(
        cognito,
        IdentityPoolName="raced",
        AllowUnauthenticatedIdentities=False,
        DeveloperProviderName=DEVELOPER_PROVIDER,
        SupportedLoginProviders={"graph.facebook.com": "1234"},
    ) as pool_id:

        def remove_facebook() -> None:
            cognito.update_identity_pool(
                IdentityPoolId=pool_id,
                IdentityPoolName="raced",
                AllowUnauthenticatedIdentities=False,
            )

        store = RacedStore(redis_server.url, pool_id, remove_facebook)
        tag_map = PrincipalTagMap(principal_tags={"team": "custom:team"})
        with pytest.raises(BrokerError) as caught:
            pool_settings.set_principal_tag_map(store, pool_id, "graph.facebook.com", tag_map)
        assert (caught.value.error_type, caught.value.message) == (
            "InvalidParameterException",
            f"'graph.facebook.com' is not an identity provider of identity pool '{pool_id}'.",
        )
        with redis_server.client() as client:
            assert client.hget(f"ib:{{{pool_id}}}:principal-tags", "graph.facebook.com") is None
        # a change that keeps the provider only makes the write start again, and succeed
        store = RacedStore(
            redis_server.url,
            pool_id,
            lambda: cognito.tag_resource(ResourceArn=arn_of(pool_id), Tags={"k": "v"}),
        )
        pool_settings.set_principal_tag_map(store, pool_id, DEVELOPER_PROVIDER, tag_map)
        got = cognito.get_principal_tag_attribute_map(
            IdentityPoolId=pool_id, IdentityProviderName=DEVELOPER_PROVIDER
        )
        assert got["PrincipalTags"] == {"team": "custom:team"}


# --- TagResource, UntagResource, ListTagsForResource -------------------------------------
def test_tags_are_the_pool_tags(cognito: Any) -> None:
    with temporary_pool(
        cognito,
        IdentityPoolName="tagged",
        AllowUnauthenticatedIdentities=False,
        IdentityPoolTags={"env": "test"},
    ) as pool_id:
        arn = arn_of(pool_id)
        assert cognito.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"env": "test"}
        cognito.tag_resource(ResourceArn=arn, Tags={"team": "blue", "env": "prod", "empty": ""})
        assert cognito.list_tags_for_resource(ResourceArn=arn)["Tags"] == {
            "env": "prod",
            "team": "blue",
            "empty": "",
        }
        cognito.untag_resource(ResourceArn=arn, TagKeys=["env", "not-there"])
        tags = {"team": "blue", "empty": ""}
        assert cognito.list_tags_for_resource(ResourceArn=arn)["Tags"] == tags
        assert cognito.describe_identity_pool(IdentityPoolId=pool_id)["IdentityPoolTags"] == tags


def test_at_most_fifty_tags(cognito: Any, pool: dict[str, Any]) -> None:
    arn = arn_of(pool["IdentityPoolId"])
    cognito.tag_resource(ResourceArn=arn, Tags={f"k{n}": "v" for n in range(50)})
    with pytest.raises(ClientError) as exc:
        cognito.tag_resource(ResourceArn=arn, Tags={"one-more": "v"})
    assert error_of(exc) == (
        "InvalidParameterException",
        400,
        "An identity pool can have at most 50 tags; the request would leave 51.",
    )
    cognito.tag_resource(ResourceArn=arn, Tags={"k0": "overwritten"})  # still 50
    assert len(cognito.list_tags_for_resource(ResourceArn=arn)["Tags"]) == 50
    with pytest.raises(ClientError) as exc:
        cognito.create_identity_pool(
            IdentityPoolName="too_many",
            AllowUnauthenticatedIdentities=False,
            IdentityPoolTags={f"k{n}": "v" for n in range(51)},
        )
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)


def test_update_without_tags_keeps_them_and_with_tags_replaces_them(
    cognito: Any, pool: dict[str, Any]
) -> None:
    """Contract section 7 (decision): UpdateIdentityPool without IdentityPoolTags leaves the
    tags as they are, those of CreateIdentityPool and of TagResource alike (Terraform's
    provider tags with TagResource and then updates the pool without tags); with
    IdentityPoolTags, ``{}`` included, it replaces them."""
    pool_id, arn = pool["IdentityPoolId"], arn_of(pool["IdentityPoolId"])

    def update(**members: Any) -> dict[str, Any]:
        answer: dict[str, Any] = cognito.update_identity_pool(
            IdentityPoolId=pool_id,
            IdentityPoolName="updated",
            AllowUnauthenticatedIdentities=False,
            **members,
        )
        return answer

    def tags() -> dict[str, str]:
        listed: dict[str, str] = cognito.list_tags_for_resource(ResourceArn=arn)["Tags"]
        return listed

    cognito.tag_resource(ResourceArn=arn, Tags={"team": "blue", "empty": ""})
    assert update()["IdentityPoolTags"] == {"team": "blue", "empty": ""}
    assert tags() == {"team": "blue", "empty": ""}
    assert cognito.describe_identity_pool(IdentityPoolId=pool_id)["IdentityPoolName"] == "updated"

    assert update(IdentityPoolTags={"env": "prod"})["IdentityPoolTags"] == {"env": "prod"}
    assert tags() == {"env": "prod"}
    update(AllowClassicFlow=True)  # another member changes; the tags stay
    assert tags() == {"env": "prod"}

    assert "IdentityPoolTags" not in update(IdentityPoolTags={})
    assert tags() == {}

    # the tag limit counts what the pool is left with: a kept set is not counted again
    cognito.tag_resource(ResourceArn=arn, Tags={f"k{n}": "v" for n in range(50)})
    assert len(update()["IdentityPoolTags"]) == 50
    with pytest.raises(ClientError) as exc:
        update(IdentityPoolTags={f"k{n}": "v" for n in range(51)})
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    assert len(tags()) == 50


@pytest.mark.parametrize(
    ("arn", "code"),
    [
        (
            "arn:aws:cognito-idp:us-east-1:000000000000:userpool/us-east-1_abc",
            "InvalidParameterException",
        ),
        ("not an arn at all, but long enough", "InvalidParameterException"),
        (arn_of(unknown_pool()), "ResourceNotFoundException"),
        (arn_of("{pool}", account="123456789012"), "ResourceNotFoundException"),
        (arn_of("{pool}", region="eu-west-1"), "ResourceNotFoundException"),
    ],
    ids=["user-pool-arn", "not-an-arn", "unknown-pool", "other-account", "other-region"],
)
def test_tag_operations_check_the_arn(
    cognito: Any, pool: dict[str, Any], arn: str, code: str
) -> None:
    arn = arn.format(pool=pool["IdentityPoolId"])
    calls = [
        lambda: cognito.tag_resource(ResourceArn=arn, Tags={"a": "b"}),
        lambda: cognito.untag_resource(ResourceArn=arn, TagKeys=["a"]),
        lambda: cognito.list_tags_for_resource(ResourceArn=arn),
    ]
    for call in calls:
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc)[:2] == (code, 400)
    assert cognito.list_tags_for_resource(ResourceArn=arn_of(pool["IdentityPoolId"]))["Tags"] == {}


# --- DeleteIdentityPool ------------------------------------------------------------------
def test_delete_identity_pool_leaves_no_key_of_the_pool(
    cognito: Any, broker_server: BrokerServer, redis_server: RedisServer
) -> None:
    pool_id = cognito.create_identity_pool(
        IdentityPoolName="doomed",
        AllowUnauthenticatedIdentities=True,
        DeveloperProviderName=DEVELOPER_PROVIDER,
        IdentityPoolTags={"a": "b"},
    )["IdentityPoolId"]
    public = unsigned_client(broker_server.url)
    try:
        unauthenticated = public.get_id(IdentityPoolId=pool_id)["IdentityId"]
    finally:
        public.close()
    ids = [identity_of(cognito, pool_id, user) for user in ("a", "b", "c")]
    merge(cognito, pool_id, "a", "b")
    developer_token(cognito, pool_id, "d")
    cognito.set_identity_pool_roles(
        IdentityPoolId=pool_id, Roles={"authenticated": ROLE.format("x")}
    )
    cognito.set_principal_tag_attribute_map(
        IdentityPoolId=pool_id, IdentityProviderName=DEVELOPER_PROVIDER, PrincipalTags={"t": "v"}
    )
    with redis_server.client() as client:
        assert_consistent(client, pool_id)
        assert len(list(client.scan_iter(match=f"*{pool_id}*"))) >= 7
        # the backend door's token cache for the pool: an entry, its counter, a lock
        cache = RedisTokenCache(RedisConnector.from_url(redis_server.url, 2.0))
        entry = entry_key(pool_id, "abc")
        cache.put(pool_id, entry, CachedToken("t", 1, 2), 900, None, unauthenticated)
        client.set(f"{entry}:lock", "holder", px=60_000)

        cognito.delete_identity_pool(IdentityPoolId=pool_id)

        left = list(client.scan_iter(match=f"*{pool_id}*"))
        # only the GetId's one-second rate window, which expires by itself within 2 s
        assert all(key.startswith(f"ib:rate:pool:{{{pool_id}}}:") for key in left), left
        assert all(0 < client.pttl(key) <= WINDOW_TTL_MS for key in left), left
        assert client.zscore("ib:{pools}:index", pool_id) is None
        index = layout.index_entries(client)
        assert pool_id not in index.values()
        assert not {unauthenticated, *ids} & set(index)
        assert_consistent(client, pool_id)
    for identity in (unauthenticated, *ids):
        with pytest.raises(ClientError) as exc:
            cognito.describe_identity(IdentityId=identity)
        assert error_of(exc)[0] == "ResourceNotFoundException"


# --- contention on the pool record ---------------------------------------------------------
def test_a_pool_that_keeps_changing_is_a_concurrent_modification(
    cognito: Any, pool: dict[str, Any], redis_server: RedisServer
) -> None:
    """A tag change that loses every compare-and-set (another writer changes the record
    between each read and write) is ConcurrentModificationException, a 400 the client may
    retry: not a RedisError, which the front door would render as a 500 store outage."""
    pool_id = pool["IdentityPoolId"]
    store = RedisStore(RedisConnector.from_url(redis_server.url, 2.0))
    rival = redis_server.client()
    key = f"ib:{{{pool_id}}}:pool"
    calls: list[int] = []

    def change_under_it(tags: Any) -> dict[str, str]:
        calls.append(1)
        record = str(rival.get(key))
        rival.set(key, record.replace('"name":"', f'"name":"{len(calls)}'))
        return {**tags, "team": "blue"}

    with pytest.raises(BrokerError) as caught:
        store.change_pool_tags(pool_id, change_under_it)
    assert type(caught.value) is ConcurrentModificationException
    assert not isinstance(caught.value, redis.RedisError)
    assert (caught.value.status, caught.value.error_type) == (
        400,
        "ConcurrentModificationException",
    )
    assert pool_id in caught.value.message
    assert len(calls) == POOL_CHANGE_ATTEMPTS
    assert "team" not in cognito.list_tags_for_resource(
        ResourceArn=f"arn:aws:cognito-identity:{REGION}:{ACCOUNT}:identitypool/{pool_id}"
    ).get("Tags", {})
