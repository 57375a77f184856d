"""The consistency checker (``broker.store.checker``) and its CLI, ``flask --app app broker
check``: clean data passes with a one-line summary and exit status 0; every kind of
disagreement, injected straight into Redis, is reported and exits 1."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from support import layout
from support.cli import broker_cli
from support.identities import DEVELOPER_PROVIDER, REGION, identity_of, merge
from support.processes import RedisServer
from support.topologies import Topology

from broker.store import checker
from broker.store.checker import check_store

pytestmark = pytest.mark.every_topology

REPO = Path(__file__).resolve().parent.parent
POOL_INDEX = layout.POOL_INDEX

Inject = Callable[[redis.Redis, str, dict[str, str], list[Callable[[], None]]], None]


def new_id() -> str:
    return f"{REGION}:{uuid.uuid4()}"


def k(pool_id: str, name: str) -> str:
    return f"ib:{{{pool_id}}}:{name}"


def edit_record(client: redis.Redis, pool_id: str, identity: str, **changes: Any) -> None:
    record = json.loads(str(client.hget(k(pool_id, "identities"), identity)))
    record.update(changes)
    client.hset(k(pool_id, "identities"), identity, json.dumps(record))


def _login_to_missing(c: redis.Redis, p: str, ids: dict[str, str], undo: list[Any]) -> None:
    c.hset(k(p, "logins"), f"{DEVELOPER_PROVIDER}:ghost", new_id())


def _login_not_listed(c: redis.Redis, p: str, ids: dict[str, str], undo: list[Any]) -> None:
    c.hset(k(p, "logins"), f"{DEVELOPER_PROVIDER}:stray", ids["ann"])


def _login_elsewhere(c: redis.Redis, p: str, ids: dict[str, str], undo: list[Any]) -> None:
    logins = [f"{DEVELOPER_PROVIDER}:ann", f"{DEVELOPER_PROVIDER}:bob"]
    edit_record(c, p, ids["ann"], l=logins)


def _disabled_with_logins(c: redis.Redis, p: str, ids: dict[str, str], undo: list[Any]) -> None:
    edit_record(c, p, ids["ann"], d=1)


def _public_provider_twice(c: redis.Redis, p: str, ids: dict[str, str], undo: list[Any]) -> None:
    google = ["accounts.google.com:sub-1", "accounts.google.com:sub-2"]
    for login in google:
        c.hset(k(p, "logins"), login, ids["ann"])
    edit_record(c, p, ids["ann"], l=[f"{DEVELOPER_PROVIDER}:ann", *google])


def _unreadable(c: redis.Redis, p: str, ids: dict[str, str], undo: list[Any]) -> None:
    c.hset(k(p, "identities"), ids["gone"], "{not json")


def _order_without_identity(c: redis.Redis, p: str, ids: dict[str, str], undo: list[Any]) -> None:
    c.zadd(k(p, "order"), {new_id(): 999})


def _identity_without_order(c: redis.Redis, p: str, ids: dict[str, str], undo: list[Any]) -> None:
    c.zrem(k(p, "order"), ids["ann"])


def _identity_not_indexed(c: redis.Redis, p: str, ids: dict[str, str], undo: list[Any]) -> None:
    c.hdel(layout.index_key(ids["ann"]), ids["ann"])


def _index_without_identity(c: redis.Redis, p: str, ids: dict[str, str], undo: list[Any]) -> None:
    ghost = new_id()
    c.hset(layout.index_key(ghost), ghost, p)
    undo.append(lambda: c.hdel(layout.index_key(ghost), ghost))


def _pool_not_indexed(c: redis.Redis, p: str, ids: dict[str, str], undo: list[Any]) -> None:
    c.zrem(POOL_INDEX, p)


CASES: dict[str, tuple[Inject, set[str]]] = {
    "login-to-missing-identity": (_login_to_missing, {checker.LOGIN_TO_MISSING_IDENTITY}),
    "login-not-listed": (_login_not_listed, {checker.LOGIN_NOT_LISTED}),
    "login-elsewhere": (_login_elsewhere, {checker.LOGIN_ELSEWHERE}),
    "disabled-with-logins": (_disabled_with_logins, {checker.DISABLED_WITH_LOGINS}),
    "public-provider-twice": (_public_provider_twice, {checker.PUBLIC_PROVIDER_TWICE}),
    "unreadable-identity": (_unreadable, {checker.UNREADABLE_IDENTITY}),
    "order-without-identity": (_order_without_identity, {checker.ORDER_WITHOUT_IDENTITY}),
    "identity-without-order": (_identity_without_order, {checker.IDENTITY_WITHOUT_ORDER}),
    "identity-not-indexed": (_identity_not_indexed, {checker.IDENTITY_NOT_INDEXED}),
    "index-without-identity": (_index_without_identity, {checker.INDEX_WITHOUT_IDENTITY}),
    "pool-not-indexed": (_pool_not_indexed, {checker.POOL_NOT_INDEXED}),
}


@pytest.fixture
def populated(cognito: Any, pool: dict[str, Any]) -> dict[str, str]:
    """A pool with a merged pair (one disabled source), a single user, and the ids."""
    pool_id = pool["IdentityPoolId"]
    ids = {user: identity_of(cognito, pool_id, user) for user in ("ann", "bob", "gone")}
    merge(cognito, pool_id, "gone", "bob")
    return ids


@pytest.fixture
def redis_client(store: Topology) -> Iterator[redis.Redis]:
    with store.client() as client:
        yield client


def test_a_consistent_pool_is_clean(
    redis_client: redis.Redis, pool: dict[str, Any], populated: dict[str, str]
) -> None:
    report = check_store(redis_client, [pool["IdentityPoolId"]])
    assert report.problems == []
    assert report.clean
    assert (report.pools, report.identities, report.logins) == (1, 3, 3)
    assert report.summary() == "clean: checked 1 pool, 3 identities, 3 logins"


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_disagreement_is_reported(
    redis_client: redis.Redis, pool: dict[str, Any], populated: dict[str, str], case: str
) -> None:
    pool_id = pool["IdentityPoolId"]
    inject, expected = CASES[case]
    undo: list[Callable[[], None]] = []
    inject(redis_client, pool_id, populated, undo)
    try:
        report = check_store(redis_client, [pool_id])
        assert {problem.kind for problem in report.problems} == expected, report.problems
        assert not report.clean
        assert report.summary().startswith("1 problem: checked 1 pool")
        assert "ghost" not in "".join(str(p) for p in report.problems)  # user ids never shown
    finally:
        for step in undo:
            step()


def test_leftovers_of_a_deleted_pool_are_reported(redis_client: redis.Redis) -> None:
    deleted = new_id()
    identity = new_id()
    redis_client.hset(layout.index_key(identity), identity, deleted)
    redis_client.zadd(POOL_INDEX, {deleted: 0})
    redis_client.hset(k(deleted, "logins"), f"{DEVELOPER_PROVIDER}:u", identity)
    try:
        report = check_store(redis_client, [deleted])
        found = sorted((p.kind, p.key) for p in report.problems)
        assert found == [
            (checker.INDEX_OF_DELETED_POOL, layout.index_key(identity)),
            (checker.INDEX_OF_DELETED_POOL, POOL_INDEX),
            (checker.KEY_OF_DELETED_POOL, k(deleted, "logins")),
        ]
    finally:
        redis_client.hdel(layout.index_key(identity), identity)
        redis_client.zrem(POOL_INDEX, deleted)
        redis_client.delete(k(deleted, "logins"))


# --- the CLI -----------------------------------------------------------------------------
def test_cli_in_process(app: Any, pool: dict[str, Any], populated: dict[str, str]) -> None:
    pool_id = pool["IdentityPoolId"]
    runner = app.test_cli_runner()
    clean = runner.invoke(args=["broker", "check", "--pool", pool_id])
    assert clean.exit_code == 0, clean.output
    assert clean.output == "clean: checked 1 pool, 3 identities, 3 logins\n"
    with app.app_context():
        client = app.extensions["identity_broker"].connector.client()
        client.zrem(k(pool_id, "order"), populated["ann"])
    broken = runner.invoke(args=["broker", "check", "--pool", pool_id])
    assert broken.exit_code == 1
    lines = broken.output.splitlines()
    assert lines == [
        f"{checker.IDENTITY_WITHOUT_ORDER}: {k(pool_id, 'order')}: {populated['ann']}",
        "1 problem: checked 1 pool, 3 identities, 3 logins",
    ]


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A Redis of its own, so the whole-store walk sees only what this test made."""
    with RedisServer() as server:
        yield server


