"""Shared fixtures: one real redis-server and one real gunicorn broker for the session.

Tests share both, so no test may assume an empty Redis: each creates its own identity pool
(uuid-named, see ``pool``) and looks only at what it made. Nothing is flushed between tests.

A module marked ``pytest.mark.every_topology`` runs each of its tests that uses the
broker against each Redis topology in turn (``TOPOLOGIES``): the standalone server, a
Sentinel set and a Redis Cluster, each started once for the session when first needed
(``store`` is the topology the broker under test uses, with a client to look at its data).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore.config
import pytest
import redis
from support import processes, redis_clients
from support.issuer import SESSION_GOOGLE_APP, TestIssuer
from support.processes import BrokerServer, RedisServer, broker_env
from support.topologies import RedisClusterServers, SentinelServers, StandaloneRedis, Topology

if TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient

REGION = "us-east-1"
DEVELOPER_PROVIDER = "login.example.dev"
IN_PROCESS_ISSUER = "http://localhost"
TOPOLOGIES = ("standalone", "sentinel", "cluster")


def pytest_configure(config: pytest.Config) -> None:
    markexpr = str(getattr(config.option, "markexpr", "") or "")
    processes.FAST_LANE = markexpr.replace(" ", "") == "notslow"
    config.addinivalue_line(
        "markers", "every_topology: run the module's broker tests on every Redis topology"
    )


#: Fixtures that start gunicorn, a Redis Cluster, a Sentinel set or moto_server: a test
#: that uses one, directly or through another fixture, is ``slow``.
SLOW_FIXTURES = frozenset(
    {"broker_server", "redis_cluster", "redis_sentinels", "backend_broker", "broker", "dev_broker"}
    | {"downstream", "hostile", "limited", "moto", "two_brokers", "upstream", "filled"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` (left out of ``scripts/test --fast``) every test that uses a fixture of
    ``SLOW_FIXTURES`` or runs on a Sentinel set or a Cluster. A module or test that starts
    servers of its own carries ``pytest.mark.slow`` itself (and ``support.processes``
    refuses to start gunicorn in the fast lane, so a missing mark fails loudly). What is
    left is the fast lane: the app in-process on a real redis-server."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        topology = callspec.params.get("topology", "standalone") if callspec else "standalone"
        if (
            SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ()))
            or topology != "standalone"
        ):
            item.add_marker(pytest.mark.slow)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("every_topology") and (
        "topology" in metafunc.fixturenames
    ):
        metafunc.parametrize("topology", TOPOLOGIES, indirect=True, scope="session")


@pytest.fixture(scope="session")
def topology(request: pytest.FixtureRequest) -> str:
    """The Redis topology of the broker under test: standalone unless the module asks for
    every one (``every_topology``)."""
    return str(getattr(request, "param", "standalone"))


@pytest.fixture(scope="session", autouse=True)
def _redis_clients_tracked() -> Iterator[None]:
    """Every ``redis.Redis`` this process builds (in-process apps, stores, caches, the
    servers' and topologies' clients, a cluster's node clients, a Sentinel's sentinel
    clients) is tracked, so that its connections are closed after each test
    (``support.redis_clients`` says why)."""
    build = redis.Redis.__init__

    def init(self: redis.Redis, *args: Any, **kwargs: Any) -> None:
        build(self, *args, **kwargs)
        redis_clients.track(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(redis.Redis, "__init__", init)
        yield
    redis_clients.disconnect_all()


@pytest.fixture(autouse=True)
def _redis_clients_disconnected(_redis_clients_tracked: None) -> Iterator[None]:
    """After each test (and its other fixtures' teardown), close the Redis connections of
    every tracked client."""
    yield
    redis_clients.disconnect_all()


@pytest.fixture(scope="session")
def broker_credentials() -> dict[str, str]:
    """Two key pairs with secrets fresh for each session; the first is the one clients use."""
    return {
        "AKIDTESTBROKER": secrets.token_urlsafe(30),
        "AKIDSECONDKEY": secrets.token_urlsafe(30),
    }


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this module's own: what its tests count (rate-limit windows), fill
    or break, no other module's tests see, and theirs does not disturb it."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """A Redis Cluster: 3 masters and 3 replicas."""
    with RedisClusterServers() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinels() -> Iterator[SentinelServers]:
    """A Sentinel set: 1 master, 2 replicas (chained), 3 sentinels."""
    with SentinelServers() as sentinels:
        yield sentinels


@pytest.fixture(scope="session")
def store(topology: str, redis_server: RedisServer, request: pytest.FixtureRequest) -> Topology:
    """The Redis the broker under test keeps its data in."""
    if topology == "cluster":
        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        return cluster
    if topology == "sentinel":
        sentinels: SentinelServers = request.getfixturevalue("redis_sentinels")
        return sentinels
    return StandaloneRedis(redis_server)


@pytest.fixture(scope="session")
def google_issuer() -> Iterator[TestIssuer]:
    """A test issuer the session's broker takes for accounts.google.com (through the
    BROKER_OIDC_PROVIDERS override), for tests that link public-provider logins."""
    with TestIssuer().running() as issuer:
        yield issuer


@pytest.fixture(scope="session")
def broker_server(
    store: Topology,
    broker_credentials: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    google_issuer: TestIssuer,
) -> Iterator[BrokerServer]:
    log_path = tmp_path_factory.mktemp(f"broker-{store.topology}") / "gunicorn.log"
    google = {
        "issuer": google_issuer.url,
        "jwks_uri": google_issuer.jwks_uri,
        "client_ids": [SESSION_GOOGLE_APP],
    }
    server = BrokerServer(
        redis_env=store.env(),
        credentials=broker_credentials,
        workers=3,
        log_path=log_path,
        env={"BROKER_OIDC_PROVIDERS": json.dumps({"accounts.google.com": google})},
    )
    with server:
        yield server


@pytest.fixture(scope="session")
def boto_session(broker_credentials: dict[str, str]) -> boto3.session.Session:
    """One boto3 session, so each test's client reuses the loaded service model."""
    key_id, secret = next(iter(broker_credentials.items()))
    return boto3.session.Session(
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name=REGION,
    )


