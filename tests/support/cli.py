"""The operator's commands as an operator runs them: ``flask --app app broker ...`` in a
subprocess from the repository root, with only the environment the test gives it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from support.processes import broker_env

REPO_ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.prefix) / "bin" / "flask")


def broker_cli(
    env: Mapping[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``flask --app app broker <args>`` with the parent's environment minus every BROKER_*,
    REDIS_* and AWS_* variable, plus ``env``; bounded by ``timeout``."""
    return subprocess.run(
        [FLASK, "--app", "app", "broker", *args],
        cwd=REPO_ROOT,
        env={**broker_env(), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