def run_check(redis_url: str) -> subprocess.CompletedProcess[str]:
    return broker_cli({"REDIS_URL": redis_url}, "check", timeout=60)


@pytest.mark.slow
def test_cli_walks_the_whole_store(private_redis: RedisServer) -> None:
    from broker.identity.developer import resolve_developer_login
    from broker.identity.lifecycle import merge_developer_identities
    from broker.identity.models import PoolConfig
    from broker.identity.pools import create_pool
    from broker.store.connection import RedisConnector
    from broker.store.redis_store import RedisStore

    store = RedisStore(RedisConnector.from_url(private_redis.url, 2.0))
    pools = [
        create_pool(
            store,
            PoolConfig(name=f"p{n}", allow_unauthenticated=True, developer_provider_name="dev"),
            region=REGION,
            max_pools=10,
            now=1.0,
        )
        for n in range(2)
    ]
    for pool in pools:
        for user in ("a", "b"):
            resolve_developer_login(
                store,
                pool_id=pool.id,
                logins={"dev": user},
                identity_id=None,
                region=REGION,
                now=2.0,
            )
        merge_developer_identities(
            store, pool_id=pool.id, provider="dev", source_user="a", destination_user="b", now=3.0
        )
        store.create_unauthenticated(pool.id, new_id(), 4.0)

    clean = run_check(private_redis.url)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout == "clean: checked 2 pools, 6 identities, 4 logins\n"

    with private_redis.client() as client:
        client.zadd(POOL_INDEX, {new_id(): 99})  # an index entry of a deleted pool
        client.hset(k(pools[0].id, "logins"), "dev:x", new_id())
    broken = run_check(private_redis.url)
    assert broken.returncode == 1
    lines = broken.stdout.splitlines()
    assert len(lines) == 3
    assert any(line.startswith(checker.INDEX_OF_DELETED_POOL) for line in lines)
    assert any(line.startswith(checker.LOGIN_TO_MISSING_IDENTITY) for line in lines)
    assert lines[-1] == "2 problems: checked 2 pools, 6 identities, 5 logins"
