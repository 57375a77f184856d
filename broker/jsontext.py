"""The JSON encoders of the hot paths, made once.

``json.dumps`` builds a new ``JSONEncoder`` on every call given options (``separators``,
``ensure_ascii``), which costs more than encoding a small object; these are the same
encoders, made at import. ``COMPACT.encode(v)`` is
``json.dumps(v, separators=(",", ":"), ensure_ascii=False)`` and ``PLAIN.encode(v)`` is
``json.dumps(v, ensure_ascii=False)``.
"""

from __future__ import annotations

import json
from typing import Final

COMPACT: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
PLAIN: Final = json.JSONEncoder(ensure_ascii=False)
