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
import pyarrow
import pyarrow.compute as pc
import shapely

from twinhub.standards.coerce import DTYPES, arrow_array
from twinhub.standards.pack import Standard, StandardsPack

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
    """Each test also has its answer for finite 2D points given as coordinates (see :class:`Points`)."""
    every = lambda x, y: np.ones(len(x), dtype=bool)  # noqa: E731
    checks = [
        _geometry_check(lambda g: ~shapely.is_empty(g), every, "geometry_empty", "geometry is empty"),
        _geometry_check(shapely.is_valid, every, "geometry_invalid", "geometry is not valid"),
    ]
    expected = field.custom.get("geometryType")
    if expected:
        allowed = {expected, f"Multi{expected}"} & GEOMETRY_TYPES
        ids = [_type_id(t) for t in allowed]
        point = _type_id("Point") in ids
        checks.append(_geometry_check(
            lambda g: np.isin(shapely.get_type_id(g), ids), lambda x, y: np.full(len(x), point),
            "geometry_type", f"must be a {expected}",
        ))
    if extent is not None:
        checks.append(
            _geometry_check(
                lambda g: _within_box(g, extent) | shapely.is_empty(g),
                lambda x, y: _points_within_box(x, y, extent),
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


def _points_within_box(x: np.ndarray, y: np.ndarray, extent: tuple[float, float, float, float]) -> np.ndarray:
    """:func:`_within_box` of finite points: strictly inside the box (a point on its edge is not within)."""
    x0, y0, x1, y1 = extent
    return (x > x0) & (y > y0) & (x < x1) & (y < y1)


def _geometry_check(test, points, name: str, message: str) -> pa.Check:
    """A vectorized shapely test as a pandera check (nulls are left to ``required``).

    ``points(x, y)``: the same test's answer for finite 2D points, from their coordinates
    (:func:`failure_table` uses it on a :class:`Points` column, without shapely objects).
    """

    def check(series: pd.Series) -> pd.Series:
        return pd.Series(test(np.asarray(series, dtype=object)), index=series.index)

    built = pa.Check(check, name=name, error=name, description=message)
    built.hub_test, built.hub_points = test, points
    return built


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


class Points:
    """A geometry column of plain 2D points (or None) held as coordinates, not as shapely objects.

    Conforming a chunk of points needs no point objects: :func:`failure_table` decides the
    geometry checks of finite points from their coordinates, and :meth:`wkb` writes them with
    numpy. Only the few other rows (NaN coordinates) are made into shapely points.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, missing: np.ndarray):
        self.x, self.y, self.missing = x, y, missing  # x, y: anything where missing
        self.finite = ~missing & np.isfinite(x) & np.isfinite(y)

    def __len__(self) -> int:
        return len(self.x)

    def geometries(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """shapely points (None where missing) of ``rows``, as ``shapely.points`` makes them."""
        out = np.full(len(self.x[rows]), None, dtype=object)
        present = ~self.missing[rows]
        out[present] = shapely.points(self.x[rows][present], self.y[rows][present])
        return out

    def wkb(self) -> pd.api.extensions.ExtensionArray:
        """``shapely.to_wkb`` of :meth:`geometries` (None stays null), as an Arrow binary column.

        A point's WKB is 21 bytes (little-endian: byte order 1, type 1, x, y), written for all
        rows at once; the few with NaN coordinates are taken from shapely itself.
        """
        present = ~self.missing
        record = np.zeros(int(present.sum()), dtype=[("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])
        record["order"], record["type"], record["x"], record["y"] = 1, 1, self.x[present], self.y[present]
        odd = np.flatnonzero(~self.finite[present])
        if len(odd):
            blobs = shapely.to_wkb(self.geometries(np.flatnonzero(present)[odd]))
            if any(len(b) != record.itemsize for b in blobs):  # not a 2D point's WKB: all through shapely
                return pd.arrays.ArrowExtensionArray(pyarrow.array(shapely.to_wkb(self.geometries()), pyarrow.binary()))
            record[odd] = np.frombuffer(b"".join(blobs), dtype=record.dtype)
        offsets = np.zeros(len(self) + 1, dtype=np.int32)
        np.cumsum(np.where(present, record.itemsize, 0), out=offsets[1:])
        validity = None if present.all() else pyarrow.array(present).buffers()[1]
        binary = pyarrow.Array.from_buffers(pyarrow.binary(), len(self), [validity, pyarrow.py_buffer(offsets),
                                                                pyarrow.py_buffer(record.tobytes())])
        return pd.arrays.ArrowExtensionArray(binary)


_EMPTY = ["index", "column", "check", "value", "message"]


def failure_table(
    schema: pa.DataFrameSchema, frame: pd.DataFrame, points: dict[str, Points] | None = None
) -> pd.DataFrame:
    """Row-level failures of ``frame`` as (index, column, check, value, message).

    ``points``: geometry columns held as :class:`Points` rather than in ``frame``.
    The checks compile_schema builds are run here directly, vectorized, in pandera's order
    (columns in the schema's order; per column nulls, then each check; rows ascending) and
    with its values; pandera itself validates anything else (e.g. a column of the wrong dtype).
    """
    points = points or {}
    direct = _direct_checks(schema, frame, points)
    if direct is None:
        if points:
            frame = frame.assign(**{name: column.geometries() for name, column in points.items()})
        return pandera_failures(schema, frame)
    index, columns, checks, values = [], [], [], []
    for name, column in schema.columns.items():
        for check, rows, failing in _column_failures(column, direct[name], points.get(name), frame.get(name)):
            index.append(frame.index[rows].to_numpy())
            columns += [name] * len(rows)
            checks += [check] * len(rows)
            values.append(failing)
    if not columns:
        return pd.DataFrame(columns=_EMPTY)
    return _table(schema, np.concatenate(index), np.array(columns, dtype=object), pd.Series(checks, dtype=object),
                  np.concatenate(values))


def _direct_checks(schema: pa.DataFrameSchema, frame: pd.DataFrame, points: dict[str, Points]) -> dict | None:
    """Per column, a vectorized test per check; None when pandera has to validate."""
    from pandera.engines import pandas_engine

    found = {}
    for name, column in schema.columns.items():
        if column.unique or (name not in frame.columns and name not in points):
            return None
        if name in frame.columns and not column.dtype.check(pandas_engine.Engine.dtype(frame[name].dtype)):
            return None
        tests = []
        for check in column.checks:
            test = _vectorized(check)
            if test is None:
                return None
            tests.append((check.name, test, check))
        found[name] = tests
    return found


def _vectorized(check: pa.Check):
    """``values -> bool array`` for a check compile_schema builds (pandera's own builtin semantics)."""
    stats = check.statistics or {}
    if hasattr(check, "hub_test"):
        return lambda v: check.hub_test(np.asarray(v, dtype=object))
    if check.name == "minimum":
        return lambda v: v >= stats["min_value"]
    if check.name == "maximum":
        return lambda v: v <= stats["max_value"]
    if check.name in ("min_length", "max_length") and stats.get("exact_value") is None:
        low, high = stats.get("min_value"), stats.get("max_value")
        low, high = (low if low is not None else 0), (high if high is not None else np.inf)
        return lambda v: _between(_lengths(v), low, high)
    if check.name == "pattern":
        return lambda v: v.str.match(stats["pattern"], na=False)
    if check.name in ("enum", "label_unmapped"):
        allowed = stats["allowed_values"]
        text = all(isinstance(a, str) for a in allowed)
        value_set = pyarrow.array(list(allowed), pyarrow.large_string()) if text else None
        return lambda v: _isin(v, value_set) if text and _arrow_text(v) else v.isin(allowed)
    return None


def _arrow_text(values: pd.Series) -> bool:
    """Whether the values are Arrow strings (pandas' str/string on pyarrow): their checks run in Arrow,
    as pandas' own ``.str.len`` and ``isin`` of them do."""
    return isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"


def _isin(values: pd.Series, value_set: pyarrow.Array) -> np.ndarray:
    array = arrow_array(values)
    return pc.is_in(array, value_set=value_set.cast(array.type)).to_numpy(zero_copy_only=False)


def _lengths(values: pd.Series) -> np.ndarray:
    if _arrow_text(values):
        return pc.utf8_length(arrow_array(values)).to_numpy(zero_copy_only=False)
    return values.str.len().to_numpy()


def _between(lengths: np.ndarray, low, high) -> np.ndarray:
    return (lengths >= low) & (lengths <= high)


def _column_failures(column, tests, points: Points | None, series: pd.Series | None):
    """(check, rows, values) of one column: nulls of a required column, then each check's failures."""
    if points is not None:
        null = points.missing
    else:
        null = series.isna().to_numpy()
    if not column.nullable and null.any():
        rows = np.flatnonzero(null)
        yield "not_nullable", rows, np.full(len(rows), None, dtype=object)
    present = np.flatnonzero(~null)
    if points is not None:
        yield from _point_failures(tests, points, present)
        return
    if not tests:
        return
    values = series.iloc[present] if len(present) < len(series) else series
    for name, test, _ in tests:
        ok = np.asarray(test(values), dtype=bool)
        if not ok.all():
            yield name, present[~ok], _failing(values, ~ok)


def _failing(values: pd.Series, failing: np.ndarray) -> np.ndarray:
    """The failing values as objects (Arrow text without pandas' element-by-element conversion)."""
    if _arrow_text(values):
        out = np.empty(int(failing.sum()), dtype=object)
        out[:] = arrow_array(values).filter(pyarrow.array(failing)).to_pylist()
        return out
    return values[failing].astype(object).to_numpy()


def _point_failures(tests, points: Points, present: np.ndarray):
    """Geometry checks on :class:`Points`: finite ones from coordinates, others as shapely points."""
    finite = points.finite[present]
    odd = present[~finite]
    shapes = points.geometries(odd)
    every = len(present) == len(points) and not len(odd)  # the usual chunk: no indexing needed
    x, y = (points.x, points.y) if every else (points.x[present[finite]], points.y[present[finite]])
    for name, _, check in tests:
        ok = np.ones(len(present), dtype=bool)
        ok[finite] = check.hub_points(x, y)
        if len(odd):
            ok[~finite] = check.hub_test(shapes)
        if not ok.all():
            rows = present[~ok]
            yield name, rows, points.geometries(rows)


def pandera_failures(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`failure_table` by pandera's own ``validate(lazy=True)``: the reference the direct run of
    the checks is tested against, and what it falls back to."""
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return pd.DataFrame(columns=_EMPTY)
    cases = cases[cases["index"].notna()]
    return _table(schema, cases["index"].to_numpy(), cases["column"].to_numpy(), cases["check"].astype(str),
                  cases["failure_case"].to_numpy())


def _table(schema, index, columns, checks: pd.Series, values) -> pd.DataFrame:
    """The failures as a frame; its text columns stay Python objects (a few rows, read row by row)."""
    messages = {
        (name, check.name): check.description or check.name
        for name, column in schema.columns.items()
        for check in column.checks
    }
    checks = checks.astype(object).replace({"not_nullable": "required", "field_uniqueness": "duplicate_key"})
    text = lambda items: pd.Series(list(items), dtype=object)  # noqa: E731
    return pd.DataFrame(
        {
            "index": index,
            "column": text(columns),
            "check": text(checks),
            "value": text(values),
            "message": text(
                messages.get((col, chk), "is required but empty" if chk == "required" else chk)
                for col, chk in zip(columns, checks)
            ),
        }
    )
