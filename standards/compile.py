"""Compile a standard's Frictionless Table Schema into a pandera schema.

The Table Schema stays the single source of truth: required, unique,
ranges, lengths, patterns, enumerations, vocabularies and the geometry's type
all come from it. The city's plausibility extent is added as a check on the
geometry column. Every check has a stable name, which becomes the ``check``
of a quarantine reason.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import shapely

from standards.coerce import DTYPES
from standards.pack import Standard, StandardsPack

GEOMETRY_TYPES = {"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon"}


def _bound(field, value):
    """A minimum/maximum in the column's own type (dates are written as ISO text in the schema)."""
    if field.type == "datetime":
        stamp = pd.Timestamp(value)
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return pd.Timestamp(value) if field.type == "date" else value


def _field_checks(field, pack: StandardsPack) -> list[pa.Check]:
    c = field.constraints
    checks: list[pa.Check] = []
    if "minimum" in c:
        checks.append(pa.Check.ge(_bound(field, c["minimum"]), name="minimum", error="minimum", description=f"must be at least {c['minimum']}"))
    if "maximum" in c:
        checks.append(pa.Check.le(_bound(field, c["maximum"]), name="maximum", error="maximum", description=f"must be at most {c['maximum']}"))
    if "minLength" in c:
        checks.append(pa.Check.str_length(min_value=c["minLength"], name="min_length", error="min_length"))
    if "maxLength" in c:
        checks.append(
            pa.Check.str_length(max_value=c["maxLength"], name="max_length", error="max_length", description=f"longer than {c['maxLength']} characters")
        )
    if "pattern" in c:
        checks.append(pa.Check.str_matches(c["pattern"], name="pattern", error="pattern", description=f"does not match {c['pattern']}"))
    if "enum" in c:
        checks.append(pa.Check.isin(c["enum"], name="enum", error="enum", description=f"not one of {c['enum']}"))
    vocabulary = field.custom.get("vocabulary")
    if vocabulary:
        codes = pack.vocabulary(vocabulary).codes
        checks.append(pa.Check.isin(codes, name="label_unmapped", error="label_unmapped", description=f"not a code of vocabulary {vocabulary} and not mapped in the manifest's labels"))
    return checks


def _geometry_checks(field, extent: tuple[float, float, float, float] | None) -> list[pa.Check]:
    checks = [
        _geometry_check(lambda g: ~shapely.is_empty(g), "geometry_empty", "geometry is empty"),
        _geometry_check(shapely.is_valid, "geometry_invalid", "geometry is not valid"),
    ]
    expected = field.custom.get("geometryType")
    if expected:
        allowed = {expected, f"Multi{expected}"} & GEOMETRY_TYPES
        ids = [_type_id(t) for t in allowed]
        checks.append(
            _geometry_check(lambda g: np.isin(shapely.get_type_id(g), ids), "geometry_type", f"must be a {expected}")
        )
    if extent is not None:
        checks.append(
            _geometry_check(
                lambda g: _within_box(g, extent) | shapely.is_empty(g),
                "outside_city",
                f"outside the city's extent {[round(v, 4) for v in extent]}",
            )
        )
    return checks


def _within_box(geoms: np.ndarray, extent: tuple[float, float, float, float]) -> np.ndarray:
    """``shapely.within(geoms, box(*extent))``, from the bounds where they decide it.

    Bounds strictly inside the box: within; any bound outside the closed box: not within.
    Only geometries touching the box's edge (and None/empty, with NaN bounds) go to shapely.
    """
    x0, y0, x1, y1 = extent
    b = shapely.bounds(geoms)
    with np.errstate(invalid="ignore"):
        inside = (b[:, 0] > x0) & (b[:, 1] > y0) & (b[:, 2] < x1) & (b[:, 3] < y1)
        outside = (b[:, 0] < x0) | (b[:, 1] < y0) | (b[:, 2] > x1) | (b[:, 3] > y1)
    undecided = ~inside & ~outside
    if undecided.any():
        inside[undecided] = shapely.within(geoms[undecided], shapely.box(*extent))
    return inside


def _geometry_check(test, name: str, message: str) -> pa.Check:
    """A vectorized shapely test as a pandera check (nulls are left to ``required``)."""

    def check(series: pd.Series) -> pd.Series:
        return pd.Series(test(np.asarray(series, dtype=object)), index=series.index)

    return pa.Check(check, name=name, error=name, description=message)


def _type_id(name: str) -> int:
    return ["Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon"].index(
        name
    )


def compile_schema(
    standard: Standard,
    pack: StandardsPack,
    extent: tuple[float, float, float, float] | None = None,
    cross_row: bool = True,
) -> pa.DataFrameSchema:
    """pandera schema for ``standard``.

    ``extent`` (in the target CRS) adds the plausibility gate to the geometry.
    With ``cross_row=False`` uniqueness is left out: the hub checks it over the
    whole staged dataset in DuckDB rather than chunk by chunk.
    """
    columns = {}
    for field in standard.fields:
        nullable = not standard.required(field)
        unique = cross_row and bool(field.constraints.get("unique"))
        if field.type == "geojson":
            checks = _geometry_checks(field, extent)
            columns[field.name] = pa.Column(object, checks=checks, nullable=nullable, unique=unique)
        else:
            dtype = DTYPES.get(field.type, "string")
            columns[field.name] = pa.Column(dtype, checks=_field_checks(field, pack), nullable=nullable, unique=unique)
    return pa.DataFrameSchema(columns, name=standard.name, strict=False, ordered=False)


def failure_table(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.DataFrame:
    """Row-level failures of ``frame`` as (index, column, check, value, message).

    Every check is built with ``error`` set to its name, because pandera
    reports a check by its ``error`` in ``failure_cases``.
    """
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return pd.DataFrame(columns=["index", "column", "check", "value", "message"])
    cases = cases[cases["index"].notna()]
    messages = {
        (name, check.name): check.description or check.name
        for name, column in schema.columns.items()
        for check in column.checks
    }
    checks = cases["check"].astype(str).replace({"not_nullable": "required", "field_uniqueness": "duplicate_key"})
    return pd.DataFrame(
        {
            "index": cases["index"].to_numpy(),
            "column": cases["column"].to_numpy(),
            "check": checks.to_numpy(),
            "value": cases["failure_case"].to_numpy(),
            "message": [
                messages.get((col, chk), "is required but empty" if chk == "required" else chk)
                for col, chk in zip(cases["column"], checks)
            ],
        }
    )
