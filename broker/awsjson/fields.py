"""The strict marshmallow fields the AWS door's schemas are declared with.

Each accepts exactly one JSON type (anything else is a ``SerializationException`` at once,
as the contract's section 1 answers a member of the wrong type) and reports every failed
constraint as a :class:`Violation`, which ``broker.awsjson.validation`` words as AWS does.
Paths are lower camel case: ``<list>.<i>.member`` (1-based) for list members,
``<list>.<i>.member.<child>`` for members of a structure in a list, and
``<map>.<key>.member.<child>`` for a structure that is a map value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Final, NamedTuple

from marshmallow import ValidationError, fields
from marshmallow.constants import missing

from broker.errors import SerializationException
from broker.http.jsonbody import json_type_name

NOT_NULL: Final = "Member must not be null"
MAX_LABEL_KEY_LENGTH: Final = 128  # map keys quoted in paths and messages are cut here


def camel_case(name: str) -> str:
    """AWS member name -> the lower camel case AWS uses in violation paths."""
    return name[:1].lower() + name[1:]


def type_error(label: str | None, expected: str, value: Any) -> SerializationException:
    return SerializationException(
        f"Value for '{label}' must be {expected}, not {json_type_name(value)}"
    )


def _entry_label(label: str | None, key: str) -> str:
    return f"{label}[{json.dumps(key[:MAX_LABEL_KEY_LENGTH])}]"


class Violation(NamedTuple):
    """One failed constraint, before it is worded.

    ``suffix`` is the path below the top-level member (``""``, ``".1.member"``,
    ``".<key>.member.type"``); ``value`` is the offending value, None when null or absent.
    """

    suffix: str
    constraint: str
    value: Any
    sensitive: bool


Check = tuple[str, Callable[[Any], bool]]  # (AWS's phrase, predicate true when satisfied)


def length_checks(low: int | None, high: int | None) -> list[Check]:
    checks: list[Check] = []
    if high is not None:
        phrase = f"Member must have length less than or equal to {high}"
        checks.append((phrase, lambda value: len(value) <= high))
    if low is not None:
        phrase = f"Member must have length greater than or equal to {low}"
        checks.append((phrase, lambda value: len(value) >= low))
    return checks


class StrictField(fields.Field[Any]):
    """A field that accepts exactly one JSON type and reports constraint violations.

    ``_deserialize`` checks the JSON type (raising SerializationException at once);
    ``violations`` then checks the constraints, which ``deserialize`` raises together.
    """

    nested: ClassVar[bool] = False  # True: violations carry their own member paths

    def __init__(self, checks: Sequence[Check] = (), *, required: bool, sensitive: bool) -> None:
        super().__init__(required=required)
        self.checks = tuple(checks)
        self.sensitive = sensitive

    def deserialize(
        self,
        value: Any,
        attr: str | None = None,
        data: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        if value is None or value is missing:  # JSON null is an absent member
            if self.required:
                raise ValidationError([Violation("", NOT_NULL, None, self.sensitive)])
            return missing
        result = self._deserialize(value, attr or self.name, data)
        found = self.violations(result, "")
        if found:
            raise ValidationError(found)
        return result

    def phrases(self) -> list[str]:
        """Every declared constraint, as AWS lists them in ``Map ... constraint: [...]``."""
        return [phrase for phrase, _ in self.checks]

    def failed(self, value: Any) -> list[str]:
        return [phrase for phrase, ok in self.checks if not ok(value)]

    def violations(self, value: Any, suffix: str) -> list[Violation]:
        return [Violation(suffix, phrase, value, self.sensitive) for phrase in self.failed(value)]

    def member_violations(self, member: StrictField, item: Any, path: str) -> list[Violation]:
        """One member of this list or map: null where a value must be, or its violations."""
        if item is None:
            return [Violation(path, NOT_NULL, None, self.sensitive)]
        return member.violations(item, path)


class StrictString(StrictField):
    """A string; ``pattern`` is matched whole with Java's ASCII ``\\w \\d \\s`` classes."""

    def __init__(
        self,
        *,
        min: int | None = None,
        max: int | None = None,
        pattern: str | None = None,
        matcher: Callable[[str], bool] | None = None,
        enum: Sequence[str] = (),
        required: bool = False,
        sensitive: bool = False,
    ) -> None:
        checks = length_checks(min, max)
        if pattern is not None:
            if matcher is None:
                full_match = re.compile(pattern, re.ASCII).fullmatch
                matcher = lambda value: full_match(value) is not None  # noqa: E731
            checks.append((f"Member must satisfy regular expression pattern: {pattern}", matcher))
        if enum:
            phrase = f"Member must satisfy enum value set: [{', '.join(enum)}]"
            checks.append((phrase, frozenset(enum).__contains__))
        super().__init__(checks, required=required, sensitive=sensitive)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> str:
        if type(value) is not str:
            raise type_error(attr, "a string", value)
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
                raise SerializationException(f"Value for '{attr}' is not valid Unicode") from None
        return value


