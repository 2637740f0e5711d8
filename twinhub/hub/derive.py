"""Derived fields and row filters: what a manifest computes from the source before it is conformed.

A manifest's field may be a key made from several columns, a constant, a SQL expression over the
source's columns, or a column whose cells hold several values or a level of a hierarchy; its
``filter`` leaves rows out, each for a reason (docs/registering.md, "Derived fields and filters")::

    fields:
      facility_id: {key: [名称, 地址]}
      district: {constant: 浦东新区}
      category: {column: 类型, split: "|", separator: ";", level: 2}
    filter:
      - {keep: "类型 NOT LIKE '%宠物%'", reason: pet clinics are filed as hospitals}

:class:`Derivation` compiles them once per run into one DuckDB ``SELECT`` over each chunk (an Arrow
table, in a DuckDB without file, network or extension access) returning the derived columns and the
first filter each row fails; label levels are read in Arrow (standards/labels.py). The derived columns
join the chunk under reserved names (``_twinhub_<field>``) that the conformance maps the fields to, so
conforming is unchanged and a quarantined row's record still shows the source's values. Filtered
rows leave before conforming and are counted per reason: read = published + quarantined + filtered.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from twinhub.catalog.expressions import ExpressionRefused, did_you_mean, parse_expression
from twinhub.connectors.points import PointColumn
from twinhub.errors import UserError
from twinhub.standards.labels import Levels, LevelStats, Matcher, pick_levels

# A manifest (twinhub/hub/manifest.py, which imports this module: read by its attributes, not imported)
# and one of its fields: a column name, or a DerivedField
Manifest = Any
DerivedField = Any

RESERVED = "_twinhub_"  # derived columns' prefix: a source column may not start with it
FILTERED = f"{RESERVED}filter"  # the index of the first filter a row fails (NULL: kept)
KEY_LENGTH = 16  # a key's characters: 64 bits of md5 (a collision is ~1e-8 likely in 1e6 rows)
BLANK = ":blank"  # suffix of a key's companion column: every value of the row is NULL or empty
# md5's hex digits 0-9 written as g-p: a key of letters a-p only, in which the privacy scan never sees
# a phone number (as hex, ~3 in 1,000 keys hold one and would raise the dataset to sensitive). Done
# on the bytes in numpy: DuckDB's translate() cost more than the md5 itself.
_LETTERS = np.arange(256, dtype=np.uint8)
_LETTERS[ord("0"):ord("9") + 1] = np.frombuffer(b"ghijklmnop", dtype=np.uint8)
RANGES_KEPT = 2_000  # filtered source rows kept in the run's details (as ranges) for `twinhub trace`
SAMPLE_ROWS = 1_000  # rows registration evaluates the derived fields and filters on
TABLE = "chunk"  # the chunk's name in the derivation's DuckDB
UNIT_SEPARATOR = 31  # joins a key's values (each marked: NULL is not the empty text)


class DerivationRefused(UserError, ValueError):
    """A manifest's derived fields or filters that cannot run on the source: problems keyed by manifest key."""

    def __init__(self, where: str, problems: dict[str, str]):
        self.where = where
        self.problems = problems
        lines = "\n".join(f"  - {key}: {message}" for key, message in problems.items())
        super().__init__(f"{where}: the manifest's derived fields or filters cannot be used; fix the manifest "
                         f"and register it again:\n{lines}")


def derived_column(name: str) -> str:
    return f"{RESERVED}{name}"


def plain_column(spec: str | DerivedField) -> str | None:
    """The source column a field is read from as it is; None for a derived field."""
    if isinstance(spec, str):
        return spec
    plain = spec.kind == "column" and spec.split is None and spec.separator is None
    return spec.column if plain else None


def field_columns(manifest: Manifest) -> dict[str, str]:
    """Standard field -> the chunk column it is read from (a derived field's reserved column)."""
    return {name: plain_column(spec) or derived_column(name) for name, spec in manifest.fields.items()}


def needed(manifest: Manifest) -> bool:
    """Whether the manifest derives anything (else chunks go to the conformer untouched)."""
    return bool(manifest.filter) or any(plain_column(s) is None for s in manifest.fields.values())


