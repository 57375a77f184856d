"""Redis topologies as an operator meets them (issue 13): the CLI and key rotation on each
topology, WAIT for replicas, several brokers on one Redis, and one clear line for each
mistake in the Redis settings.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from conftest import DEVELOPER_PROVIDER
from support import layout
from support.cli import broker_cli
from support.clients import cognito_at
from support.oidc import verify
from support.processes import REPO_ROOT, BrokerServer, RedisServer
from support.topologies import Topology, connector_for

from broker.store.checker import check_store
from config.redis import RedisSettings
from config.settings import ConfigError, Settings

pytestmark = pytest.mark.slow  # servers or subprocesses of its own: not the fast lane

API_KEY = "topology-test-api-key-0123456789abcdef"


# --- the CLI and key rotation, on every topology -------------------------------------------
@pytest.mark.every_topology
def test_check_keys_and_rotate_key_work_on_the_topology(
    store: Topology, broker_server: BrokerServer, cognito: Any, pool: dict[str, Any]
) -> None:
    pool_id = pool["IdentityPoolId"]
    for user in ("ann", "bob"):
        cognito.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: user}
        )
    check = broker_cli(store.env(), "check", "--pool", pool_id)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout == "clean: checked 1 pool, 2 identities, 2 logins\n"

    before = broker_cli(store.env(), "keys")
    assert before.returncode == 0, before.stderr
    old_kid = before.stdout.split()[0]
    rotated = broker_cli(store.env(), "rotate-key", "--now")
    assert rotated.returncode == 0, rotated.stderr
    after = broker_cli(store.env(), "keys")
    new_kid = after.stdout.split()[0]
    assert new_kid != old_kid and f"{old_kid} retired, stopped signing" in after.stdout
    assert "NOT sealed" in after.stdout

    # The live broker signs with the new key within its refresh interval (10 s), and its
    # JWKS still publishes the old one.
    deadline = time.monotonic() + 15
    while True:
        token = cognito.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: "ann"}
        )["Token"]
        if jwt.get_unverified_header(token)["kid"] == new_kid or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert jwt.get_unverified_header(token)["kid"] == new_kid
    published: set[str] = set()
    for _ in range(30):  # every worker, once each has refreshed: ask a few times
        jwks = requests.get(f"{broker_server.url}/.well-known/jwks_uri", timeout=5).json()
        published = {key["kid"] for key in jwks["keys"]}
        if new_kid in published:
            break
        time.sleep(0.5)
    assert {old_kid, new_kid} <= published
    # A worker that has not refreshed yet may answer the verifier's JWKS request without
    # the new key (rotate-key --now skips staging): retry until the refresh interval ends.
    deadline = time.monotonic() + 15
    while True:
        try:
            verify(broker_server.url, token, audience=pool_id)
            break
        except jwt.PyJWKClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.every_topology
def test_readyz_names_the_topology(store: Topology, broker_server: BrokerServer) -> None:
    ready = requests.get(f"{broker_server.url}/readyz", timeout=5)
    assert ready.status_code == 200
    body = ready.json()
    if store.topology == "standalone":
        assert body == {"status": "ready"}
    else:
        assert body["redis"]["topology"] == store.topology
    if store.topology == "sentinel":
        assert body["redis"]["master"].endswith(f":{store.server_for('x').port}")


# --- several brokers on one Redis ------------------------------------------------------------
@pytest.fixture
def two_brokers(
    store: Topology, broker_credentials: dict[str, str], tmp_path: Path
) -> Iterator[tuple[BrokerServer, BrokerServer]]:
    """Two brokers behind one (imagined) load balancer: same Redis, same issuer, the
    backend door on one named pool."""
    issuer = "https://identity.example.test"
    env = {
        "BROKER_ISSUER": issuer,
        "BROKER_BACKEND_AUTH": "api_key",
        "BROKER_BACKEND_API_KEYS": API_KEY,
        "BROKER_BACKEND_POOL_NAME": f"shared {uuid.uuid4().hex[:8]}",
        "BROKER_BACKEND_DEVELOPER_PROVIDER": "login.shared.test",
    }
    one = BrokerServer(
        redis_env=store.env(), credentials=broker_credentials, workers=2, env=env,
        log_path=tmp_path / "one.log",
    )  # fmt: skip
    two = BrokerServer(
        redis_env=store.env(), credentials=broker_credentials, workers=2, env=env,
        log_path=tmp_path / "two.log",
    )  # fmt: skip
    with one, two:
        yield one, two


@pytest.mark.every_topology
def test_brokers_on_one_redis_share_identities_keys_and_caches(
    two_brokers: tuple[BrokerServer, BrokerServer],
) -> None:
    one, two = two_brokers
    user = f"user-{uuid.uuid4().hex}"
    first = requests.post(
        f"{one.url}/v1/token", headers={"X-Api-Key": API_KEY}, json={"user_id": user}, timeout=10
    ).json()["data"]
    second = requests.post(
        f"{two.url}/v1/token", headers={"X-Api-Key": API_KEY}, json={"user_id": user}, timeout=10
    ).json()["data"]
    assert second["identity_id"] == first["identity_id"]
    assert second["cached"] is True and second["token"] == first["token"]  # one cache

    jwks_one = requests.get(f"{one.url}/.well-known/jwks_uri", timeout=5).json()
    jwks_two = requests.get(f"{two.url}/.well-known/jwks_uri", timeout=5).json()
    assert jwks_one == jwks_two
    claims = jwt.decode(first["token"], options={"verify_signature": False})
    assert claims["iss"] == "https://identity.example.test"
    cognito = cognito_at(two.url, two.access_key_id, two.secret_access_key)
    try:
        pool_id = claims["aud"]
        found = cognito.lookup_developer_identity(
            IdentityPoolId=pool_id, DeveloperUserIdentifier=user, MaxResults=1
        )
        assert found["IdentityId"] == first["identity_id"]
    finally:
        cognito.close()


# --- WAIT for replicas ------------------------------------------------------------------------
@pytest.fixture
def master_and_replica() -> Iterator[tuple[RedisServer, RedisServer]]:
    with (
        RedisServer() as master,
        RedisServer(("--replicaof", "127.0.0.1", str(master.port))) as replica,
    ):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with replica.client() as client:
                if client.info("replication").get("master_link_status") == "up":
                    break
            time.sleep(0.1)
        yield master, replica


def _token(server: BrokerServer, pool_id: str, user: str) -> requests.Response:
    from support.faults import call

    return call(
        server,
        "GetOpenIdTokenForDeveloperIdentity",
        {"IdentityPoolId": pool_id, "Logins": {"login.wait": user}},
    )


def test_a_change_no_replica_confirms_is_not_acknowledged_and_its_retry_is(
    master_and_replica: tuple[RedisServer, RedisServer],
    broker_credentials: dict[str, str],
    tmp_path: Path,
) -> None:
    """REDIS_WAIT_REPLICAS=1 with the replica stopped (SIGSTOP): a new user's token call
    fails within the wait timeout, and so does its retry while the replica is away (the
    identity was written on the master, but not confirmed); a returning user is served.
    Once the replica is back, the retry answers, with the one identity the user has."""
    master, replica = master_and_replica
    with BrokerServer(
        redis_url=master.url,
        credentials=broker_credentials,
        workers=2,
        env={"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_MS": "300"},
        log_path=tmp_path / "broker.log",
    ) as server:
        from support.faults import create_pool

        pool_id = create_pool(server, "login.wait")
        known = _token(server, pool_id, "known")
        assert known.status_code == 200, known.text
        assert replica.pid is not None
        os.kill(replica.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            refused = _token(server, pool_id, "new-user")
            assert time.monotonic() - started < 3
            assert refused.status_code == 500
            assert refused.json()["__type"] == "InternalErrorException"
            assert _token(server, pool_id, "new-user").status_code == 500  # still unconfirmed
            assert (
                _token(server, pool_id, "known").json()["IdentityId"] == known.json()["IdentityId"]
            )
        finally:
            os.kill(replica.pid, signal.SIGCONT)
        retried = _token(server, pool_id, "new-user")
        assert retried.status_code == 200, retried.text
        with master.client() as client:
            assert client.hlen(f"ib:{{{pool_id}}}:identities") == 2  # known, new-user
            assert check_store(client, [pool_id]).clean
        log = (tmp_path / "broker.log").read_text()
        assert "confirmed by 0 of the 1 Redis replicas" in log


def test_waiting_for_a_replica_that_does_not_exist_refuses_every_change(
    redis_server: RedisServer, broker_credentials: dict[str, str], tmp_path: Path
) -> None:
    with BrokerServer(
        redis_url=redis_server.url,
        credentials=broker_credentials,
        workers=1,
        env={"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_MS": "100"},
        log_path=tmp_path / "broker.log",
    ) as server:
        from support.faults import call

        with redis_server.client() as client:
            before = set(client.zrange(layout.POOL_INDEX, 0, -1))
        created = call(
            server,
            "CreateIdentityPool",
            {"IdentityPoolName": "unconfirmed", "AllowUnauthenticatedIdentities": False},
        )
        assert created.status_code == 500
        assert created.json()["__type"] == "InternalErrorException"
        with redis_server.client() as client:  # the unacknowledged pool left nothing behind
            assert not [p for p in client.zrange(layout.POOL_INDEX, 0, -1) if p not in before]


# --- settings: one clear line each ------------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"REDIS_URL": "redis://127.0.0.1:1/0", "REDIS_CLUSTER_NODES": "127.0.0.1:7000"},
            "REDIS_URL and REDIS_CLUSTER_NODES are set together: choose one Redis topology",
        ),
        (
            {"REDIS_CLUSTER_NODES": "127.0.0.1:7000", "REDIS_SENTINELS": "127.0.0.1:26379"},
            "REDIS_CLUSTER_NODES and REDIS_SENTINELS are set together",
        ),
        (
            {"REDIS_CLUSTER_NODES": "127.0.0.1:7000,redis-b"},
            "REDIS_CLUSTER_NODES must be comma-separated host:port pairs, got 'redis-b'",
        ),
        (
            {"REDIS_CLUSTER_NODES": "127.0.0.1:70000"},
            "REDIS_CLUSTER_NODES must be comma-separated host:port pairs, got '127.0.0.1:70000'",
        ),
        ({"REDIS_SENTINELS": "127.0.0.1:26379"}, "REDIS_SENTINEL_MASTER is required"),
        ({"REDIS_SENTINEL_MASTER": "m"}, "REDIS_SENTINEL_MASTER is set without REDIS_SENTINELS"),
        ({"REDIS_WAIT_REPLICAS": "-1"}, "REDIS_WAIT_REPLICAS must be between 0 and 16"),
        ({"REDIS_WAIT_TIMEOUT_MS": "0"}, "REDIS_WAIT_TIMEOUT_MS must be between 1 and 60000"),
        ({"REDIS_PASSWORD": "x"}, "REDIS_PASSWORD is for a cluster or a Sentinel set"),
    ],
)
def test_bad_redis_settings_stop_the_service_with_one_line(
    env: dict[str, str], message: str, broker_credentials: dict[str, str]
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Settings.from_env(env)
    server = BrokerServer(redis_env={"REDIS_URL": "redis://unused"}, credentials=broker_credentials)
    started = subprocess.run(
        [str(server.gunicorn), "-c", "config/gunicorn.conf.py", "wsgi:app"],
        cwd=REPO_ROOT,
        env=_without_redis_url(server.env(), env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode != 0
    output = started.stdout + started.stderr
    assert message in output
    assert "Traceback" not in output


def _without_redis_url(base: dict[str, str], env: dict[str, str]) -> dict[str, str]:
    merged = {k: v for k, v in base.items() if k != "REDIS_URL"}
    merged.update(env)
    return merged


def test_the_settings_describe_each_topology_without_its_password() -> None:
    cluster = RedisSettings.from_env(
        {"REDIS_CLUSTER_NODES": "10.0.0.1:7000,[::1]:7001", "REDIS_PASSWORD": "hunter2hunter2"}
    )
    assert cluster.mode == "cluster" and cluster.nodes == (("10.0.0.1", 7000), ("::1", 7001))
    assert "hunter2" not in cluster.describe() and "10.0.0.1:7000" in cluster.describe()
    sentinel = RedisSettings.from_env(
        {"REDIS_SENTINELS": "s1:26379,s2:26379", "REDIS_SENTINEL_MASTER": "mymaster"}
    )
    assert sentinel.describe() == "Redis Sentinel master 'mymaster' (sentinels s1:26379, s2:26379)"
    standalone = RedisSettings.from_env({"REDIS_URL": "redis://:secretpw@cache:6380/2"})
    assert standalone.describe() == "Redis redis://cache:6380/2"


class Collected(logging.Handler):
    """The broker's log records (its loggers do not propagate to pytest's)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage() + (" Traceback" if record.exc_info else ""))


