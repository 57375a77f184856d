"""A store written by the broker before the identity index was sharded keeps working, and
is moved to today's layout (issue 13 item 3).

``fixtures/store-before-sharding.json`` was written by the real broker of commit 56a8bc4
(``fixtures/make_store_before_sharding.py``): pools, developer identities, a merge, an
unlink, unauthenticated identities, a deleted pool, the backend door's named pool and its
token cache, all with the one hash ``ib:{identities}:pool`` as identity index.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support import layout
from support.cli import broker_cli
from support.clients import cognito_at
from support.processes import BrokerServer, RedisServer

from broker.store import keys, migration
from broker.store.checker import LEGACY_INDEX, check_store
from broker.store.connection import RedisConnector
from broker.store.redis_store import RedisStore

pytestmark = pytest.mark.slow  # servers or subprocesses of its own: not the fast lane

FIXTURE = Path(__file__).parent / "fixtures" / "store-before-sharding.json"


@pytest.fixture(scope="module")
def before() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(FIXTURE.read_text())
    return document


def load(server: RedisServer, document: dict[str, Any]) -> None:
    with server.client() as client:
        pipe = client.pipeline(transaction=False)
        for entry in document["keys"]:
            key, kind, value = entry["key"], entry["type"], entry["value"]
            if kind == "string":
                pipe.set(key, value)
            elif kind == "hash":
                pipe.hset(key, mapping=value)
            elif kind == "zset":
                pipe.zadd(key, {member: score for member, score in value})
            elif kind == "list":
                pipe.rpush(key, *value)
            elif kind == "set":
                pipe.sadd(key, *value)
            if entry["ttl_ms"]:
                pipe.pexpire(key, entry["ttl_ms"])
        pipe.execute()


@pytest.fixture
def old_store(before: dict[str, Any]) -> Iterator[RedisServer]:
    with RedisServer() as server:
        load(server, before)
        yield server


def cli(server: RedisServer, *args: str) -> subprocess.CompletedProcess[str]:
    return broker_cli({"REDIS_URL": server.url}, *args)


def test_the_old_store_is_read_before_it_is_migrated(
    old_store: RedisServer, before: dict[str, Any]
) -> None:
    """Readers look in the old index while it exists; the checker names the old layout."""
    store = RedisStore(RedisConnector.from_url(old_store.url, 2.0))
    for pool_id, users in before["users"].items():
        for identity_id in set(users.values()):
            found = store.get_identity(identity_id)
            assert found is not None and found.pool_id == pool_id
    kinds = {p.kind for p in check_store(RedisConnector.from_url(old_store.url, 2.0)).problems}
    assert LEGACY_INDEX in kinds

    report = migration.migrate(RedisConnector.from_url(old_store.url, 2.0))
    entries = sum(len(set(u.values())) for u in before["users"].values())
    assert report.moved >= entries + len(before["unauthenticated"])
    assert report.named == len(before["pools"]) + 1  # and the backend door's pool
    with old_store.client() as client:
        assert not client.exists(keys.LEGACY_IDENTITY_INDEX)
        index = layout.index_entries(client)
    for pool_id, users in before["users"].items():
        assert all(index[identity_id] == pool_id for identity_id in users.values())
    assert check_store(RedisConnector.from_url(old_store.url, 2.0)).clean
    again = migration.migrate(RedisConnector.from_url(old_store.url, 2.0))
    assert (again.moved, again.named) == (0, 0)
    assert again.summary().startswith("nothing to migrate")


def test_a_broker_started_on_the_old_store_migrates_it_and_every_identity_stays(
    old_store: RedisServer,
    before: dict[str, Any],
    broker_credentials: dict[str, str],
    tmp_path: Path,
) -> None:
    provider = before["provider"]
    env = {
        "BROKER_BACKEND_AUTH": "api_key",
        "BROKER_BACKEND_API_KEYS": before["backend_api_key"],
        "BROKER_BACKEND_POOL_NAME": "backend fixture",
        "BROKER_BACKEND_DEVELOPER_PROVIDER": provider,
    }
    with BrokerServer(
        redis_url=old_store.url,
        credentials=broker_credentials,
        workers=2,
        env=env,
        log_path=tmp_path / "broker.log",
    ) as server:
        with old_store.client() as client:
            deadline = time.monotonic() + 30
            while client.exists(keys.LEGACY_IDENTITY_INDEX) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not client.exists(keys.LEGACY_IDENTITY_INDEX), "not migrated at start"
        cognito = cognito_at(server.url, server.access_key_id, server.secret_access_key)
        try:
            for pool_id, users in before["users"].items():
                for user, identity_id in users.items():
                    again = cognito.get_open_id_token_for_developer_identity(
                        IdentityPoolId=pool_id, Logins={provider: user}
                    )
                    assert again["IdentityId"] == identity_id
                    assert cognito.describe_identity(IdentityId=identity_id)["Logins"] == [provider]
            for identity_id in before["unauthenticated"]:
                assert (
                    cognito.describe_identity(IdentityId=identity_id)["IdentityId"] == identity_id
                )
            unlinked = cognito.describe_identity(IdentityId=before["unlinked_identity"])
            assert unlinked.get("Logins", []) == []
            with pytest.raises(cognito.exceptions.ResourceNotFoundException):
                cognito.describe_identity_pool(IdentityPoolId=before["deleted_pool"])
            listed = {
                p["IdentityPoolId"]: p["IdentityPoolName"]
                for p in cognito.list_identity_pools(MaxResults=60)["IdentityPools"]
            }
            for n, pool_id in enumerate(before["pools"]):
                assert listed[pool_id] == f"fixture pool {n}"
            assert "backend fixture" in listed.values()
        finally:
            cognito.close()
        for user, identity_id in before["backend_users"].items():
            answer = requests.post(
                f"{server.url}/v1/token",
                headers={"X-Api-Key": before["backend_api_key"]},
                json={"user_id": user},
                timeout=10,
            ).json()
            assert answer["data"]["identity_id"] == identity_id
    check = cli(old_store, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert cli(old_store, "migrate").stdout.startswith("nothing to migrate")
