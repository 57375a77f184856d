"""The operator's commands (``flask --app app broker ...``, broker/app/cli.py) as an operator
runs them: the real CLI in a subprocess against a Redis of the test's own, filled through
the backend door's development default, and against a Redis that does not answer."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from support.cli import broker_cli
from support.processes import RedisServer, free_port

from broker.app.factory import create_app
from config.backend import DEV_API_KEY, DEV_DEVELOPER_PROVIDER, DEV_POOL_NAME
from config.settings import Settings

pytestmark = pytest.mark.slow  # servers or subprocesses of its own: not the fast lane


def cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return broker_cli({"REDIS_URL": redis_url}, *args, timeout=60)


@pytest.fixture(scope="module")
def filled() -> Iterator[tuple[str, dict[str, str]]]:
    """A private Redis holding the development pool with two users: (url, user -> id)."""
    with RedisServer() as server:
        client = create_app(Settings.from_env({"REDIS_URL": server.url})).test_client()
        ids = {}
        for user in ("ann", "bob"):
            answer = client.post(
                "/v1/token", headers={"X-Api-Key": DEV_API_KEY}, json={"user_id": user}
            )
            assert answer.status_code == 200, answer.json
            ids[user] = answer.json["data"]["identity_id"]
        yield server.url, ids


def test_pools_is_a_table_of_every_pool(filled: tuple[str, dict[str, str]]) -> None:
    url, ids = filled
    done = cli(url, "pools")
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["IDENTITY", "POOL", "ID", "NAME", "DEVELOPER", "PROVIDER"] + [
        "UNAUTHENTICATED"
    ]
    assert len(rows) == 1
    pool_id = next(iter(ids.values())).split(":")[0]  # the region part is the pool's too
    assert rows[0].split()[1:] == [DEV_POOL_NAME, DEV_DEVELOPER_PROVIDER, "no"]
    assert rows[0].startswith(pool_id + ":")


def test_lookup_names_the_identity_of_a_user(filled: tuple[str, dict[str, str]]) -> None:
    url, ids = filled
    done = cli(url, "lookup", "ann")
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    assert line.endswith(f" {DEV_DEVELOPER_PROVIDER}:ann -> {ids['ann']}")
    missing = cli(url, "lookup", "nobody")
    assert missing.returncode == 1
    assert "developer user id 'nobody' is linked to no identity" in missing.stdout


def test_lookup_in_a_pool_that_does_not_exist_says_so(
    filled: tuple[str, dict[str, str]],
) -> None:
    url, _ = filled
    done = cli(url, "lookup", "ann", "--pool", "us-east-1:00000000-0000-4000-8000-0000000000aa")
    assert done.returncode == 1
    assert "identity pool us-east-1:00000000-0000-4000-8000-0000000000aa does not exist" in (
        done.stderr
    )


def test_identity_shows_its_pool_and_logins(filled: tuple[str, dict[str, str]]) -> None:
    url, ids = filled
    done = cli(url, "identity", ids["bob"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"identity {ids['bob']} in us-east-1:")
    assert lines[0].endswith(", enabled")
    assert lines[1].startswith("created ") and " UTC, last modified " in lines[1]
    assert lines[2:] == [f"login {DEV_DEVELOPER_PROVIDER}:bob"]
    unknown = cli(url, "identity", "us-east-1:00000000-0000-4000-8000-0000000000bb")
    assert unknown.returncode == 1
    assert "Traceback" not in unknown.stderr


COMMANDS: list[tuple[str, ...]] = [
    ("check",),
    ("keys",),
    ("rotate-key",),
    ("migrate",),
    ("pools",),
    ("lookup", "ann"),
    ("identity", "us-east-1:00000000-0000-4000-8000-0000000000cc"),
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: args[0])
def test_an_unreachable_redis_is_one_line_naming_it(args: Any) -> None:
    port = free_port()  # nothing listens there
    done = cli(f"redis://127.0.0.1:{port}/0", *args)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, done.stderr
    assert f"127.0.0.1:{port}" in errors[0] and "REDIS_URL" in errors[0]
    # a handful (the app's start warnings, one JSON line each), not 80; the error last
    assert len(done.stderr.splitlines()) <= 6, done.stderr
    assert done.stderr.splitlines()[-1] == errors[0]