@pytest.fixture
def broker_log() -> Iterator[Collected]:
    from broker.observability import logs

    logs.configure()  # the broker's own handler first: it replaces what it finds
    collected = Collected()
    logger = logging.getLogger("broker")
    logger.addHandler(collected)
    try:
        yield collected
    finally:
        logger.removeHandler(collected)


def test_an_unreachable_sentinel_is_named_in_one_line_at_start(
    broker_credentials: dict[str, str], broker_log: Collected
) -> None:
    from support.processes import free_port

    from broker.app.factory import create_app

    port = free_port()
    settings = Settings.from_env(
        {
            "REDIS_SENTINELS": f"127.0.0.1:{port}",
            "REDIS_SENTINEL_MASTER": "mymaster",
            "BROKER_REDIS_TIMEOUT": "0.5",
            "BROKER_CREDENTIALS": ",".join(f"{k}:{v}" for k, v in broker_credentials.items()),
        }
    )
    create_app(settings)
    logged = "\n".join(broker_log.lines)
    lines = [line for line in broker_log.lines if "signing keys not loaded" in line]
    assert len(lines) == 1, logged
    assert f"Redis Sentinel master 'mymaster' (sentinels 127.0.0.1:{port})" in lines[0]
    assert "Sentinel names no master: no sentinel answered" in lines[0]
    assert "Traceback" not in logged and "<redis" not in logged
    assert not [line for line in broker_log.lines if line.startswith("redis error")]


