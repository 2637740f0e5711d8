"""``minimum``: a value below the field's ``minimum`` (numbers, dates, datetimes)."""

from __future__ import annotations

import pandera.pandas as pa

from twinhub.standards.checks.base import SCHEMA, Check, literal
from twinhub.standards.checks.values import bound


class Minimum(Check):
    name = "minimum"
    tags = frozenset({"schema", "cell", "range"})
    audit = SCHEMA.name
    message = "must be at least {minimum}"
    forms = frozenset({"pandera", "vectorized", "sql"})
    changes = frozenset({"range_narrowed"})

    def pandera(self, field, context):
        if field.type == "geojson" or "minimum" not in field.constraints:
            return None
        value = field.constraints["minimum"]
        return pa.Check.ge(bound(field, value), name=self.name, error=self.name,
                           description=self.message.format(minimum=value))

    def vectorized(self, statistics):
        low = statistics["min_value"]
        return lambda values: values >= low

    def sql(self, column, field, context):
        if "minimum" not in field.constraints:
            return None
        return column < literal(field.constraints["minimum"])


MINIMUM = Minimum()
