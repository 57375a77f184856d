"""Dependencies are bounded and locked: every requirement of pyproject.toml has an upper
bound, the locks pin a version inside it, and the locks name no machine's own index."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = [Requirement(r) for r in PROJECT["dependencies"]]
DEV = [Requirement(r) for r in PROJECT["optional-dependencies"]["dev"]]


def pinned(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return {
        name.lower().replace("_", "-"): version
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", text, re.MULTILINE)
    }


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [("requirements.lock", RUNTIME), ("requirements-dev.lock", RUNTIME + DEV)],
)
def test_every_requirement_is_bounded_and_locked_inside_its_bounds(
    lock: str, requirements: list[Requirement]
) -> None:
    versions = pinned(lock)
    for requirement in requirements:
        operators = {spec.operator for spec in requirement.specifier}
        assert operators & {"<", "<=", "~=", "=="}, f"{requirement} has no upper bound"
        assert operators & {">", ">=", "~=", "=="}, f"{requirement} has no lower bound"
        locked = versions.get(requirement.name.lower())
        assert locked is not None, f"{requirement.name} is not in {lock}"
        assert requirement.specifier.contains(locked), f"{lock} pins {locked}: not {requirement}"


@pytest.mark.parametrize(
    "lock", ["requirements.lock", "requirements-dev.lock", "bench/requirements.lock"]
)
def test_the_locks_name_no_local_index_or_wheel_directory(lock: str) -> None:
    text = (ROOT / lock).read_text()
    for option in ("--index-url", "--extra-index-url", "--find-links", "file://", " -f "):
        assert option not in text, f"{lock} holds {option!r}: a path of one machine"
