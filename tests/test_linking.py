"""Implicit linked accounts (contract section 9): the identity rules and the store's
RESOLVE_LOGINS script on a real redis-server, with a stand-in verifier (the verification of
real provider tokens is tests/test_providers.py; end to end through boto3,
tests/test_provider_logins.py).

The stand-in accepts ``ok:<sub>`` as a token of any provider of the pool and refuses
anything else, so each test says which user each provider login is. After every test the
consistency checker finds nothing in the pool.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from support.identities import assert_consistent
from support.logins import StandIn
from support.topologies import Topology, connector_for

from broker.errors import (
    DeveloperUserAlreadyRegisteredException,
    NotAuthorizedException,
    ResourceConflictException,
)
from broker.identity import developer, lifecycle, lookup, public
from broker.identity.models import (
    IdentityPool,
    PoolConfig,
    login_key,
    split_login_key,
)
from broker.identity.pools import create_pool
from broker.identity.ports import LinkOutcome, LoginsRequest
from broker.store.redis_store import RedisStore

REGION = "us-east-1"
DEV = "login.linking.test"
GOOGLE = "accounts.google.com"
USER_POOL = "cognito-idp.us-east-1.amazonaws.com/us-east-1_TestPool"
OIDC = "127.0.0.1:8443/realm"  # a name with a ':' (an issuer with a port)
OIDC_ARN = f"arn:aws:iam::000000000000:oidc-provider/{OIDC}"


@pytest.fixture
def rules(store: Topology) -> Iterator[Any]:
    redis_store = RedisStore(connector_for(store))
    pool = create_pool(
        redis_store,
        PoolConfig(
            name=f"linking_{uuid.uuid4().hex[:8]}",
            allow_unauthenticated=True,
            developer_provider_name=DEV,
            supported_login_providers={GOOGLE: "app-id"},
            cognito_identity_providers=({"ProviderName": USER_POOL, "ClientId": "client"},),
            open_id_connect_provider_arns=(OIDC_ARN,),
        ),
        region=REGION,
        max_pools=1000,
        now=time.time(),
    )
    kit = Rules(redis_store, pool)
    yield kit
    with store.client() as client:
        assert_consistent(client, pool.id)
    redis_store.delete_pool(pool.id)


class Rules:
    """The rules as the AWS door's handlers call them, on one pool."""

    def __init__(self, store: RedisStore, pool: IdentityPool) -> None:
        self.store = store
        self.pool = pool
        self.verifier = StandIn()

    def get_id(self, logins: dict[str, str]) -> str:
        return public.get_id(
            self.store,
            pool_id=self.pool.id,
            account_id=None,
            logins=logins,
            broker_account_id="000000000000",
            region=REGION,
            now=time.time(),
            limit_pool=lambda _: None,
            verifier=self.verifier,
        ).id

    def developer(self, logins: dict[str, str], identity_id: str | None = None) -> Any:
        return developer.resolve_developer_login(
            self.store,
            pool_id=self.pool.id,
            logins=logins,
            identity_id=identity_id,
            region=REGION,
            now=time.time(),
            verifier=self.verifier,
        )

    def authenticate(self, identity_id: str, logins: dict[str, str]) -> public.Access:
        return public.authenticate(
            self.store,
            identity_id=identity_id,
            logins=logins,
            verify=lambda token: {},
            limit_pool=lambda _: None,
            verifier=self.verifier,
            region=REGION,
            now=time.time(),
        )

    def providers_of(self, identity_id: str) -> list[str]:
        return lookup.describe_identity(self.store, identity_id).provider_names()

    def identities(self) -> list[Any]:
        page = self.store.list_identities(self.pool.id, None, 60, hide_disabled=False)
        assert page is not None
        return page.items


def test_a_provider_name_with_a_colon_round_trips_through_the_login_key() -> None:
    for provider in (OIDC, "odd%3Aname", DEV, "a%b:c"):
        assert split_login_key(login_key(provider, "sub:with:colons")) == (
            provider,
            "sub:with:colons",
        )
    assert login_key(DEV, "u") == f"{DEV}:u"  # developer keys as stored before section 9


