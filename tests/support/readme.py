"""The README's examples, read from the file itself: each is a fenced block after an
``<!-- example: NAME -->`` marker, run by the tests as written (but for the port)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
DOCUMENTED_URL = "http://127.0.0.1:8000"


def example(name: str) -> str:
    match = re.search(rf"<!-- example: {name} -->\n```\w+\n(.*?)```", README.read_text(), re.DOTALL)
    if match is None:
        raise AssertionError(f"README has no example '{name}'")
    return match.group(1)
