"""Strict JSON request bodies, for both front doors (no Flask here).

RFC 8259 JSON in UTF-8, one object at the top; ``NaN`` and ``Infinity`` (which Python's
``json`` would accept) are refused. An empty body means ``{}``. The parser raises neutral
errors; each door words them its own way (AWS's SerializationException, the backend's
ValidationException).

:func:`parse_object` takes a member repeated within one object last-wins, as AWS's own
parser does (the AWS door), or refuses it with ``unique_members`` (the backend door): a
proxy or a WAF in front of the broker may read the first of two ``user_id`` members and
the broker the last, so the two would disagree about whom the request names.
"""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = [
    "DuplicateMember",
    "NotAJsonObject",
    "NotJson",
    "json_type_name",
    "parse_object",
]

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


class DuplicateMember(ValueError):
    """An object of the body names ``name`` twice (or more); ``unique_members`` only."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the member {name!r} is repeated")
        self.name = name


class _NotANumber(ValueError):
    pass


def json_type_name(value: Any) -> str:
    """The JSON type of a parsed value, as messages name it (``null`` for None)."""
    return _JSON_TYPE_NAMES.get(type(value), "null")


def parse_object(body: bytes, *, unique_members: bool = False) -> dict[str, Any]:
    """The body's object. A member repeated within one object takes its last value, or
    with ``unique_members`` raises DuplicateMember (whichever object of the body it is in)."""
    if not body:
        return {}  # botocore sends {} for no parameters; no body at all means the same
    try:
        text = body.decode("utf-8")
        if text.startswith("\ufeff"):  # json.loads refuses a BOM with its own message
            data = json.loads(text, parse_constant=_reject_constant)
        else:  # what json.loads does next, with a decoder made once
            data = (_UNIQUE_DECODER if unique_members else _DECODER).decode(text)
    except DuplicateMember:
        raise
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


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """object_pairs_hook: the object as a dict, unless it names a member twice. The C
    scanner calls it once per object; one dict() and one len() comparison when all is well."""
    members = dict(pairs)
    if len(members) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise DuplicateMember(name)
            seen.add(name)
    return members


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)
_UNIQUE_DECODER: Final = json.JSONDecoder(
    parse_constant=_reject_constant, object_pairs_hook=_unique_members
)
