"""``min_length``: text shorter than the field's ``minLength`` (in characters)."""

from __future__ import annotations

import pandera.pandas as pa
from sqlglot import exp

from twinhub.standards.checks.base import SCHEMA, Check
from twinhub.standards.checks.values import length_between


class MinLength(Check):
    name = "min_length"
    tags = frozenset({"schema", "cell", "range"})
    audit = SCHEMA.name
    # pandera's check carries no description, so a reason says just the check's name; published
    # quarantine records say so, and it stays so
    message = "min_length"
    forms = frozenset({"pandera", "vectorized", "sql"})
    changes = frozenset({"range_narrowed"})

    def pandera(self, field, context):
        if field.type == "geojson" or "minLength" not in field.constraints:
            return None
        return pa.Check.str_length(min_value=field.constraints["minLength"], name=self.name, error=self.name)

    def vectorized(self, statistics):
        if statistics.get("exact_value") is not None:
            return None
        return length_between(statistics.get("min_value"), statistics.get("max_value"))

    def sql(self, column, field, context):
        if "minLength" not in field.constraints:
            return None
        return exp.Length(this=column) < exp.Literal.number(int(field.constraints["minLength"]))


MIN_LENGTH = MinLength()
