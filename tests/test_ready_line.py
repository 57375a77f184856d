"""The ready line (issue 16 item 3): one log line per start, from the first worker once its
app is built, naming the URL, the signing key (and whether this start generated it), each
door's mode and the curl to try; never before a configuration error."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from support.processes import BrokerServer, RedisServer, broker_env, free_port

from config.backend import DEV_API_KEY

pytestmark = pytest.mark.slow  # servers or subprocesses of its own: not the fast lane

REPO = Path(__file__).resolve().parents[1]
READY = "identity-broker ready at "


def ready_lines(log: Path) -> list[str]:
    lines = []
    for raw in log.read_text().splitlines():
        if raw.startswith("{"):
            message = json.loads(raw).get("msg", "")
            if message.startswith(READY):
                lines.append(message)
    return lines


def test_one_ready_line_per_start_naming_the_key_the_doors_and_the_curl(tmp_path: Path) -> None:
    with RedisServer() as redis_server:
        first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
        server = BrokerServer(
            redis_url=redis_server.url,
            credentials={"AKIDREADYLINE1": "r" * 32},
            workers=3,
            log_path=first_log,
        )
        with server, urllib.request.urlopen(f"{server.url}/.well-known/jwks.json") as answer:
            (kid,) = [key["kid"] for key in json.loads(answer.read())["keys"]]
        (line,) = ready_lines(first_log)  # three workers, one line
        assert line.startswith(f"{READY}{server.url};")
        assert f"signing key {kid} (generated now, in Redis {redis_server.url}" in line
        assert "AWS door POST /: SigV4 with 1 key(s) of BROKER_CREDENTIALS" in line
        assert "backend door POST /v1/token: the development key" in line
        assert f"try: curl -s {server.url}/v1/token -H 'X-Api-Key: {DEV_API_KEY}'" in line

        again = BrokerServer(
            redis_url=redis_server.url,
            credentials={"AKIDREADYLINE1": "r" * 32},
            workers=2,
            log_path=second_log,
            env={"BROKER_BACKEND_AUTH": "off"},
        )
        with again:
            pass
        (line,) = ready_lines(second_log)
        assert f"signing key {kid} (from Redis " in line  # this start did not make it
        assert "backend door POST /v1/token: off" in line and "try:" not in line


def test_no_ready_line_before_a_configuration_error() -> None:
    done = subprocess.run(
        [str(Path(sys.prefix) / "bin" / "gunicorn"), "-c", "config/gunicorn.conf.py", "wsgi:app"],
        cwd=REPO,
        env={
            **broker_env(),
            "BROKER_BIND": f"127.0.0.1:{free_port()}",
            "BROKER_ACCOUNT_ID": "12",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert READY not in done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .endswith("BROKER_ACCOUNT_ID must be 12 digits, got '12'")
    )
