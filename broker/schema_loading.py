"""``Schema.load`` for the plain schemas of the two front doors, at a fraction of its cost.

Why: marshmallow's ``Schema.load`` spends as much on its per-call machinery (pre- and
post-load hooks, partial loading, collections, the error store) as the fields spend on
their own work, and the doors' schemas use none of it. :class:`SchemaLoader` walks a
schema's fields as marshmallow's ``Schema._deserialize`` does (each field's own
``deserialize``, the same keys, the same error messages, unknown members refused or
ignored as the schema says), so the schema stays the one declaration of every rule. A
schema that uses anything more is loaded by marshmallow itself. ``tests/test_fast_paths.py``
compares the two on generated input.
"""

from __future__ import annotations

from typing import Any, Final

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError
from marshmallow.constants import missing
from marshmallow.error_store import ErrorStore

__all__ = ["SchemaLoader"]

Fields = tuple[tuple[str, Any, str], ...]  # (member name, field, result key)


class SchemaLoader:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.fields = _plain_fields(schema)
        self._known: Final = frozenset(key for key, _, _ in self.fields or ())
        self._unknown: Final = schema.error_messages["unknown"]

    def load(self, data: dict[str, Any]) -> dict[str, Any]:
        """``self.schema.load(data)``: the same result, or the same ValidationError
        messages (SerializationException and other errors of a field pass through)."""
        if self.fields is None:
            loaded: dict[str, Any] = self.schema.load(data)
            return loaded
        result: dict[str, Any] = {}
        # marshmallow's own error store, so messages are copied and merged alike
        errors: Any = ErrorStore()  # type: ignore[no-untyped-call]
        for key, field, attribute in self.fields:
            try:
                value = field.deserialize(data.get(key, missing), key, data)
            except ValidationError as err:
                errors.store_error(err.messages, key)
                continue
            if value is not missing:
                result[attribute] = value
        if self.schema.unknown == RAISE:
            for key in set(data) - self._known:  # marshmallow's own (set) order
                errors.store_error([self._unknown], key)
        if errors.errors:
            raise ValidationError(errors.errors)
        return result


def _plain_fields(schema: Schema) -> Fields | None:
    """The fields, when the schema declares nothing that the walk above leaves out: no
    hooks (``pre_load``, ``validates``, ``validates_schema``, ``post_load``...), a plain
    dict result, one object at a time, no partial loading, unknown members refused or
    ignored, and no dotted attribute (which marshmallow nests)."""
    plain = (
        not any(schema._hooks.values())
        and schema.dict_class is dict
        and not schema.many
        and not schema.partial
        and schema.unknown in (EXCLUDE, RAISE)
    )
    if not plain:
        return None
    found = []
    for name, field in schema.load_fields.items():
        attribute = field.attribute or name
        if "." in attribute:
            return None
        found.append((field.data_key or name, field, attribute))
    return tuple(found)
