"""Judge a column by its values, not only its name: the evidence behind a field mapping.

A name says what a column might be; its values say what it is. :func:`judge` takes the
name-based fit of a column for a field (match.py) and corrects it:

- a key field: a constant column (a shapefile's ``Id`` of zeros) is no key; a unique one
  is said to be ("unique over 1,234 rows");
- a name field: romanised initials (``HP``, ``JA``) are codes, not names;
- an area field (``unit: km2`` / ``m2``): the column's unit is judged against the polygons'
  true areas (areas.py); another metric unit is converted by an ``expression``, square
  degrees are refused;
- a district field: the values are matched against the admin_division vocabulary;
- a label field whose cells are lists or paths (``a;b;c``): each level is matched against
  the vocabulary and the best is proposed (``{column, split, separator, level}``).
"""

from __future__ import annotations

from dataclasses import dataclass

import frictionless
from sqlglot import exp

from twinhub.guided import semantics
from twinhub.guided.areas import TITLES, AreaUnit
from twinhub.guided.profile import ColumnProfile, profile_column
from twinhub.guided.values import _value_fit, value_fit
from twinhub.standards.pack import Standard, StandardsPack

DISTRICTS = "admin_division"  # the pack vocabulary district names are matched against
NAME_FIELDS = ("name", "road_name")
DISTRICT_FIELDS = ("district",)
SHAPE_AREA_FIELDS = ("area_km2", "area_m2")  # fields that are the geometry's own area (not floor_area_m2)


@dataclass
class Judged:
    score: float
    why: list[str]
    spec: dict | None = None  # a derived mapping (DERIVE_SYNTAX.md) instead of the bare column
    values: float | None = None  # the label share, when judged on a level of the column


def area_expression(column: str, factor: float) -> str:
    """DuckDB SQL converting ``column`` by ``factor`` (identifiers quoted by sqlglot, never pasted).

    >>> area_expression("Shape_Area", 1e-06)
    'TRY_CAST("Shape_Area" AS DOUBLE) * 1e-06'
    """
    cast = exp.TryCast(this=exp.column(column, quoted=True), to=exp.DataType.build("double"))
    return exp.Mul(this=cast, expression=exp.Literal.number(repr(factor))).sql(dialect="duckdb")


def _unit(field: frictionless.Field) -> str | None:
    unit = str(field.custom.get("unit") or "")
    return unit if unit in ("km2", "m2") else None


def judge_key(field: frictionless.Field, column: ColumnProfile, j: Judged, unique_field: bool) -> None:
    if not unique_field:
        return
    if semantics.constant(column):
        j.score = 0.0
        j.why.append(f"but it holds {semantics.describe(column)}: not an id")
    elif column.unique and column.null_share == 0 and j.score:
        j.why.append(f"unique over {len(column.values):,} rows")


def judge_name(column: ColumnProfile, j: Judged) -> None:
    if semantics.initials(column):
        j.score *= 0.25
        j.why.append(f"but its values look like {semantics.describe(column)}")
    elif semantics.name_like(column):
        j.score = max(j.score, 0.5) if j.score else 0.0
        if j.score:
            j.why.append("its values look like names")


def judge_area(field: frictionless.Field, column: ColumnProfile, area: AreaUnit | None, j: Judged) -> None:
    wanted = _unit(field)
    if wanted is None or area is None or column.type not in ("integer", "number"):
        return
    if field.name not in SHAPE_AREA_FIELDS and area.metric:  # floor_area_m2: the floors' area, not the footprint
        j.score *= 0.5
        j.why.append(f"but {area.why}: the polygons' own area, not a {field.title or field.name}")
    elif area.unit == wanted:
        j.score = max(j.score, 0.95)
        j.why.append(area.why)
    elif area.metric:
        j.score = max(j.score, 0.9)
        factor = area.factor_to(wanted)
        j.spec = {"expression": area_expression(column.name, factor)}
        j.why.append(f"{area.why}: converted to {TITLES[wanted]} (x {factor:g})")
    elif area.unit == "deg2":
        j.score = 0.0
        j.why.append(f"but {area.why}: degrees are no area in metres (they shrink with latitude); left unmapped")
    else:
        j.score *= 0.3
        j.why.append(f"but {area.why}")


def judge_district(column: ColumnProfile, pack: StandardsPack, j: Judged) -> None:
    if DISTRICTS not in pack.vocabularies or column.type != "string":
        return
    share = value_fit(column, pack.vocabulary(DISTRICTS)).exact
    if share >= 0.5:
        j.score = max(j.score, 0.5 + 0.5 * share)
        j.why.append(f"{share:.0%} of its values are districts of {DISTRICTS}")


def level_profiles(column: ColumnProfile, found: semantics.Hierarchy) -> list[tuple[int | None, ColumnProfile]]:
    """The column's values at each level (or, for a flat list, its items), as profiles to match."""
    levels = list(range(1, found.depth + 1)) if found.separator else [None]
    return [(level, profile_column(f"{column.name} level {level}", found.values(column.values, level)))
            for level in levels]


def judge_levels(field: frictionless.Field, column: ColumnProfile, vocabulary: str, pack: StandardsPack,
                 j: Judged) -> None:
    """A label field over lists/paths: the level whose values the vocabulary maps best."""
    found = semantics.hierarchy(column)
    if found is None or column.values is None:
        return
    scored = [(_value_fit(p, pack.vocabulary(vocabulary)).share, level, p) for level, p in level_profiles(column, found)
              if p.values is not None and not p.values.empty]
    if not scored:
        return
    share, level, best = max(scored, key=lambda s: (s[0], -(s[1] or 0)))
    j.spec = found.spec(column.name, level)
    j.values = share
    shape = semantics.describe(column)
    if found.separator:
        shares = ", ".join(f"level {lv}: {s:.0%}" for s, lv, _ in sorted(scored, key=lambda s: s[1]))
        j.why.append(f"{shape}; level {level} maps best to {vocabulary} ({shares}; e.g. "
                     f"{', '.join(best.examples[:3])})")
    else:
        j.why.append(f"{shape}: each value is mapped ({share:.0%} map to {vocabulary})")
    j.score = max(j.score * (0.5 + share), 0.4 + 0.6 * share if share >= 0.3 else 0.0, j.score)


def judge(standard: Standard, field: frictionless.Field, column: ColumnProfile, pack: StandardsPack,
          area: AreaUnit | None, score: float, why: list[str]) -> Judged:
    """The fit of ``column`` for ``field`` corrected by what its values show."""
    j = Judged(score, why)
    unique_field = bool(field.constraints.get("unique")) or field.name in standard.primary_key
    judge_key(field, column, j, unique_field)
    if field.name in NAME_FIELDS:
        judge_name(column, j)
    judge_area(field, column, area, j)
    if field.name in DISTRICT_FIELDS and not field.custom.get("vocabulary"):
        judge_district(column, pack, j)
    vocabulary = field.custom.get("vocabulary")
    if vocabulary and column.type == "string":
        judge_levels(field, column, vocabulary, pack, j)
    return j

