"""``scripts/run`` with no Redis configured starts the broker's own redis-server, private to
its run directory (a unix socket there, no TCP port, append-only file), gives it to the
broker, and stops gunicorn then that redis-server when it is stopped: SIGINT or SIGTERM to
the script, or ``scripts/run --stop`` (also after the script itself was killed).

The real script runs here, on a free port and a temporary run directory
(``BROKER_RUN_DIR``); it never connects to a Redis it did not start, and neither do these
tests. Every process it starts is stopped by pid at the end, even when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import redis
from support.clients import cognito_at
from support.oidc import verify
from support.processes import (
    REPO_ROOT,
    broker_env,
    child_pids,
    end_process,
    free_port,
    http_ok,
    log_tail,
    pid_alive,
    spawn,
)
from support.readme import DOCUMENTED_URL, example

from config.settings import DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY

pytestmark = pytest.mark.slow  # servers or subprocesses of its own: not the fast lane

RUN = REPO_ROOT / "scripts" / "run"
START_TIMEOUT = 90.0  # the first run may install requirements.lock into the venv
STOP_BOUND = 30.0  # gunicorn's graceful stop (quick: no request is running), then Redis's
PROCESSES = ("run", "gunicorn", "redis")  # the pid files: the script and its two children


class RunScript:
    """One ``scripts/run`` on a free port and ``run_dir``; remembers every pid it learns."""

    def __init__(self, run_dir: Path, log_path: Path) -> None:
        self.run_dir = run_dir
        self.log_path = log_path
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.seen: set[int] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = broker_env()  # no REDIS_*: the script must start its own
        env.update(
            {
                "BROKER_BIND": f"127.0.0.1:{self.port}",
                "BROKER_RUN_DIR": str(self.run_dir),
                "BROKER_WORKERS": "1",
                "VENV_DIR": sys.prefix,
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def start(self) -> RunScript:
        with self.log_path.open("ab") as log:
            self.proc = spawn(["bash", str(RUN)], log=log, env=self.env(), cwd=REPO_ROOT)
        deadline = time.monotonic() + START_TIMEOUT
        while not http_ok(f"{self.url}/readyz"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"scripts/run never got ready:\n{log_tail(self.log_path)}")
            time.sleep(0.1)
        self.pids()  # remember them for the clean-up
        return self

    def pids(self) -> dict[str, int]:
        """The script, gunicorn's master and the redis-server, from the pid files."""
        pids = {name: int((self.run_dir / f"{name}.pid").read_text()) for name in PROCESSES}
        self.seen.update(pids.values())
        self.seen.update(child_pids(pids["gunicorn"]))  # the workers
        return pids

    def stop_command(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(RUN), "--stop"],
            env=self.env(),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=STOP_BOUND * 3,
            check=False,
        )

    def clean_up(self) -> None:
        """Whatever a failed test left: the script, then every pid it ever had, by pid."""
        if self.proc is not None:
            end_process(self.proc, STOP_BOUND, signal.SIGTERM)
        for pid in self.seen:
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


@pytest.fixture
def runs(run_dir: Path, tmp_path: Path) -> Iterator[list[RunScript]]:
    """A list to append started scripts to; each is cleaned up at the end."""
    started: list[RunScript] = []
    try:
        yield started
    finally:
        for script in started:
            script.clean_up()


def start(runs: list[RunScript], run_dir: Path) -> RunScript:
    script = RunScript(run_dir, run_dir.parent / "run.log")
    runs.append(script)
    return script.start()


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(): value.decode() for key, value in pairs}