def test_get_id_with_a_public_login_is_stable_and_authenticated(rules: Rules) -> None:
    first = rules.get_id({GOOGLE: "ok:alice"})
    assert rules.get_id({GOOGLE: "ok:alice"}) == first
    assert rules.get_id({GOOGLE: "ok:bob"}) != first
    assert rules.providers_of(first) == [GOOGLE]
    # an authenticated identity: GetOpenIdToken without its login is refused
    with pytest.raises(NotAuthorizedException, match="Logins don't match"):
        rules.authenticate(first, {})
    access = rules.authenticate(first, {GOOGLE: "ok:alice"})
    assert [(p.provider, p.subject) for p in access.public] == [(GOOGLE, "alice")]


def test_a_provider_whose_name_holds_a_colon_is_listed_by_its_name(rules: Rules) -> None:
    identity = rules.get_id({OIDC: "ok:carol"})
    assert rules.providers_of(identity) == [OIDC]
    assert rules.get_id({OIDC: "ok:carol"}) == identity


def test_developer_login_with_a_user_pool_login_links_both(rules: Rules) -> None:
    made = rules.developer({DEV: "dev-1", USER_POOL: "ok:pool-sub-1"})
    assert made.created
    assert [(p.provider, p.subject, p.user_pool) for p in made.public] == [
        (USER_POOL, "pool-sub-1", True)
    ]
    identity = made.identity.id
    assert rules.get_id({USER_POOL: "ok:pool-sub-1"}) == identity
    _, found = lookup.find_developer_identity(
        rules.store, pool_id=rules.pool.id, identity_id=None, user_id="dev-1"
    )
    assert found.id == identity
    assert rules.providers_of(identity) == sorted([DEV, USER_POOL])
    # the developer login alone still resolves to it (the fast path)
    assert rules.developer({DEV: "dev-1"}).identity.id == identity


def test_a_new_developer_user_joins_the_identity_its_public_login_has(rules: Rules) -> None:
    existing = rules.get_id({GOOGLE: "ok:dana"})
    joined = rules.developer({DEV: "dev-dana", GOOGLE: "ok:dana"})
    assert (joined.identity.id, joined.created) == (existing, False)
    assert [i.id for i in rules.identities()] == [existing]  # no new identity


def test_logins_of_two_identities_merge_into_the_developer_logins_one(rules: Rules) -> None:
    by_google = rules.get_id({GOOGLE: "ok:erin"})  # older
    by_developer = rules.developer({DEV: "dev-erin"}).identity.id
    merged = rules.developer({DEV: "dev-erin", GOOGLE: "ok:erin"})
    assert merged.identity.id == by_developer  # the one holding the developer login
    assert rules.providers_of(by_developer) == sorted([DEV, GOOGLE])
    source = rules.store.get_identity(by_google)
    assert source is not None and source.disabled and source.logins == ()
    assert rules.get_id({GOOGLE: "ok:erin"}) == by_developer
    with pytest.raises(NotAuthorizedException, match="forbidden"):
        rules.authenticate(by_google, {})


def test_without_a_developer_login_the_oldest_identity_survives(rules: Rules) -> None:
    older = rules.get_id({GOOGLE: "ok:fay"})
    newer = rules.get_id({USER_POOL: "ok:fay-pool"})
    assert rules.get_id({USER_POOL: "ok:fay-pool", GOOGLE: "ok:fay"}) == older
    assert rules.providers_of(older) == sorted([GOOGLE, USER_POOL])
    assert rules.store.get_identity(newer).disabled  # type: ignore[union-attr]


def test_the_identity_named_survives_a_merge(rules: Rules) -> None:
    older = rules.get_id({GOOGLE: "ok:gus"})
    named = rules.get_id({USER_POOL: "ok:gus-pool"})
    access = rules.authenticate(named, {USER_POOL: "ok:gus-pool", GOOGLE: "ok:gus"})
    assert access.identity.id == named
    assert rules.providers_of(named) == sorted([GOOGLE, USER_POOL])
    assert rules.store.get_identity(older).disabled  # type: ignore[union-attr]


