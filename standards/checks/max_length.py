"""``max_length``: text longer than the field's ``maxLength`` (in characters)."""

from __future__ import annotations

import pandera.pandas as pa
from sqlglot import exp

from twinhub.standards.checks.base import SCHEMA, Check
from twinhub.standards.checks.values import length_between


class MaxLength(Check):
    name = "max_length"
    tags = frozenset({"schema", "cell", "range"})
    audit = SCHEMA.name
    message = "longer than {maxLength} characters"
    forms = frozenset({"pandera", "vectorized", "sql"})
    changes = frozenset({"range_narrowed"})

    def pandera(self, field, context):
        if field.type == "geojson" or "maxLength" not in field.constraints:
            return None
        value = field.constraints["maxLength"]
        return pa.Check.str_length(max_value=value, name=self.name, error=self.name,
                                   description=self.message.format(maxLength=value))

    def vectorized(self, statistics):
        if statistics.get("exact_value") is not None:
            return None
        return length_between(statistics.get("min_value"), statistics.get("max_value"))

    def sql(self, column, field, context):
        if "maxLength" not in field.constraints:
            return None
        return exp.Length(this=column) > exp.Literal.number(int(field.constraints["maxLength"]))


MAX_LENGTH = MaxLength()
