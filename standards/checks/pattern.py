"""``pattern``: text that does not match the field's ``pattern``.

As pandera's ``str_matches`` (``re.match``): the pattern must match at the start of the value; the
standards anchor their patterns at both ends (``^[0-9]{6}$``).
"""

from __future__ import annotations

import pandera.pandas as pa
from sqlglot import exp

from twinhub.standards.checks.base import SCHEMA, Check


class Pattern(Check):
    name = "pattern"
    tags = frozenset({"schema", "cell"})
    audit = SCHEMA.name
    message = "does not match {pattern}"
    forms = frozenset({"pandera", "vectorized", "sql"})
    changes = frozenset({"pattern_changed"})

    def pandera(self, field, context):
        if field.type == "geojson" or "pattern" not in field.constraints:
            return None
        value = field.constraints["pattern"]
        return pa.Check.str_matches(value, name=self.name, error=self.name,
                                    description=self.message.format(pattern=value))

    def vectorized(self, statistics):
        pattern = statistics["pattern"]
        return lambda values: values.str.match(pattern, na=False)

    def sql(self, column, field, context):
        if not field.constraints.get("pattern"):
            return None
        anchored = exp.Literal.string(f"^(?:{field.constraints['pattern']})")
        return exp.not_(exp.RegexpLike(this=exp.cast(column, "VARCHAR"), expression=anchored))


PATTERN = Pattern()