def source_problems(manifest: Manifest, columns: list[str] | None, connector=None) -> dict[str, str]:
    """Registration's check of the derived fields and filters: against the source's ``columns`` (None: not
    contacted) and, given its ``connector``, evaluated on its first SAMPLE_ROWS rows (types, casts)."""
    from twinhub.connectors import SourceError

    try:
        derivation = Derivation(manifest, columns)
    except DerivationRefused as exc:
        return exc.problems
    try:
        if connector is not None and derivation.selects:
            with contextlib.closing(connector.chunks(SAMPLE_ROWS)) as chunks:
                chunk = next(iter(chunks), None)
            if chunk is not None:
                derivation.apply(chunk.frame, None, chunk.source_rows)
    except DerivationRefused as exc:
        return exc.problems
    except SourceError as exc:
        return {"source": str(exc)}
    finally:
        derivation.close()
    return {}


@dataclass
class Derived:
    """One chunk after derivation: the kept rows, with the derived columns added."""

    frame: pd.DataFrame
    geometry: object
    source_rows: np.ndarray
    filtered: dict[str, int] = field(default_factory=dict)  # reason -> rows of this chunk


class Derivation:
    """A manifest's derived fields and filters, compiled against the source's ``columns``.

    ``matchers``: the conformer's label matchers per field (a multi-valued cell takes its first value
    that maps). Raises :class:`DerivationRefused` keyed by the manifest key (``fields.category.expression``,
    ``filter[0].keep``) when something refers to a column the source lacks or is not allowed.
    """

    def __init__(self, manifest: Manifest, columns: list[str] | None, matchers: dict[str, Matcher] | None = None,
                 where: str | None = None):
        self.where = where or manifest.id
        self.matchers = matchers or {}
        self.selects: dict[str, exp.Expr] = {}  # output column -> expression (keys, expressions)
        self.parts: dict[str, exp.Expr] = {}  # manifest key -> its expression alone (to explain errors)
        self.booleans: dict[str, exp.Expr] = {}  # filter keys -> keep expression (must be BOOLEAN)
        self.reasons = [rule.reason for rule in manifest.filter or ()]
        self.constants: dict[str, object] = {}
        self.keys: list[str] = []  # key columns: an md5 in hex from DuckDB, written as letters here
        self.levels: dict[str, tuple[str, Levels]] = {}  # field -> (column read, levels)
        self.level_stats: dict[str, LevelStats] = {}
        self.filtered: Counter = Counter()
        self.filtered_rows: dict[str, list[list[int]]] = {}  # reason -> [first, last] source row ranges
        self.ranges_kept = 0
        self._con: duckdb.DuckDBPyConnection | None = None
        self._bound = False
        problems = self._compile(manifest, None if columns is None else list(columns))
        if problems:
            raise DerivationRefused(self.where, problems)
        known = set(columns or ())
        self.inputs = sorted({c.name for tree in self.selects.values() for c in tree.find_all(exp.Column)
                              if c.name in known} | {c for c, _ in self.levels.values() if c in known})

    # ------------------------------------------------------------------ compiling

    def _compile(self, manifest: Manifest, columns: list[str] | None) -> dict[str, str]:
        """``columns`` None: the source was not contacted (checked as written; the first run checks the rest)."""
        problems: dict[str, str] = {}
        reserved = [c for c in columns or () if c.startswith(RESERVED)]
        if reserved and needed(manifest):
            problems["source"] = (f"column {reserved[0]!r} has a name the hub reserves for derived fields "
                                  f"({RESERVED}...); rename it in the source")
        for name, spec in manifest.fields.items():
            if plain_column(spec) is None:
                problems.update(self._field(name, spec, columns))
        keeps = []
        for i, rule in enumerate(manifest.filter or ()):
            key = f"filter[{i}].keep"
            try:
                tree = parse_expression(rule.keep, columns, reserved=(RESERVED,))
            except ExpressionRefused as exc:
                problems[key] = str(exc)
                continue
            self.parts[key] = self.booleans[key] = tree
            keeps.append(tree)
        if keeps and len(keeps) == len(manifest.filter or ()):
            self.selects[FILTERED] = _first_failed(keeps)
        return problems

    def _field(self, name: str, spec: DerivedField, columns: list[str] | None) -> dict[str, str]:
        where, out = f"fields.{name}", derived_column(name)
        if spec.kind == "constant":
            self.constants[out] = spec.constant.isoformat() if isinstance(spec.constant, dt.date) else spec.constant
            return {}
        if spec.kind == "key":
            reserved = [c for c in spec.key if c.startswith(RESERVED)]
            if reserved:
                return {f"{where}.key": f"column {reserved[0]!r} has a name the hub reserves ({RESERVED}...)"}
            missing = [c for c in spec.key if columns is not None and c not in columns]
            if missing:
                return {f"{where}.key": f"column {missing[0]!r} is not in the source" + did_you_mean(missing[0], columns)}
            self.selects[out], self.selects[out + BLANK] = _key(spec.key)
            self.parts[f"{where}.key"] = self.selects[out]
            self.keys.append(out)
            return {}
        if spec.kind == "expression":
            try:
                tree = parse_expression(spec.expression, columns, reserved=(RESERVED,))
            except ExpressionRefused as exc:
                return {f"{where}.expression": str(exc)}
            self.selects[out] = self.parts[f"{where}.expression"] = tree
            if spec.split is None and spec.separator is None:
                return {}
            read = out
        else:
            if spec.column.startswith(RESERVED):
                return {f"{where}.column": f"column {spec.column!r} has a name the hub reserves ({RESERVED}...)"}
            if columns is not None and spec.column not in columns:
                return {f"{where}.column": f"column {spec.column!r} is not in the source"
                        + did_you_mean(spec.column, columns)}
            read = spec.column
        self.levels[name] = (read, Levels(spec.split, spec.separator, spec.level))
        self.level_stats[name] = LevelStats()
        return {}

    @functools.cached_property
    def sql(self) -> str:
        """The one SELECT run over each chunk (empty when nothing needs DuckDB)."""
        if not self.selects:
            return ""
        columns = [exp.alias_(tree.copy(), exp.to_identifier(name, quoted=True)) for name, tree in self.selects.items()]
        return exp.select(*columns).from_(exp.to_table(TABLE)).sql(dialect="duckdb")

    # ------------------------------------------------------------------ running

    def apply(self, frame: pd.DataFrame, geometry, source_rows: np.ndarray) -> Derived:
        """Derive one chunk: the rows no filter leaves out, with the derived columns added."""
        source_rows = np.asarray(source_rows)
        derived: dict[str, pd.Series] = {}
        keep = None
        if self.selects:
            result = self._select(frame)
            for name in result.column_names:
                if name in self.keys:
                    derived[name] = _series(_key_letters(result.column(name), result.column(name + BLANK)), frame.index)
                elif name != FILTERED and not name.endswith(BLANK):
                    derived[name] = _series(result.column(name), frame.index)
            if FILTERED in result.column_names:
                failed = pc.fill_null(result.column(FILTERED), -1).to_numpy().astype(np.int64, copy=False)
                keep = failed < 0
        for name, value in self.constants.items():
            derived[name] = _series(pa.repeat(pa.scalar(value), len(frame)), frame.index)
        out = pd.concat([frame, pd.DataFrame(derived, index=frame.index)], axis=1) if derived else frame
        counts: dict[str, int] = {}
        if keep is not None and not keep.all():
            counts = self._count(failed, source_rows)
            rows = np.flatnonzero(keep)
            out = out.take(rows).reset_index(drop=True)
            source_rows = source_rows[rows]
            geometry = _take(geometry, rows)
        for name, (read, levels) in self.levels.items():
            picked = pick_levels(pa.array(out[read].astype("string").array), levels, self.matchers.get(name),
                                 self.level_stats[name])
            out[derived_column(name)] = _series(picked, out.index)
        return Derived(out, geometry, source_rows, counts)

    def _select(self, frame: pd.DataFrame) -> pa.Table:
        con = self._connection()
        table = pa.table({c: _arrow(frame[c]) for c in self.inputs}) if self.inputs else \
            pa.table({"_": pa.nulls(len(frame))})
        con.register(TABLE, table)
        try:
            if not self._bound:
                self._check_types(con)
            return con.execute(self.sql).arrow().read_all()
        except duckdb.Error as exc:
            raise DerivationRefused(self.where, self._explain(con, exc)) from None
        finally:
            con.unregister(TABLE)

    def _connection(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB that reads nothing but the chunk: no files, network, extensions or settings."""
        if self._con is None:
            self._con = duckdb.connect(config={
                "enable_external_access": False, "autoload_known_extensions": False,
                "autoinstall_known_extensions": False, "allow_community_extensions": False,
                "memory_limit": "256MB", "lock_configuration": True,
            })
        return self._con

    def _check_types(self, con: duckdb.DuckDBPyConnection) -> None:
        """Filters must be conditions (BOOLEAN): said once, on the first chunk, before any row is read."""
        problems = {}
        for key, tree in self.booleans.items():
            kind = str(con.sql(exp.select(tree.copy()).from_(exp.to_table(TABLE)).sql(dialect="duckdb")).types[0])
            if kind != "BOOLEAN":
                problems[key] = (f"the condition gives {kind}, not true/false: write a comparison, "
                                 "e.g. 类型 NOT LIKE '%宠物%' or TRY_CAST(面积 AS DOUBLE) > 0")
        if problems:
            raise DerivationRefused(self.where, problems)
        self._bound = True

    def _explain(self, con: duckdb.DuckDBPyConnection, error: duckdb.Error) -> dict[str, str]:
        """Which manifest key DuckDB refused (each part run alone on the chunk), with DuckDB's reason."""
        for key, tree in self.parts.items():
            try:
                con.execute(exp.select(tree.copy()).from_(exp.to_table(TABLE)).sql(dialect="duckdb")).fetchall()
            except duckdb.Error as exc:
                return {key: f"DuckDB cannot evaluate it: {_first_line(exc)} (e.g. use TRY_CAST for text columns)"}
        return {"fields": f"DuckDB cannot evaluate the derived fields: {_first_line(error)}"}

    def _count(self, failed: np.ndarray, source_rows: np.ndarray) -> dict[str, int]:
        counts: dict[str, int] = {}
        for index in np.unique(failed[failed >= 0]).tolist():
            reason = self.reasons[index]
            rows = source_rows[failed == index]
            counts[reason] = counts.get(reason, 0) + len(rows)
            self._keep_ranges(reason, rows)
        self.filtered.update(counts)
        return counts

    def _keep_ranges(self, reason: str, rows: np.ndarray) -> None:
        """Filtered source rows as [first, last] ranges, up to RANGES_KEPT in all (``twinhub trace``)."""
        if self.ranges_kept >= RANGES_KEPT or not len(rows):
            return
        breaks = np.flatnonzero(np.diff(rows) != 1)
        starts = np.concatenate([[rows[0]], rows[breaks + 1]])
        ends = np.concatenate([rows[breaks], [rows[-1]]])
        take = min(len(starts), RANGES_KEPT - self.ranges_kept)
        ranges = self.filtered_rows.setdefault(reason, [])
        ranges += np.stack([starts[:take], ends[:take]], axis=1).astype(int).tolist()
        self.ranges_kept += take

    def details(self) -> dict:
        """The run's details: ``filter`` (rows per reason, source row ranges) and each level field's counts."""
        out: dict = {}
        if self.reasons:
            out["filter"] = {"rows": sum(self.filtered.values()), "by_reason": dict(self.filtered),
                             "source_rows": self.filtered_rows,
                             "source_rows_complete": self.ranges_kept < RANGES_KEPT}
        if self.level_stats:
            out["label_levels"] = {name: stats.as_dict() for name, stats in self.level_stats.items()}
        return out

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


# ---------------------------------------------------------------------- SQL built as trees


def _call(name: str, *args: exp.Expr) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _text(column: str) -> exp.Expr:
    return exp.Cast(this=exp.column(exp.to_identifier(column, quoted=True)), to=exp.DataType.build("VARCHAR"))


def _key(columns: list[str]) -> tuple[exp.Expr, exp.Expr]:
    """(md5 in hex over the values, each marked: 'v' + value, or 'n' for NULL, joined by the unit separator;
    whether every value is NULL or empty: the key is then missing). :func:`_key_letters` finishes it."""
    marked = [exp.Coalesce(this=exp.DPipe(this=exp.Literal.string("v"), expression=_text(c)),
                           expressions=[exp.Literal.string("n")]) for c in columns]
    joined = _call("concat_ws", _call("chr", exp.Literal.number(UNIT_SEPARATOR)), *marked)
    blank = exp.and_(*(exp.EQ(this=exp.Coalesce(this=_text(c), expressions=[exp.Literal.string("")]),
                              expression=exp.Literal.string("")) for c in columns))
    return _call("md5", joined), blank


def _key_letters(digests: pa.ChunkedArray, blank: pa.ChunkedArray) -> pa.Array:
    """The first KEY_LENGTH hex digits of each md5 (32 ASCII bytes, never NULL), digits written as letters
    g-p, in numpy on the bytes; NULL where the row's key values are all blank."""
    hexes = pc.cast(digests.combine_chunks(), pa.string())
    n = len(hexes)
    if not n:
        return pa.array([], pa.string())
    offsets = np.frombuffer(hexes.buffers()[1], dtype=np.int32)[hexes.offset:hexes.offset + n + 1]
    if hexes.null_count or offsets[-1] - offsets[0] != 32 * n:
        raise AssertionError("md5 gave something else than 32 hex digits per row")
    data = np.frombuffer(hexes.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]].reshape(n, 32)
    letters = _LETTERS[data[:, :KEY_LENGTH]]
    offsets = np.arange(0, KEY_LENGTH * (n + 1), KEY_LENGTH, dtype=np.int32)
    keys = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(letters.tobytes())])
    missing = pc.fill_null(blank.combine_chunks(), False)
    return pc.if_else(missing, pa.scalar(None, pa.string()), keys) if missing.true_count else keys


