"""Strict JSON request bodies, for both front doors (no Flask here).

RFC 8259 JSON in UTF-8, one object at the top; ``NaN`` and ``Infinity`` (which Python's
``json`` would accept) are refused. An empty body means ``{}``. The parser raises neutral
errors; each door words them its own way (AWS's SerializationException, the backend's
ValidationException).
"""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = ["NotAJsonObject", "NotJson", "json_type_name", "parse_object"]

_JSON_TYPE_NAMES: Final[dict[type, str]] = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


class NotJson(ValueError):
    """The body is not UTF-8 JSON; the text says why (``not valid JSON: ...``)."""


class NotAJsonObject(ValueError):
    """The body is JSON but not an object; ``type_name`` is what it is instead."""

    def __init__(self, type_name: str) -> None:
        super().__init__(f"a JSON {type_name}, not an object")
        self.type_name = type_name


class _NotANumber(ValueError):
    pass


def json_type_name(value: Any) -> str:
    """The JSON type of a parsed value, as messages name it (``null`` for None)."""
    return _JSON_TYPE_NAMES.get(type(value), "null")


def parse_object(body: bytes) -> dict[str, Any]:
    if not body:
        return {}  # botocore sends {} for no parameters; no body at all means the same
    try:
        text = body.decode("utf-8")
        if text.startswith("\ufeff"):  # json.loads refuses a BOM with its own message
            data = json.loads(text, parse_constant=_reject_constant)
        else:  # what json.loads does next, with a decoder made once
            data = _DECODER.decode(text)
    except UnicodeDecodeError as exc:
        raise NotJson(f"not valid UTF-8: invalid byte at offset {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise NotJson(f"not valid JSON: {exc}") from None
    except _NotANumber as exc:
        raise NotJson(f"not valid JSON: {exc}") from None
    except ValueError:  # an integer beyond Python's digit limit
        raise NotJson("not valid JSON: number too long") from None
    except RecursionError:
        raise NotJson("not valid JSON: nested too deeply") from None
    if type(data) is not dict:
        raise NotAJsonObject(json_type_name(data))
    return data


def _reject_constant(name: str) -> Any:
    raise _NotANumber(f"{name} is not a JSON number")


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)
