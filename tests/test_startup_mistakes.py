"""One clear line for each mistake at start (issue 16 item 4), never a traceback: a port
already in use, stored keys that do not open with the configured key-encryption key, a
configuration error, and upstream mode with an AWS_PROFILE that names no profile.

The gunicorn cases run the real ``gunicorn -c config/gunicorn.conf.py wsgi:app`` as
``scripts/run`` does, each bounded in time."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support.processes import (
    RedisServer,
    broker_env,
    end_process,
    free_port,
    http_ok,
    log_tail,
    spawn,
    wait_until,
)
from support.upstream import upstream_environment

from broker.app.factory import create_app
from broker.observability import logs
from config.settings import Settings

pytestmark = pytest.mark.slow  # servers or subprocesses of its own: not the fast lane

REPO = Path(__file__).resolve().parents[1]
GUNICORN = str(Path(sys.prefix) / "bin" / "gunicorn")
PREFIX = "identity-broker: "


def gunicorn(
    env: dict[str, str], timeout: float = 60
) -> tuple[subprocess.CompletedProcess[str], float]:
    """gunicorn as scripts/run starts it, until it exits by itself (it must)."""
    started = time.monotonic()
    done = subprocess.run(
        [GUNICORN, "-c", "config/gunicorn.conf.py", "wsgi:app"],
        cwd=REPO,
        env={**broker_env(), "BROKER_WORKERS": "2", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done, time.monotonic() - started


def test_a_port_in_use_is_one_line_naming_broker_bind() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done, took = gunicorn(
            {"BROKER_BIND": f"127.0.0.1:{port}", "REDIS_URL": "redis://127.0.0.1:1/0"}
        )
    assert done.returncode == 2
    assert took < 15  # not gunicorn's five attempts
    assert "Traceback" not in done.stderr
    *before, line = done.stderr.strip().splitlines()
    assert len(before) <= 1  # gunicorn's own "Starting gunicorn" line
    assert line.startswith(PREFIX + "configuration error: BROKER_BIND=127.0.0.1:")
    assert "already in use" in line and "set BROKER_BIND to a free port" in line


def test_gunicorns_own_bind_option_is_refused_in_favour_of_broker_bind() -> None:
    """``gunicorn -b 0.0.0.0:...`` (here through GUNICORN_CMD_ARGS) would listen off
    loopback while the broker judged BROKER_BIND's loopback and kept the development
    doors open: refused, naming BROKER_BIND."""
    wanted, elsewhere = free_port(), free_port()
    done, took = gunicorn(
        {
            "BROKER_BIND": f"127.0.0.1:{wanted}",
            "GUNICORN_CMD_ARGS": f"--bind 0.0.0.0:{elsewhere}",
            "REDIS_URL": "redis://127.0.0.1:1/0",
        }
    )
    assert done.returncode == 2 and took < 15
    assert "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(
        PREFIX + f"configuration error: gunicorn was told to bind 0.0.0.0:{elsewhere}"
    )
    assert line.endswith(f"BROKER_BIND=127.0.0.1:{wanted}: set BROKER_BIND instead")


def test_a_unix_socket_another_broker_serves_is_not_taken_over(tmp_path: Path) -> None:
    """gunicorn unlinks a socket file it finds; one a live process listens on stops the
    start with one line instead (its clients stay with the process that has them)."""
    path = tmp_path / "broker.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as taken:
        taken.bind(str(path))
        taken.listen()
        done, _ = gunicorn(
            {
                "BROKER_BIND": f"unix:{path}",
                "BROKER_CREDENTIALS": "AKIDUNIXSOCKET:" + "u" * 32,
                "BROKER_ISSUER": "https://broker.example",
                "REDIS_URL": "redis://127.0.0.1:1/0",
            }
        )
        assert path.exists()
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line == (
        PREFIX + f"configuration error: BROKER_BIND=unix:{path}: a process already listens on "
        "this socket (another broker?): stop it, or set BROKER_BIND to another path"
    )


def test_a_configuration_error_reads_as_the_brokers_not_a_files() -> None:
    done, _ = gunicorn({"BROKER_BIND": f"127.0.0.1:{free_port()}", "BROKER_REGION": "moon base"})
    assert done.returncode == 2
    *before, line = done.stderr.strip().splitlines()
    assert len(before) <= 1  # gunicorn's own "Starting gunicorn" line
    assert (
        line
        == PREFIX + "configuration error: BROKER_REGION must look like us-east-1, got 'moon base'"
    )
    assert "gunicorn.conf.py" not in line


@pytest.mark.parametrize(
    ("kek", "says"),
    [
        (None, "BROKER_KEY_ENCRYPTION_KEY is not set"),
        ("cd" * 32, "does not open with BROKER_KEY_ENCRYPTION_KEY (wrong key?)"),
    ],
)
def test_sealed_keys_without_their_kek_are_a_line_per_worker(kek: str | None, says: str) -> None:
    with RedisServer() as redis_server:
        sealing = {"REDIS_URL": redis_server.url, "BROKER_KEY_ENCRYPTION_KEY": "ab" * 32}
        create_app(Settings.from_env(sealing))  # generates the first key, sealed
        env = {"REDIS_URL": redis_server.url, "BROKER_BIND": f"127.0.0.1:{free_port()}"}
        if kek is not None:
            env["BROKER_KEY_ENCRYPTION_KEY"] = kek
        # one worker: with several, gunicorn's master may print its own HaltServer
        # traceback while it reaps the second (gunicorn's behaviour, not the broker's)
        done, took = gunicorn({**env, "BROKER_WORKERS": "1"})
    assert done.returncode != 0
    assert took < 30
    assert "Traceback" not in done.stderr and '"traceback"' not in done.stderr
    reasons = [
        line for line in done.stderr.splitlines() if line.startswith(PREFIX + "cannot start: ")
    ]
    assert len(reasons) == 1, done.stderr  # one line from the one worker
    assert all(says in line for line in reasons)
    assert len(done.stderr.splitlines()) <= 20, done.stderr  # was 21 lines of JSON tracebacks


def test_an_aws_profile_that_does_not_exist_is_said_at_start_and_by_readyz(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    empty = tmp_path / "aws-config"
    empty.write_text("")
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    key = "k" * 32
    env = upstream_environment(
        endpoint=f"http://127.0.0.1:{free_port()}",  # never reached: nothing is sent
        pool_id="us-east-1:00000000-0000-4000-8000-000000000001",
        api_key=key,
    )
    logs.configure()  # the app's own handler first (its first call replaces the handlers)
    broker_log = logging.getLogger("broker")  # then caplog's: "broker" does not propagate
    with RedisServer() as redis_server, caplog.at_level(logging.ERROR, logger="broker"):
        broker_log.addHandler(caplog.handler)
        try:
            app = create_app(Settings.from_env({**env, "REDIS_URL": redis_server.url}))
        finally:
            broker_log.removeHandler(caplog.handler)
        said = [r.getMessage() for r in caplog.records if "AWS_PROFILE" in r.getMessage()]
        assert len(said) == 1 and "'no-such-profile'" in said[0]
        client = app.test_client()
        import boto3.session

        sessions = 0
        real_init = boto3.session.Session.__init__

        def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
            nonlocal sessions
            sessions += 1
            real_init(self, *args, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(boto3.session.Session, "__init__", counting_init)
            for _ in range(3):  # a monitor's probes read the profile once, not per probe
                ready = client.get("/readyz")
                assert ready.status_code == 503
                assert any("AWS_PROFILE='no-such-profile'" in r for r in ready.json["reasons"])
        assert sessions == 0
        answers: list[Any] = [
            client.post("/v1/token", headers={"X-Api-Key": key}, json={"user_id": "u"})
            for _ in range(8)  # past the breaker's threshold: it must not open
        ]
    for answer in answers:
        assert answer.status_code == 503
        assert answer.json["error"]["code"] == "UNAVAILABLE"
        assert "AWS_PROFILE='no-such-profile' names no profile" in answer.json["error"]["message"]


def test_a_bare_gunicorn_without_the_config_still_says_the_start_warnings(
    tmp_path: Path,
) -> None:
    """``gunicorn wsgi:app`` without ``-c config/gunicorn.conf.py`` has no master hook to
    log the settings' warnings: its worker says them instead of nobody."""
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    with RedisServer() as redis_server, log_path.open("wb") as log:
        env = {**broker_env(), "REDIS_URL": redis_server.url, "BROKER_BIND": f"127.0.0.1:{port}"}
        args = [GUNICORN, "-w", "1", "-b", f"127.0.0.1:{port}", "wsgi:app"]
        proc = spawn(args, log=log, env=env, cwd=REPO)
        try:
            reason = wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), proc, 30)
            assert not reason, log_tail(log_path)
        finally:
            end_process(proc, 10, signal.SIGTERM, group=True)
    said = [line for line in log_path.read_text().splitlines() if "development key" in line]
    assert said, log_tail(log_path)