def _first_failed(keeps: list[exp.Expr]) -> exp.Expr:
    """The index of the first condition that is not TRUE (false or NULL), NULL when all hold."""
    ifs = [exp.If(this=exp.Not(this=exp.paren(exp.Is(this=exp.paren(tree.copy()), expression=exp.true()))),
                  true=exp.Literal.number(i)) for i, tree in enumerate(keeps)]
    return exp.Case(ifs=ifs, default=exp.null())


# ---------------------------------------------------------------------- Arrow <-> pandas


def _arrow(column: pd.Series) -> pa.Array:
    """A source column as Arrow (zero-copy for Arrow-backed text); mixed Python values as text."""
    try:
        return pa.array(column.array if isinstance(column.dtype, pd.StringDtype) else column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(column.astype("string").array)


_NULLABLE = {pa.bool_(): pd.BooleanDtype(), pa.int8(): pd.Int64Dtype(), pa.int16(): pd.Int64Dtype(),
             pa.int32(): pd.Int64Dtype(), pa.int64(): pd.Int64Dtype(), pa.float32(): pd.Float64Dtype(),
             pa.float64(): pd.Float64Dtype()}


def _series(column: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """A derived column for the conformer: text as Arrow strings, numbers and booleans as nullable
    pandas types, anything else (dates, decimals, lists) as its text."""
    kind = column.type
    if pa.types.is_decimal(kind):
        column, kind = column.cast(pa.float64()), pa.float64()
    if kind in _NULLABLE:
        array = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
        return pd.Series(array.to_pandas(types_mapper=_NULLABLE.get).array, index=index)
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        column = column.cast(pa.string())
    array = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    return pd.Series(pd.arrays.ArrowStringArray(array.cast(pa.large_string())), index=index)


def _take(geometry, rows: np.ndarray):
    if geometry is None:
        return None
    if isinstance(geometry, PointColumn):
        return PointColumn(geometry.x[rows], geometry.y[rows])
    return np.asarray(geometry, dtype=object)[rows]


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__
