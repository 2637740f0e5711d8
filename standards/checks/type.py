"""``type``: a value that cannot be read as its field's type (found by standards.coerce, before pandera)."""

from __future__ import annotations

from sqlglot import exp

from twinhub.standards.checks.base import SCHEMA, Check

SQL_TYPES = {"integer": "BIGINT", "number": "DOUBLE", "boolean": "BOOLEAN", "date": "DATE", "datetime": "TIMESTAMPTZ"}


class Type(Check):
    name = "type"
    tags = frozenset({"schema", "cell"})
    audit = SCHEMA.name
    message = "cannot be read as {expected}"
    forms = frozenset({"sql"})
    found_by = "coerce"
    changes = frozenset({"type_narrowed"})

    def sql(self, column, field, context):
        target = SQL_TYPES.get(field.type)
        if target is None:
            return None
        unreadable = exp.TryCast(this=column, to=exp.DataType.build(target)).is_(exp.null())
        return exp.and_(exp.not_(column.is_(exp.null())), unreadable)


TYPE = Type()