def test_a_default_issuer_off_loopback_is_warned_about(
    redis_server: RedisServer,
    broker_credentials: dict[str, str],
    broker_log: Collected,
) -> None:
    from broker.app.factory import create_app

    base = {
        "REDIS_URL": redis_server.url,
        "BROKER_BIND": "0.0.0.0:8000",
        "BROKER_CREDENTIALS": ",".join(f"{k}:{v}" for k, v in broker_credentials.items()),
    }
    create_app(Settings.from_env(base))
    create_app(Settings.from_env({**base, "BROKER_ISSUER": "https://id.example.test"}))
    create_app(Settings.from_env({**base, "BROKER_BIND": "127.0.0.1:8000"}))
    warnings = [line for line in broker_log.lines if "BROKER_ISSUER is not set" in line]
    assert len(warnings) == 1
    assert "http://0.0.0.0:8000" in warnings[0]


@pytest.mark.every_topology
def test_the_data_lands_on_the_topology(
    store: Topology, cognito: Any, pool: dict[str, Any]
) -> None:
    """What the broker wrote is in this topology's Redis, read by the broker's own connector."""
    pool_id = pool["IdentityPoolId"]
    identity = cognito.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: "lands"}
    )["IdentityId"]
    from broker.store.redis_store import RedisStore

    found = RedisStore(connector_for(store)).get_identity(identity)
    assert found is not None and found.pool_id == pool_id