@pytest.fixture
def cognito(broker_server: BrokerServer, boto_session: boto3.session.Session) -> Iterator[Any]:
    """A boto3 ``cognito-identity`` client at the broker: no retries, short timeouts."""
    client = boto_session.client(
        "cognito-identity",
        endpoint_url=broker_server.url,
        config=botocore.config.Config(
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=10,
        ),
    )
    yield client
    client.close()


@pytest.fixture
def aws_cli_env(broker_server: BrokerServer) -> dict[str, str]:
    """Environment for ``aws cognito-identity ... --endpoint-url <broker_server.url>``.

    No profile, config or credentials file from the machine is read; the venv's ``aws`` comes
    first on PATH. AWS_ENDPOINT_URL points at the broker as well.
    """
    env = broker_env()  # the machine's AWS_* (profile, keys, region) are left out
    venv_bin = str(Path(sys.prefix) / "bin")
    env.update(
        {
            "PATH": os.pathsep.join([venv_bin, env.get("PATH", os.defpath)]),
            "AWS_ACCESS_KEY_ID": broker_server.access_key_id,
            "AWS_SECRET_ACCESS_KEY": broker_server.secret_access_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_ENDPOINT_URL": broker_server.url,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_PAGER": "",
        }
    )
    return env


@pytest.fixture
def pool(cognito: Any) -> Iterator[dict[str, Any]]:
    """A fresh identity pool (developer provider login.example.dev), deleted afterwards."""
    created: dict[str, Any] = cognito.create_identity_pool(
        IdentityPoolName=f"test_{uuid.uuid4().hex}",
        AllowUnauthenticatedIdentities=False,
        DeveloperProviderName=DEVELOPER_PROVIDER,
    )
    yield created
    with contextlib.suppress(cognito.exceptions.ResourceNotFoundException):  # test deleted it
        cognito.delete_identity_pool(IdentityPoolId=created["IdentityPoolId"])


@pytest.fixture
def app(store: Topology, broker_credentials: dict[str, str]) -> Flask:
    """The app in-process against the broker's Redis (same credentials as broker_server)."""
    from broker.app.factory import create_app  # lazily: conftest must import without the app
    from config.settings import Settings

    settings = Settings.from_env(
        {
            **store.env(),
            "BROKER_CREDENTIALS": ",".join(f"{k}:{v}" for k, v in broker_credentials.items()),
            "BROKER_ISSUER": IN_PROCESS_ISSUER,
        }
    )
    flask_app = create_app(settings)
    flask_app.testing = True
    return flask_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
