"""A real Prometheus server (Debian's ``prometheus``) on a free loopback port, scraping the
targets a test names every second, with the project's alert rules loaded; and ``promtool``.

Started in its own session with a parent-death signal, like every process of
``support.processes``; its data lives in a temporary directory removed by ``stop()``.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from support.processes import (
    REPO_ROOT,
    ManagedProcess,
    ProcessStartError,
    end_process,
    free_port,
    http_ok,
    log_tail,
    refuse_in_fast_lane,
    spawn,
    wait_until,
)

OPS = REPO_ROOT / "ops"
ALERT_RULES = OPS / "prometheus" / "broker-alerts.yml"
ALERT_TESTS = OPS / "prometheus" / "broker-alerts.test.yml"
EXAMPLE_CONFIG = OPS / "prometheus" / "prometheus.yml"
DASHBOARD = OPS / "grafana" / "broker-dashboard.json"
JOB = "identity-broker"  # the job name the rules and the dashboard select
START_TIMEOUT = 30.0


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} is not on PATH (scripts/test installs Debian's prometheus)")
    return found


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO_ROOT,
    )


class PrometheusServer(ManagedProcess):
    """``prometheus`` scraping ``targets`` (host:port) as job ``identity-broker`` every
    second, evaluating ``ALERT_RULES`` every second."""

    def __init__(self, targets: Sequence[str]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="prometheus-test-"))
        self.port = free_port()
        self.targets = list(targets)
        self.log_path = self.dir / "prometheus.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        refuse_in_fast_lane("prometheus")
        config = self.dir / "prometheus.yml"
        config.write_text(
            json.dumps(  # YAML is a superset of JSON
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(ALERT_RULES)],
                    "scrape_configs": [
                        {"job_name": JOB, "static_configs": [{"targets": self.targets}]}
                    ],
                }
            )
        )
        args = [
            tool("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        with self.log_path.open("ab") as log:
            self._proc = spawn(args, log=log, cwd=self.dir)
        reason = wait_until(lambda: http_ok(f"{self.url}/-/ready"), self._proc, START_TIMEOUT)
        if reason:
            tail = log_tail(self.log_path)
            self.stop()
            raise ProcessStartError(f"prometheus on {self.url} {reason}; log:\n{tail}")
        return self

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=5) as resp:
            answer = json.loads(resp.read())
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector: [{"metric": {...}, "value": [ts, "text"]}, ...]."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def stop(self) -> None:
        if self._proc is not None:
            end_process(self._proc, 10.0, signal.SIGTERM)
        shutil.rmtree(self.dir, ignore_errors=True)
