"""``maximum``: a value above the field's ``maximum`` (numbers, dates, datetimes)."""

from __future__ import annotations

import pandera.pandas as pa

from twinhub.standards.checks.base import SCHEMA, Check, literal
from twinhub.standards.checks.values import bound


class Maximum(Check):
    name = "maximum"
    tags = frozenset({"schema", "cell", "range"})
    audit = SCHEMA.name
    message = "must be at most {maximum}"
    forms = frozenset({"pandera", "vectorized", "sql"})
    changes = frozenset({"range_narrowed"})

    def pandera(self, field, context):
        if field.type == "geojson" or "maximum" not in field.constraints:
            return None
        value = field.constraints["maximum"]
        return pa.Check.le(bound(field, value), name=self.name, error=self.name,
                           description=self.message.format(maximum=value))

    def vectorized(self, statistics):
        high = statistics["max_value"]
        return lambda values: values <= high

    def sql(self, column, field, context):
        if "maximum" not in field.constraints:
            return None
        return column > literal(field.constraints["maximum"])


MAXIMUM = Maximum()
