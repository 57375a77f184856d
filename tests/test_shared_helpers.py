"""The small helpers both front doors and every config module share: the strict JSON body
parser, the environment readers, and the AWS door's two tables."""

from __future__ import annotations

import json

import pytest

from broker.awsjson.operations import OPERATIONS as DISPATCH
from broker.awsjson.schemas import SCHEMAS
from broker.http.jsonbody import (
    DuplicateMember,
    NotAJsonObject,
    NotJson,
    json_type_name,
    parse_object,
)
from config.env import matches, read_choice, read_float, read_int, required
from config.errors import ConfigError


def parse_object_unique(body: bytes) -> dict[str, object]:
    return parse_object(body, unique_members=True)


def test_every_dispatched_operation_has_a_schema() -> None:
    assert set(DISPATCH) <= set(SCHEMAS)


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b"", {}), (b"{}", {}), (b'{"a": [1, 2.5, null]}', {"a": [1, 2.5, None]})],
)
def test_parse_object(body: bytes, expected: dict[str, object]) -> None:
    assert parse_object(body) == parse_object_unique(body) == expected


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b" ", "not valid JSON: Expecting value"),
        (b'{"a": "\xff"}', "not valid UTF-8: invalid byte at offset 7"),
        (b'{"a": NaN}', "not valid JSON: NaN is not a JSON number"),
        (b'{"a": -Infinity}', "not valid JSON: -Infinity is not a JSON number"),
        (b'{"a": ' + b"9" * 5000 + b"}", "not valid JSON: number too long"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON: nested too deeply"),
    ],
)
def test_parse_object_refuses_what_is_not_json(body: bytes, detail: str) -> None:
    for parse in (parse_object, parse_object_unique):
        with pytest.raises(NotJson) as exc:
            parse(body)
        assert str(exc.value).startswith(detail)


@pytest.mark.parametrize(
    ("body", "type_name"),
    [(b"[]", "array"), (b'"x"', "string"), (b"1", "integer"), (b"1.5", "number"),
     (b"true", "boolean"), (b"null", "null")],
)  # fmt: skip
def test_parse_object_refuses_other_json_values(body: bytes, type_name: str) -> None:
    for parse in (parse_object, parse_object_unique):
        with pytest.raises(NotAJsonObject) as exc:
            parse(body)
        assert exc.value.type_name == type_name == json_type_name(json.loads(body))


@pytest.mark.parametrize(
    ("body", "name", "last_wins"),
    [
        (b'{"a": 1, "a": 2}', "a", {"a": 2}),
        (b'{"a": 1, "b": 0, "b": 0, "a": 1}', "b", {"a": 1, "b": 0}),
        (b'{"x": [{"k": 1, "k": 2}]}', "k", {"x": [{"k": 2}]}),
        (b'{"\\u0061": 1, "a": 2}', "a", {"a": 2}),  # the same name, escaped
    ],
)
def test_a_repeated_member_is_last_wins_or_refused(
    body: bytes, name: str, last_wins: dict[str, object]
) -> None:
    """The AWS door keeps the last value (AWS's own parser does); the backend door's
    parser refuses the body, naming the member (issue 14 item 8)."""
    assert parse_object(body) == last_wins
    with pytest.raises(DuplicateMember) as exc:
        parse_object_unique(body)
    assert exc.value.name == name


def test_names_that_differ_only_in_case_are_different_members() -> None:
    assert parse_object_unique(b'{"a": 1, "A": 2}') == {"a": 1, "A": 2}


@pytest.mark.parametrize(
    ("raw", "kwargs", "expected"),
    [
        (None, {"low": 1}, 7),
        ("  12 ", {"low": 1}, 12),
        ("0", {"low": 0, "high": 5}, 0),
    ],
)
def test_read_int(raw: str | None, kwargs: dict[str, int], expected: int) -> None:
    env = {} if raw is None else {"N": raw}
    assert read_int(env, "N", 7, **kwargs) == expected


@pytest.mark.parametrize(
    ("raw", "kwargs", "message"),
    [
        ("1.5", {"low": 1}, "N must be a whole number, got '1.5'"),
        ("0", {"low": 1}, "N must be at least 1, got 0"),
        ("6", {"low": 0, "high": 5}, "N must be between 0 and 5, got 6"),
        ("x", {"invalid": "{name} must be whole seconds, got {raw!r}"}, "N must be whole seconds"),
    ],
)
def test_read_int_refuses(raw: str, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read_int({"N": raw}, "N", 7, **kwargs)


@pytest.mark.parametrize(
    ("raw", "zero", "ok"),
    [("0.5", False, True), ("60", False, True), ("0", False, False), ("0", True, True),
     ("-1", True, False), ("60.5", False, False), ("nan", False, False), ("inf", False, False)],
)  # fmt: skip
def test_read_float_bounds(raw: str, zero: bool, ok: bool) -> None:
    bounds = "{name} is out of range, got {raw!r}"
    if ok:
        assert read_float({"F": raw}, "F", 1.0, high=60, bounds=bounds, zero=zero) == float(raw)
    else:
        with pytest.raises(ConfigError, match=f"F is out of range, got '{raw}'"):
            read_float({"F": raw}, "F", 1.0, high=60, bounds=bounds, zero=zero)


def test_read_float_default_and_invalid() -> None:
    assert read_float({}, "F", 1.5, high=60, bounds="") == 1.5
    with pytest.raises(ConfigError, match="F must be a number of seconds, got 'soon'"):
        read_float({"F": "soon"}, "F", 1.0, high=60, bounds="")


def test_read_choice() -> None:
    invalid = "{name} must be one of {choices}, got {raw!r}"
    assert read_choice({"C": " ON "}, "C", ("on", "off"), "off", invalid) == "on"
    assert read_choice({}, "C", ("on", "off"), None, invalid) is None
    with pytest.raises(ConfigError, match="C must be one of on, off, got 'maybe'"):
        read_choice({"C": "Maybe"}, "C", ("on", "off"), "off", invalid)


def test_required_and_matches() -> None:
    assert required({"R": " v "}, "R", "why") == "v"
    with pytest.raises(ConfigError, match=r"R is required with X \(why\)"):
        required({"R": " "}, "R", "why", " with X")
    assert matches(r"[a-z]+", "abc", 3)
    assert not matches(r"[a-z]+", "abcd", 3)
    assert not matches(r"[a-z]+", "", 3)
    assert not matches(r"[a-z]+", "ab1", 3)
