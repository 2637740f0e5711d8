"""``required``: a required field (or a key field) left empty. pandera's ``nullable=False`` in a schema."""

from __future__ import annotations

from sqlglot import exp

from twinhub.standards.checks.base import SCHEMA, Check


class Required(Check):
    name = "required"
    tags = frozenset({"schema", "cell"})
    audit = SCHEMA.name  # on the geometry column: the geometry audit (a missing geometry)
    message = "is required but empty"
    forms = frozenset({"vectorized", "sql"})
    found_by = "pandera nullable"
    pandera_name = "not_nullable"
    changes = frozenset({"required_added"})

    def vectorized(self, statistics):
        return lambda values: values.notna().to_numpy()

    def sql(self, column, field, context):
        if context.standard is not None and not context.standard.required(field):
            return None
        return column.is_(exp.null())


REQUIRED = Required()