def test_one_provider_with_two_users_on_one_identity_is_refused(rules: Rules) -> None:
    identity = rules.developer({DEV: "dev-hal", GOOGLE: "ok:hal"}).identity.id
    with pytest.raises(ResourceConflictException, match="two different users"):
        rules.developer({DEV: "dev-hal", GOOGLE: "ok:someone-else"})
    wes = rules.get_id({GOOGLE: "ok:wes", USER_POOL: "ok:wes-pool"})
    with pytest.raises(ResourceConflictException, match="two different users"):
        rules.developer({DEV: "dev-hal", USER_POOL: "ok:wes-pool"})  # a merge would do it
    assert rules.providers_of(identity) == sorted([DEV, GOOGLE])
    assert rules.providers_of(wes) == sorted([GOOGLE, USER_POOL])
    assert [i.id for i in rules.identities()] == [identity, wes]
    assert not any(i.disabled for i in rules.identities())


def test_a_refused_login_changes_nothing(rules: Rules) -> None:
    with pytest.raises(NotAuthorizedException, match="Invalid login token"):
        rules.developer({DEV: "dev-ivy", GOOGLE: "ok:ivy", USER_POOL: "forged"})
    with pytest.raises(NotAuthorizedException, match="Invalid login token"):
        rules.get_id({GOOGLE: "ok:ivy", USER_POOL: "forged"})
    with pytest.raises(NotAuthorizedException, match="not from a supported provider"):
        rules.get_id({"www.example.com": "ok:ivy"})
    assert rules.identities() == []


def test_the_developer_rules_of_section_5_hold_beside_public_logins(rules: Rules) -> None:
    mine = rules.developer({DEV: "dev-jo"}).identity.id
    theirs = rules.developer({DEV: "dev-kim"}).identity.id
    with pytest.raises(DeveloperUserAlreadyRegisteredException):
        rules.developer({DEV: "dev-jo", GOOGLE: "ok:jo"}, identity_id=theirs)
    with pytest.raises(NotAuthorizedException, match="Logins don't match"):
        rules.developer({DEV: "dev-new", GOOGLE: "ok:jo"}, identity_id=theirs)
    linked = rules.developer({DEV: "dev-jo", GOOGLE: "ok:jo"}, identity_id=mine)
    assert linked.identity.id == mine and rules.providers_of(mine) == sorted([DEV, GOOGLE])
    unauthenticated = rules.get_id({})
    joined = rules.developer({DEV: "dev-lee", GOOGLE: "ok:lee"}, identity_id=unauthenticated)
    assert joined.identity.id == unauthenticated
    assert rules.providers_of(unauthenticated) == sorted([DEV, GOOGLE])


def test_get_open_id_token_links_a_new_login_to_an_identity_proven_by_another(
    rules: Rules,
) -> None:
    identity = rules.get_id({GOOGLE: "ok:max"})
    access = rules.authenticate(identity, {GOOGLE: "ok:max", USER_POOL: "ok:max-pool"})
    assert access.identity.id == identity
    assert rules.providers_of(identity) == sorted([GOOGLE, USER_POOL])
    other = rules.get_id({GOOGLE: "ok:ned"})
    with pytest.raises(NotAuthorizedException, match="Logins don't match"):
        rules.authenticate(other, {USER_POOL: "ok:max-pool"})  # someone else's login
    with pytest.raises(NotAuthorizedException, match="Logins don't match"):
        rules.authenticate(other, {USER_POOL: "ok:brand-new"})  # proves nothing about it
    unauthenticated = rules.get_id({})
    upgraded = rules.authenticate(unauthenticated, {USER_POOL: "ok:olga"})
    assert upgraded.identity.id == unauthenticated
    assert rules.providers_of(unauthenticated) == [USER_POOL]
    with pytest.raises(NotAuthorizedException, match="cannot be used with GetOpenIdToken"):
        rules.authenticate(identity, {DEV: "dev"})


