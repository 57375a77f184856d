"""The README's examples work exactly as written (but for the port) against the broker run
with no configuration at all: the documented development key pair, on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.processes import BrokerServer, RedisServer, broker_env
from support.readme import DOCUMENTED_URL, README, example

from config.settings import DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY

pytestmark = pytest.mark.slow  # servers or subprocesses of its own: not the fast lane


@pytest.fixture(scope="module")
def dev_broker(redis_server: RedisServer) -> Iterator[BrokerServer]:
    """The broker with BROKER_CREDENTIALS unset, as `scripts/run` starts it by default."""
    with BrokerServer(redis_url=redis_server.url, credentials=None, workers=2) as server:
        yield server


def test_readme_documents_the_development_key_pair() -> None:
    text = README.read_text()
    assert f"`{DEV_ACCESS_KEY_ID}`" in text
    assert f"`{DEV_SECRET_ACCESS_KEY}`" in text


def test_the_boto3_example_runs_as_written(dev_broker: BrokerServer) -> None:
    code = example("boto3").replace(DOCUMENTED_URL, dev_broker.url)
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=broker_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "verified token for us-east-1:" in result.stdout
    assert "valid for 3600 s" in result.stdout


def test_the_first_curl_runs_as_written(dev_broker: BrokerServer) -> None:
    """The README's first example: a verifiable token, the same identity on a second call."""
    import json

    import jwt

    script = example("curl").replace(DOCUMENTED_URL, dev_broker.url)
    answers = []
    for _ in range(2):
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            env=broker_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        answers.append(json.loads(result.stdout))
    assert all(answer["success"] is True for answer in answers)
    first, second = (answer["data"] for answer in answers)
    assert first["identity_id"] == second["identity_id"]
    key = jwt.PyJWKClient(f"{dev_broker.url}/.well-known/jwks.json").get_signing_key_from_jwt(
        first["token"]
    )
    claims = jwt.decode(
        first["token"], key.key, algorithms=["RS512"], options={"verify_aud": False}
    )
    assert claims["sub"] == first["identity_id"]


def test_the_cli_example_runs_as_written(dev_broker: BrokerServer, tmp_path: Path) -> None:
    script = example("cli").replace(DOCUMENTED_URL, dev_broker.url)
    env = broker_env()
    env.update(
        {
            "PATH": os.pathsep.join([str(Path(sys.prefix) / "bin"), env.get("PATH", "")]),
            "HOME": str(tmp_path),
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_PAGER": "",
        }
    )
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"Token": "ey' in result.stdout
    assert '"IdentityId": "us-east-1:' in result.stdout


def test_the_development_pair_is_refused_when_real_credentials_are_set(
    broker_server: BrokerServer,
) -> None:
    """The session broker has BROKER_CREDENTIALS: the public dev pair must not work there."""
    import json

    from support.signing import post

    response = post(
        broker_server.url,
        json.dumps({"MaxResults": 1}).encode(),
        operation="ListIdentityPools",
        key_id=DEV_ACCESS_KEY_ID,
        secret=DEV_SECRET_ACCESS_KEY,
    )
    assert response.status_code == 400
    assert response.json()["__type"] == "UnrecognizedClientException"
