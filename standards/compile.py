"""Compile a standard's Frictionless Table Schema into a pandera schema.

The Table Schema stays the single source of truth: required, unique,
ranges, lengths, patterns, enumerations, vocabularies and the geometry's type
all come from it. The city's plausibility extent is added as a check on the
geometry column. The checks themselves, with their names (the ``check`` of a
quarantine reason) and their vectorized forms, are the registry's
(:mod:`twinhub.standards.checks`): a column gets each registered check whose
pandera form applies to its field, in the registry's order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import shapely

from twinhub.standards.checks import registry
from twinhub.standards.checks.base import Context
from twinhub.standards.checks.required import REQUIRED
from twinhub.standards.checks.values import arrow_text
from twinhub.standards.coerce import DTYPES, arrow_array
from twinhub.standards.pack import Standard, StandardsPack


def compile_schema(
    standard: Standard,
    pack: StandardsPack,
    extent: tuple[float, float, float, float] | None = None,
    cross_row: bool = True,
    outside: str = "keep",
) -> pa.DataFrameSchema:
    """pandera schema for ``standard``.

    ``extent`` (in the target CRS) adds the plausibility gate to the geometry.
    With ``cross_row=False`` uniqueness is left out: the hub checks it over the
    whole staged dataset in DuckDB rather than chunk by chunk. ``outside``: the manifest's policy for
    a line or polygon partly outside the extent (``keep`` or ``quarantine``; points must be inside).
    """
    context = Context(pack=pack, standard=standard, extent=extent, outside=outside)
    columns = {}
    for field in standard.fields:
        nullable = not standard.required(field)
        unique = cross_row and bool(field.constraints.get("unique"))
        checks = [c for c in (check.pandera(field, context) for check in registry.checks()) if c is not None]
        dtype = object if field.type == "geojson" else DTYPES.get(field.type, "string")
        columns[field.name] = pa.Column(dtype, checks=checks, nullable=nullable, unique=unique)
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
    """Per column, each check's (name, vectorized form, points form); None when pandera has to validate."""
    from pandera.engines import pandas_engine

    found = {}
    for name, column in schema.columns.items():
        if column.unique or (name not in frame.columns and name not in points):
            return None
        if name in frame.columns and not column.dtype.check(pandas_engine.Engine.dtype(frame[name].dtype)):
            return None
        tests = []
        for check in column.checks:
            forms = _forms(check, name in points)
            if forms is None:
                return None
            tests.append((check.name, *forms))
        found[name] = tests
    return found


def _forms(check: pa.Check, as_points: bool) -> tuple | None:
    """The registered check's vectorized form (and points form, for a :class:`Points` column) for the
    pandera check compile_schema built, from its statistics; None for anything else."""
    unit = registry.get(check.name)
    if unit is None or "vectorized" not in unit.forms:
        return None
    statistics = check.statistics or {}
    test = unit.vectorized(statistics)
    on_points = unit.points(statistics) if as_points and "points" in unit.forms else None
    if test is None or (as_points and on_points is None):
        return None
    return test, on_points


def _column_failures(column, tests, points: Points | None, series: pd.Series | None):
    """(check, rows, values) of one column: nulls of a required column, then each check's failures."""
    if points is not None:
        null = points.missing
    else:
        null = ~REQUIRED.vectorized({})(series)
    if not column.nullable and null.any():
        rows = np.flatnonzero(null)
        yield REQUIRED.pandera_name, rows, np.full(len(rows), None, dtype=object)
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
    if arrow_text(values):
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
    for name, test, on_points in tests:
        ok = np.ones(len(present), dtype=bool)
        ok[finite] = on_points(x, y)
        if len(odd):
            ok[~finite] = test(shapes)
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
    checks = checks.astype(object).replace(registry.renames())
    # pandera's own checks (nullable, unique) carry no description: a registered check's message says
    # it, unless the message needs the rule's values
    defaults = {c.name: c.message for c in registry.checks() if "{" not in c.message}
    text = lambda items: pd.Series(list(items), dtype=object)  # noqa: E731
    return pd.DataFrame(
        {
            "index": index,
            "column": text(columns),
            "check": text(checks),
            "value": text(values),
            "message": text(
                messages.get((col, chk)) or defaults.get(chk, chk)
                for col, chk in zip(columns, checks)
            ),
        }
    )