def test_unlink_identity_removes_a_public_provider_and_disables_when_none_is_left(
    rules: Rules,
) -> None:
    identity = rules.get_id({GOOGLE: "ok:pat", USER_POOL: "ok:pat-pool"})

    def unlink(logins: dict[str, str], remove: list[str]) -> None:
        public.unlink_identity(
            rules.store,
            identity_id=identity,
            logins=logins,
            logins_to_remove=remove,
            verify=lambda token: {},
            limit_pool=lambda _: None,
            verifier=rules.verifier,
            region=REGION,
            now=time.time(),
        )

    unlink({GOOGLE: "ok:pat"}, [USER_POOL, "graph.facebook.com"])
    assert rules.providers_of(identity) == [GOOGLE]
    assert rules.get_id({USER_POOL: "ok:pat-pool"}) != identity  # a new user next time
    with pytest.raises(NotAuthorizedException):
        unlink({GOOGLE: "forged"}, [GOOGLE])
    unlink({GOOGLE: "ok:pat"}, [GOOGLE])
    assert rules.store.get_identity(identity).disabled  # type: ignore[union-attr]


def test_merges_and_deletion_keep_public_logins_consistent(rules: Rules) -> None:
    a = rules.developer({DEV: "dev-q", GOOGLE: "ok:q"}).identity.id
    b = rules.developer({DEV: "dev-r", USER_POOL: "ok:r"}).identity.id
    merged = lifecycle.merge_developer_identities(
        rules.store,
        pool_id=rules.pool.id,
        provider=DEV,
        source_user="dev-r",
        destination_user="dev-q",
        now=time.time(),
    )
    assert merged.id == a and rules.providers_of(a) == sorted([DEV, GOOGLE, USER_POOL])
    assert rules.get_id({USER_POOL: "ok:r"}) == a
    lifecycle.unlink_developer_identity(
        rules.store,
        pool_id=rules.pool.id,
        provider=DEV,
        user_id="dev-q",
        identity_id=a,
        now=time.time(),
    )
    assert rules.providers_of(a) == sorted([DEV, GOOGLE, USER_POOL])  # dev-r is still there
    lifecycle.delete_identities(rules.store, [a, b])
    fresh = rules.get_id({GOOGLE: "ok:q"})
    assert fresh not in (a, b)


def test_the_store_refuses_more_logins_than_the_limit_and_changes_nothing(
    rules: Rules,
) -> None:
    identity = rules.get_id({GOOGLE: "ok:sam"})
    k = [login_key(GOOGLE, "sam"), login_key(USER_POOL, "sam"), login_key(OIDC, "sam")]
    answer = rules.store.resolve_logins(
        rules.pool.id,
        LoginsRequest(
            logins=tuple(k),
            new_identity_id=f"{REGION}:{uuid.uuid4()}",
            now=time.time(),
            max_logins=2,
        ),
    )
    assert answer.outcome is LinkOutcome.TOO_MANY and answer.identity is not None
    assert rules.providers_of(identity) == [GOOGLE]
    again = rules.store.resolve_logins(
        rules.pool.id,
        LoginsRequest(
            logins=tuple(k), new_identity_id=f"{REGION}:{uuid.uuid4()}", now=0, max_logins=3
        ),
    )
    assert again.outcome is LinkOutcome.LINKED
    assert again.identity is not None and again.identity.id == identity
    retried = rules.store.resolve_logins(
        rules.pool.id,
        LoginsRequest(
            logins=tuple(k), new_identity_id=f"{REGION}:{uuid.uuid4()}", now=0, max_logins=3
        ),
    )
    assert retried.outcome is LinkOutcome.EXISTING


def test_merge_developer_identities_refuses_two_users_of_one_provider(rules: Rules) -> None:
    a = rules.developer({DEV: "dev-tia", GOOGLE: "ok:tia"}).identity.id
    b = rules.developer({DEV: "dev-uma", GOOGLE: "ok:uma"}).identity.id
    with pytest.raises(ResourceConflictException, match="two different users"):
        lifecycle.merge_developer_identities(
            rules.store,
            pool_id=rules.pool.id,
            provider=DEV,
            source_user="dev-uma",
            destination_user="dev-tia",
            now=time.time(),
        )
    assert rules.providers_of(a) == sorted([DEV, GOOGLE])
    assert rules.providers_of(b) == sorted([DEV, GOOGLE])
    assert rules.get_id({GOOGLE: "ok:uma"}) == b
