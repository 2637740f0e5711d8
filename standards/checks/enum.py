"""``enum``: a value not among the field's ``enum``."""

from __future__ import annotations

import pandera.pandas as pa
from sqlglot import exp

from twinhub.standards.checks.base import SCHEMA, Check, literal
from twinhub.standards.checks.values import isin


class Enum(Check):
    name = "enum"
    tags = frozenset({"schema", "cell"})
    audit = SCHEMA.name
    message = "not one of {enum}"
    forms = frozenset({"pandera", "vectorized", "sql"})
    changes = frozenset({"enum_added", "enum_narrowed"})

    def pandera(self, field, context):
        if field.type == "geojson" or "enum" not in field.constraints:
            return None
        value = field.constraints["enum"]
        return pa.Check.isin(value, name=self.name, error=self.name, description=self.message.format(enum=value))

    def vectorized(self, statistics):
        return isin(statistics["allowed_values"])

    def sql(self, column, field, context):
        if not field.constraints.get("enum"):
            return None
        return exp.not_(column.isin(*(literal(v) for v in field.constraints["enum"])))


ENUM = Enum()