def listening_tcp_ports(pid: int) -> list[int]:
    """The TCP ports ``pid`` listens on: its socket inodes matched in /proc/net/tcp{,6}."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def wait_gone(pids: list[int], bound: float = STOP_BOUND) -> list[int]:
    """Wait up to ``bound`` seconds for every pid to end; return those still alive."""
    deadline = time.monotonic() + bound
    while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if pid_alive(pid)]


def all_pids(script: RunScript) -> list[int]:
    pids = script.pids()
    return [*pids.values(), *child_pids(pids["gunicorn"])]


def own_redis(run_dir: Path) -> redis.Redis:
    return redis.Redis(
        unix_socket_path=str(run_dir / "redis.sock"), socket_timeout=5.0, decode_responses=True
    )


def test_it_serves_on_its_own_redis_and_sigint_stops_both(
    runs: list[RunScript], run_dir: Path
) -> None:
    script = start(runs, run_dir)
    pids = script.pids()
    assert script.proc is not None and pids["run"] == script.proc.pid
    assert http_ok(f"{script.url}/healthz")

    socket_path = run_dir / "redis.sock"
    assert environ_of(pids["gunicorn"])["REDIS_URL"] == f"unix://{socket_path}?db=0"
    assert "redis-server" in Path(f"/proc/{pids['redis']}/cmdline").read_text()
    assert listening_tcp_ports(pids["redis"]) == []  # the unix socket only: no 6379, no port
    assert socket_path.is_socket()
    with own_redis(run_dir) as own:
        assert own.config_get("appendonly") == {"appendonly": "yes"}
        assert own.config_get("dir")["dir"] == str(run_dir / "redis")
        assert own.dbsize() > 0  # the broker wrote its signing key there

    # the README's first example, as written but for the port: a verifiable token, the
    # same identity twice, on no configuration at all
    curl = example("curl").replace(DOCUMENTED_URL, script.url)
    answers = [
        json.loads(subprocess.run(["bash", "-c", curl], capture_output=True, text=True,
                                  timeout=30, check=True).stdout)
        for _ in range(2)
    ]  # fmt: skip
    first, second = (answer["data"] for answer in answers)
    assert first["identity_id"] == second["identity_id"]
    audience = jwt.decode(first["token"], options={"verify_signature": False})["aud"]
    assert verify(script.url, first["token"], audience)[1]["sub"] == first["identity_id"]
    assert f"identity-broker ready at {script.url}" in script.log_path.read_text()

    cognito = cognito_at(script.url, DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY)
    pool = cognito.create_identity_pool(
        IdentityPoolName="kept", AllowUnauthenticatedIdentities=False
    )["IdentityPoolId"]

    everything = all_pids(script)
    os.kill(pids["run"], signal.SIGINT)
    assert wait_gone(everything) == [], log_tail(script.log_path)
    assert script.proc.wait(5) == 130
    assert not socket_path.exists()
    assert not any((run_dir / f"{name}.pid").exists() for name in PROCESSES)
    log = script.log_path.read_text()
    assert log.index("stopping gunicorn") < log.index("stopping redis-server")

    again = start(runs, run_dir)  # the same run directory: the same data
    cognito = cognito_at(again.url, DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY)
    assert pool in [
        p["IdentityPoolId"] for p in cognito.list_identity_pools(MaxResults=60)["IdentityPools"]
    ]
    everything = all_pids(again)
    os.kill(again.pids()["run"], signal.SIGTERM)
    assert wait_gone(everything) == [], log_tail(again.log_path)


@pytest.mark.parametrize("script_state", ["running", "killed"])
def test_stop_stops_a_broker_left_running(
    runs: list[RunScript], run_dir: Path, script_state: str
) -> None:
    script = start(runs, run_dir)
    everything = all_pids(script)
    if script_state == "killed":  # its trap never runs: gunicorn and Redis are left over
        assert script.proc is not None
        end_process(script.proc, 5.0, signal.SIGKILL)
        assert all(pid_alive(pid) for pid in everything[1:])

    stopped = script.stop_command()
    assert stopped.returncode == 0, stopped.stderr
    assert wait_gone(everything) == [], stopped.stderr
    assert not (run_dir / "redis.sock").exists()
    said = stopped.stderr + script.log_path.read_text()  # the script says it, or --stop
    assert said.index("stopping gunicorn") < said.index("stopping redis-server")

    nothing = script.stop_command()
    assert nothing.returncode == 0
    assert "nothing was running" in nothing.stderr
