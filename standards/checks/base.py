"""A check: one rule a row can fail, with every form the hub runs it in.

In the manner of frictionless's checks (``frictionless/checks/cell/forbidden_value.py``): one rule per
module, a string id. The id (:attr:`Check.name`) is the ``check`` of a quarantine reason, the name of the
pandera check, the key of a run's ``checks`` figures; a published id never changes.

The forms a check declares in :attr:`Check.forms`:

``pandera``     the pandera check compile_schema puts on a column (None where the field has no such rule)
``vectorized``  the same test on a column's present values at once (failure_table runs it, not pandera):
                ``statistics -> (values -> bool array, True where the value passes)``
``points``      the same test on finite 2D points held as coordinates: ``statistics -> (x, y -> bool array)``
``sql``         the rows of a published table the rule fails, as a sqlglot condition (``standards check``)

A check without a ``pandera`` form is found elsewhere (:attr:`Check.found_by`): ``coerce`` reads the types,
pandera's own ``nullable``/``unique`` find missing values and duplicates, the stage finds duplicate keys over
the whole dataset. tests/standards/test_check_registry.py walks the registry: a declared form must be there,
and the forms must agree with each other.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from sqlglot import exp

if t.TYPE_CHECKING:
    import frictionless
    import numpy as np
    import pandera.pandas as pa

    from twinhub.standards.pack import Standard, StandardsPack

FORMS = frozenset({"pandera", "vectorized", "points", "sql"})


@dataclass(frozen=True)
class StageAudit:
    """One of the audits between staging and publishing that counts failing rows (twinhub.hub.audit)."""

    name: str
    blocking: bool  # above its limit, the stage is not published; otherwise a warning
    what: str  # what its checks test, for the audit's description


SCHEMA = StageAudit("schema", True, "the standard's types, required fields, ranges and keys")
GEOMETRY = StageAudit("crs_and_geometry", True, "the geometry checks (inside the city, valid, the right type)")
LABELS = StageAudit("label_coverage", False, "the vocabularies (labels mapped to a code)")
AUDITS = {a.name: a for a in (SCHEMA, GEOMETRY, LABELS)}

SCORE_PARTS = ("schema", "labels", "crs")  # the score parts a failing row counts against (standards.score)


@dataclass(frozen=True)
class Context:
    """What a check's forms read beside the field: the pack (vocabularies), the standard (its key),
    the plausibility gate in the target CRS."""

    pack: StandardsPack | None = None
    standard: Standard | None = None
    extent: tuple[float, float, float, float] | None = None
    outside: str = "keep"  # the manifest's policy for a line or polygon partly outside the extent


class Check:
    """One rule. A subclass sets the class attributes and the methods of the forms it declares."""

    name: t.ClassVar[str]
    tags: t.ClassVar[frozenset[str]]  # schema, geometry, labels, key, crs, cell, ...
    audit: t.ClassVar[str | None]  # the stage audit its failing rows count toward (a key of AUDITS)
    message: t.ClassVar[str]  # what a reason says; {placeholders} are the rule's values
    forms: t.ClassVar[frozenset[str]]
    score_part: t.ClassVar[str] = "schema"
    found_by: t.ClassVar[str] = "pandera"  # pandera | coerce | conform | stage: who finds failures in a run
    pandera_name: t.ClassVar[str | None] = None  # pandera's own name for it (not_nullable), renamed to ``name``
    changes: t.ClassVar[frozenset[str]] = frozenset()  # standards.compat change kinds whose rows it would fail

    @property
    def blocking(self) -> bool:
        """Whether its failures can stop a publish (its audit blocks above the manifest's limit)."""
        return self.audit is not None and AUDITS[self.audit].blocking

    @property
    def audit_on_geometry(self) -> str | None:
        """The audit a failure on the dataset's geometry column counts toward: a schema rule failing
        there (a missing geometry) is a geometry problem."""
        return GEOMETRY.name if self.audit == SCHEMA.name else self.audit

    def pandera(self, field: frictionless.Field, context: Context) -> pa.Check | None:
        """The pandera check for ``field``, or None when the field has no such rule."""
        return None

    def vectorized(self, statistics: dict) -> t.Callable | None:
        """``values -> bool array`` (True: passes) from the pandera check's statistics."""
        return None

    def points(self, statistics: dict) -> t.Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
        """``(x, y) -> bool array`` for finite 2D points, the answer :meth:`vectorized` gives their shapes."""
        return None

    def sql(self, column: exp.Expression, field: frictionless.Field, context: Context) -> exp.Expression | None:
        """Condition true for the rows of a published table whose ``column`` fails the rule, or None."""
        return None

    def __repr__(self) -> str:
        return f"<check {self.name}>"


def literal(value: object) -> exp.Expression:
    """A rule's value as a SQL literal (numbers as numbers, anything else as text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return exp.Literal.string(str(value))
    return exp.Literal.number(value)