class StrictInteger(StrictField):
    """A Smithy integer (32 bits) or long (64 bits): never a boolean, never 1.0 or 1.5."""

    def __init__(self, *, min: int, max: int, bits: int, required: bool = False) -> None:
        checks: list[Check] = [
            (f"Member must have value less than or equal to {max}", lambda value: value <= max),
            (f"Member must have value greater than or equal to {min}", lambda value: value >= min),
        ]
        super().__init__(checks, required=required, sensitive=False)
        self.bound = 1 << (bits - 1)
        self.bits = bits

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> int:
        if type(value) is not int:
            raise type_error(attr, "an integer", value)
        if not -self.bound <= value < self.bound:
            raise SerializationException(f"Value for '{attr}' does not fit in {self.bits} bits")
        return value


class StrictBoolean(StrictField):
    def __init__(self, *, required: bool = False) -> None:
        super().__init__(required=required, sensitive=False)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> bool:
        if type(value) is not bool:
            raise type_error(attr, "a boolean", value)
        return value


class StrictList(StrictField):
    """A JSON array; member ``i`` (1-based) is reported at ``<list>.<i>.member``."""

    def __init__(
        self,
        member: StrictField,
        *,
        min: int | None = None,
        max: int | None = None,
        required: bool = False,
    ) -> None:
        super().__init__(length_checks(min, max), required=required, sensitive=member.sensitive)
        self.member = member

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> list[Any]:
        if type(value) is not list:
            raise type_error(attr, "an array", value)
        member = self.member
        return [
            None if item is None else member._deserialize(item, f"{attr}[{index}]", data)
            for index, item in enumerate(value)
        ]

    def violations(self, value: Any, suffix: str) -> list[Violation]:
        found = super().violations(value, suffix)
        for index, item in enumerate(value, start=1):
            found.extend(self.member_violations(self.member, item, f"{suffix}.{index}.member"))
        return found


class StrictMap(StrictField):
    """A JSON object with user keys, reported at the map's own path as AWS does.

    Any bad key gives one ``Map keys must satisfy constraint: [...]`` listing every
    declared constraint of the key shape; likewise any bad (or null) scalar value gives
    one ``Map value ...``. A structure value reports at ``<map>.<key>.member.<child>``
    (our choice: AWS documents no such path). A sensitive value shape makes the whole
    map sensitive.
    """

    def __init__(
        self,
        keys: StrictString,
        values: StrictField,
        *,
        max: int | None = None,
        required: bool = False,
    ) -> None:
        sensitive = keys.sensitive or values.sensitive
        super().__init__(length_checks(None, max), required=required, sensitive=sensitive)
        self.keys = keys
        self.values = values

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise type_error(attr, "an object", value)
        keys, values = self.keys, self.values
        result: dict[str, Any] = {}
        for key, item in value.items():
            label = _entry_label(attr, key)
            keys._deserialize(key, label, data)
            result[key] = None if item is None else values._deserialize(item, label, data)
        return result

    def violations(self, value: Any, suffix: str) -> list[Violation]:
        found = super().violations(value, suffix)
        if any(self.keys.failed(key) for key in value):
            found.append(self._bracket(value, suffix, "Map keys", self.keys.phrases()))
        if self.values.nested:
            for key, item in value.items():
                path = f"{suffix}.{key[:MAX_LABEL_KEY_LENGTH]}.member"
                found.extend(self.member_violations(self.values, item, path))
            return found
        nulls = any(item is None for item in value.values())
        bad = any(item is not None and self.values.failed(item) for item in value.values())
        if nulls or bad:
            phrases = ([NOT_NULL] if nulls else []) + (self.values.phrases() if bad else [])
            found.append(self._bracket(value, suffix, "Map value", phrases))
        return found

    def _bracket(self, value: Any, suffix: str, what: str, phrases: list[str]) -> Violation:
        constraint = f"{what} must satisfy constraint: [{', '.join(phrases)}]"
        return Violation(suffix, constraint, value, self.sensitive)


class StrictStruct(StrictField):
    """A nested structure; loads to a plain dict of its present members, AWS names kept."""

    nested = True

    def __init__(self, members: dict[str, StrictField], *, required: bool = False) -> None:
        sensitive = any(field.sensitive for field in members.values())
        super().__init__(required=required, sensitive=sensitive)
        self.members = members

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise type_error(attr, "an object", value)
        result: dict[str, Any] = {}
        for name, field in self.members.items():
            item = value.get(name)
            if item is not None:
                result[name] = field._deserialize(item, f"{attr}.{name}", data)
        return result

    def violations(self, value: Any, suffix: str) -> list[Violation]:
        found: list[Violation] = []
        for name, field in self.members.items():
            path = f"{suffix}.{camel_case(name)}"
            item = value.get(name)
            if item is None:
                if field.required:
                    found.append(Violation(path, NOT_NULL, None, field.sensitive))
            else:
                found.extend(field.violations(item, path))
        return found
