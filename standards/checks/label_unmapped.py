"""``label_unmapped``: a value of a vocabulary field that is no code of its vocabulary, and no label the
manifest's labels or crosswalks map to one (the row waits in quarantine for a mapping)."""

from __future__ import annotations

import pandera.pandas as pa
from sqlglot import exp

from twinhub.standards.checks.base import LABELS, Check
from twinhub.standards.checks.values import isin


class LabelUnmapped(Check):
    name = "label_unmapped"
    tags = frozenset({"labels", "cell"})
    audit = LABELS.name
    score_part = "labels"
    message = "not a code of vocabulary {vocabulary} and not mapped in the manifest's labels"
    forms = frozenset({"pandera", "vectorized", "sql"})
    changes = frozenset({"code_removed"})

    def pandera(self, field, context):
        vocabulary = field.custom.get("vocabulary")
        if field.type == "geojson" or not vocabulary:
            return None
        return pa.Check.isin(context.pack.vocabulary(vocabulary).codes, name=self.name, error=self.name,
                             description=self.message.format(vocabulary=vocabulary))

    def vectorized(self, statistics):
        return isin(statistics["allowed_values"])

    def sql(self, column, field, context):
        """A published code the vocabulary no longer has at all (an outdated code still maps: its
        values move to the code that replaced it)."""
        vocabulary = field.custom.get("vocabulary")
        if not vocabulary or context.pack is None or vocabulary not in context.pack.vocabularies:
            return None
        known = [c.code for c in context.pack.vocabulary(vocabulary).concepts]
        return exp.not_(column.isin(*(exp.Literal.string(code) for code in known))) if known else exp.not_(column.is_(exp.null()))


LABEL_UNMAPPED = LabelUnmapped()
