"""Conform one chunk of a department's rows to a shared standard.

map fields -> map labels -> cast types -> (repair) -> reproject -> validate, all
vectorized over the chunk. Each source row comes out exactly once: either as
a conforming row or as a quarantined row with every reason it failed.

The :class:`Conformer` also keeps the run's figures as it goes (label coverage,
checks, required cells, rejected positions, repairs) and turns them into the
run's details at the end (:meth:`Conformer.details`, keys in docs/standards.md).
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely

from twinhub.standards import compat, score
from twinhub.standards.checks import registry
from twinhub.standards.checks.duplicate_key import DUPLICATE_KEY
from twinhub.standards.checks.geometry_invalid import GEOMETRY_INVALID
from twinhub.standards.checks.outdated_key import OUTDATED_KEY
from twinhub.standards.checks.outside_city import OUTSIDE_CITY
from twinhub.standards.checks.reason import Reason, reasons_json
from twinhub.standards.checks.required import REQUIRED
from twinhub.standards.checks.type import TYPE
from twinhub.standards.coerce import coerce_column
from twinhub.standards.compile import Points, compile_schema, failure_table
from twinhub.standards.crs import (
    PointCoordinates,
    resolve_crs,
    transform_coordinates,
    transform_geometries,
    transform_points,
)
from twinhub.standards.crs_detect import lonlat_extent
from twinhub.standards.crs_policy import reprojection_record
from twinhub.standards.labels import LabelStats, Matcher
from twinhub.standards.pack import Crosswalk, Standard, StandardsPack, field_vocabularies
from twinhub.standards.plausibility import Plausibility

SOURCE_ROW = "_source_row"
KEEP_CURRENT = "keep_current"  # an outdated key's row is held as history; the current row publishes
HISTORY_POLICIES = (KEEP_CURRENT,)


@dataclass(frozen=True)
class Conformance:
    """How one dataset maps onto its standard (built from the manifest)."""

    standard: Standard
    pack: StandardsPack
    fields: dict[str, str]
    source_crs: str
    target_crs: str
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # inline values per field
    gate: tuple[float, float, float, float] | None = None
    crosswalks: dict[str, tuple[Crosswalk, ...]] = field(default_factory=dict)  # per field, in order
    accept_accuracy_m: float | None = None  # the manifest accepts a reprojection this inaccurate
    repair_geometry: bool = False  # the manifest allows make_valid on invalid geometries
    outside: str = "keep"  # a line or polygon partly outside the gate: keep (reported) or quarantine
    crs_declared: str | None = None  # the CRS as written (default: source_crs)
    crs_how: str = "manifest"  # where it was declared: manifest (source.crs) | source (the file itself)
    vocabularies: dict[str, str] = field(default_factory=dict)  # the manifest's bindings: field -> vocabulary
    history: str = KEEP_CURRENT  # what an outdated key becomes (HISTORY_POLICIES, docs/standards.md)


@dataclass
class Conformed:
    rows: pd.DataFrame  # standard fields, geometry as WKB (Arrow binary for points, else bytes objects), SOURCE_ROW
    quarantine: pd.DataFrame  # SOURCE_ROW, checks (comma-separated), reasons (JSON list of Reason), record (JSON)


def _short(value: object, limit: int = 200) -> object:
    if isinstance(value, shapely.Geometry):
        value = value.wkt
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    text = value if isinstance(value, (int, float, bool)) else str(value)
    return text[:limit] + "…" if isinstance(text, str) and len(text) > limit else text


def _coordinates(geometry) -> bool:
    """Whether a chunk's geometry comes as point coordinates (x, y, missing) rather than shapely objects."""
    return all(hasattr(geometry, name) for name in ("x", "y", "missing", "shapely"))


class _LazyPoints:
    """Source points as coordinates; a shapely point is made only for a row that needs one
    (a quarantine record, a geometry message): the points the source's ``shapely()`` would make."""

    def __init__(self, x: np.ndarray, y: np.ndarray, missing: np.ndarray):
        self.x, self.y, self.missing = x, y, missing

    def __len__(self) -> int:
        return len(self.x)

    def take(self, rows) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.intp)
        out = np.full(len(rows), None, dtype=object)
        present = ~self.missing[rows]
        out[present] = shapely.points(self.x[rows][present], self.y[rows][present])
        return out

    def __getitem__(self, row: int):
        return self.take([row])[0]


def _finite(geoms: np.ndarray) -> np.ndarray:
    """Per geometry: every coordinate is finite (None and empty count as finite)."""
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    bad = np.bincount(index, weights=~np.isfinite(coords).all(axis=1), minlength=len(geoms))
    return bad == 0


@dataclass
class _Tally:
    """The run's figures, added up chunk by chunk."""

    rows: int = 0
    checks: Counter = field(default_factory=Counter)  # rows held back per check
    schema_failing: int = 0
    required_cells: int = 0
    required_filled: Counter = field(default_factory=Counter)
    keys: list = field(default_factory=list)  # hashes of conforming rows' keys
    repaired: list = field(default_factory=list)  # (source row, reason)
    labels: dict = field(default_factory=lambda: defaultdict(LabelStats))
    history: dict = field(default_factory=dict)  # key field -> outdated value -> {code, replaced_by, rows} held


class Conformer:
    """Compiled once per dataset and run; applied to every chunk.

    Raises :class:`standards.crs_policy.CRSRefused` when the reprojection is too
    inaccurate for the city and the manifest does not accept it.
    """

    def __init__(self, conformance: Conformance, count_keys: bool = True):
        """``count_keys=False``: the caller counts key duplicates itself (a run's stage does, over the
        whole dataset in DuckDB) and passes them to :meth:`details`; no key is kept per row here."""
        self.c = conformance
        self.count_keys = count_keys
        city = conformance.pack.city
        self.schema = compile_schema(conformance.standard, conformance.pack, conformance.gate, cross_row=False,
                                     outside=conformance.outside)
        self.source_crs = resolve_crs(conformance.source_crs)
        self.target_crs = resolve_crs(conformance.target_crs)
        self.crs_record = reprojection_record(
            self.source_crs, self.target_crs,
            declared=conformance.crs_declared or conformance.source_crs, how=conformance.crs_how,
            area=lonlat_extent(city, self.target_crs.name), tolerance_m=city.transform_accuracy_m,
            accept_accuracy_m=conformance.accept_accuracy_m,
        )
        vocabularies = field_vocabularies(conformance.standard, conformance.pack, conformance.vocabularies,
                                          {*conformance.labels, *conformance.crosswalks})
        self.matchers = {
            name: Matcher(vocabulary, conformance.crosswalks.get(name, ()), conformance.labels.get(name))
            for name, vocabulary in vocabularies.items()
        }
        self.required = [f.name for f in conformance.standard.fields if conformance.standard.required(f)]
        # checks whose failing rows count against another score part than the schema's (labels, crs)
        self.not_schema = frozenset(name for name, part in registry.score_parts().items() if part != "schema")
        self.tally = _Tally()
        self.plausibility = Plausibility(self.source_crs, self.target_crs, city, conformance.gate or (
            -np.inf, -np.inf, np.inf, np.inf))

    def conform(self, chunk: pd.DataFrame, geometry, source_rows: np.ndarray) -> Conformed:
        """``chunk``: raw source columns; ``geometry``: shapely array in the source CRS, or an x/y
        source's points as coordinates (``x``, ``y``, ``missing``; e.g. connectors' ``PointColumn``),
        conformed without a shapely object per row."""
        chunk = chunk.reset_index(drop=True)
        source_rows = np.asarray(source_rows)
        failures: dict[int, list[Reason]] = defaultdict(list)
        columns = self._attributes(chunk, failures)
        geometry_field = self.c.standard.geometry_field
        if _coordinates(geometry) and (geometry_field is None or self.c.repair_geometry):
            geometry = geometry.shapely()  # make_valid works on shapely objects
        geoms = found = None
        points: dict[str, Points] = {}  # plain points stay coordinates: no shapely objects to check or write
        if geometry_field is not None and _coordinates(geometry):
            found = transform_coordinates(geometry.x, geometry.y, geometry.missing, self.source_crs, self.target_crs)
            geoms = geometry = _LazyPoints(found.source_x, found.source_y, found.missing)
        elif geometry_field is not None:
            geoms = np.asarray(geometry if geometry is not None else [None] * len(chunk), dtype=object)
            if self.c.repair_geometry:
                geoms = self._repair(geoms, source_rows)
            found = transform_points(geoms, self.source_crs, self.target_crs)
            if found is None:
                columns[geometry_field.name] = transform_geometries(geoms, self.source_crs, self.target_crs)
        if found is not None:
            points[geometry_field.name] = Points(found.x, found.y, found.missing)
        frame = pd.DataFrame(columns, index=chunk.index)  # built at once: no column inserted one by one
        self._validate(frame, geoms, failures, points)
        self._count(frame, geoms, source_rows, failures, points, found)
        bad = np.zeros(len(chunk), dtype=bool)
        bad[list(failures)] = True
        rows = self._rows(frame, ~bad, found, source_rows)
        self._count_keys(rows)
        return Conformed(rows=rows, quarantine=self._quarantine(chunk, geometry, source_rows, failures))

    def _rows(self, frame: pd.DataFrame, kept: np.ndarray, found, source_rows: np.ndarray) -> pd.DataFrame:
        """The conforming rows: standard fields (geometry as WKB) and SOURCE_ROW, in one frame."""
        take = None if kept.all() else np.flatnonzero(kept)
        data = {name: frame[name].array if take is None else frame[name].array.take(take) for name in frame.columns}
        geometry_field = self.c.standard.geometry_field
        if geometry_field is not None and found is not None:
            data[geometry_field.name] = Points(found.x[kept], found.y[kept], found.missing[kept]).wkb()
        elif geometry_field is not None:
            data[geometry_field.name] = shapely.to_wkb(np.asarray(data[geometry_field.name], dtype=object))
        data[SOURCE_ROW] = source_rows[kept]
        return pd.DataFrame(data, index=pd.RangeIndex(int(kept.sum())))

    def _attributes(self, chunk: pd.DataFrame, failures: dict[int, list[Reason]]) -> dict[str, pd.Series]:
        """Each attribute field's typed column; unreadable values go to ``failures``."""
        city = self.c.pack.city
        columns = {}
        for f in self.c.standard.attribute_fields:
            column = self.c.fields.get(f.name)
            raw = chunk[column] if column else pd.Series(pd.NA, index=chunk.index, dtype="string")
            if f.name in self.matchers:
                text = raw.astype("string")
                raw, stats = self.matchers[f.name].map(text)
                self.tally.labels[f.name].merge(stats)
                if stats.outdated and f.name in self.c.standard.primary_key:
                    self._hold_history(f.name, column, text, stats, failures)
            typed, type_failures = coerce_column(raw, f, timezone=city.timezone, day_first=city.day_first)
            columns[f.name] = typed
            for tf in type_failures:
                failures[tf.index].append(Reason(TYPE.name, f.name, column, _short(tf.value),
                                                 TYPE.message.format(expected=tf.expected)))
        return columns

    def _hold_history(self, name: str, column: str | None, text: pd.Series, stats: LabelStats,
                      failures: dict[int, list[Reason]]) -> None:
        """Rows whose key names an outdated concept, held as history (policy keep_current): remapped they
        would share the key of the current row, and duplicate_key would hold both back. Found per
        distinct value (``stats.outdated``), then the rows at once."""
        held = np.flatnonzero(text.isin(list(stats.outdated)).to_numpy(dtype=bool, na_value=False))
        record = self.tally.history.setdefault(name, {})
        for i, value in zip(held.tolist(), text.take(held).tolist()):
            entry = stats.outdated[value]
            failures[i].append(Reason(OUTDATED_KEY.name, name, column, value, OUTDATED_KEY.message.format(
                value=value, code=entry["code"], replaced_by=entry["replaced_by"], policy=self.c.history)
                + (f"; {entry['note']}" if entry.get("note") else "")))
        for value, entry in stats.outdated.items():
            mine = record.setdefault(value, {"code": entry["code"], "replaced_by": entry["replaced_by"], "rows": 0})
            mine["rows"] += entry["rows"]

    def _repair(self, geoms: np.ndarray, source_rows: np.ndarray) -> np.ndarray:
        """make_valid on invalid geometries with finite coordinates; each repair is recorded."""
        present = np.array([g is not None for g in geoms], dtype=bool)
        broken = np.zeros(len(geoms), dtype=bool)
        if present.any():
            finite = _finite(geoms[present])
            broken[present] = ~shapely.is_valid(geoms[present]) & finite & ~shapely.is_empty(geoms[present])
        if broken.any():
            reasons = shapely.is_valid_reason(geoms[broken])
            self.tally.repaired += list(zip(source_rows[broken].tolist(), reasons.tolist()))
            geoms = geoms.copy()
            geoms[broken] = shapely.make_valid(geoms[broken])
        return geoms

    def _validate(self, frame: pd.DataFrame, geoms: np.ndarray | None, failures: dict[int, list[Reason]],
                  points: dict[str, Points]) -> None:
        """The failure table's rows as reasons, made column-wise (``Reason._make`` over zipped columns: no
        Python frame per failing cell, which on a chunk where every row fails is most of the time)."""
        table = failure_table(self.schema, frame, points)
        if not len(table):
            return
        index = table["index"].astype(np.int64).tolist()
        checks, columns, messages = table["check"].tolist(), table["column"].tolist(), table["message"].tolist()
        if geoms is not None and GEOMETRY_INVALID.name in checks:
            for k in (k for k, check in enumerate(checks) if check == GEOMETRY_INVALID.name):
                messages[k] = self._invalid_message(geoms[index[k]])
        sources = map(self.c.fields.get, columns)
        reasons = map(Reason._make, zip(checks, columns, sources, map(_short, table["value"].tolist()), messages))
        unreadable = {(i, r.column) for i, found in failures.items() for r in found if r.check == TYPE.name}
        for i, reason in zip(index, reasons):
            if unreadable and reason.check == REQUIRED.name and (i, reason.column) in unreadable:
                continue  # the value was there but unreadable: "type" already says so
            failures[i].append(reason)

    def _invalid_message(self, geom) -> str:
        if geom is not None and not _finite(np.array([geom], dtype=object))[0]:
            return "geometry has NaN or infinite coordinates"
        reason = shapely.is_valid_reason(geom) if geom is not None else "invalid"
        hint = "" if self.c.repair_geometry else "; set repair_geometry: true in the manifest to repair it with make_valid"
        return f"geometry is not valid ({reason}){hint}"

    def _count(self, frame: pd.DataFrame, geoms, source_rows: np.ndarray, failures: dict[int, list[Reason]],
               points: dict[str, Points], found: PointCoordinates | None) -> None:
        t = self.tally
        t.rows += len(frame)
        for reasons in failures.values():
            checks = {r.check for r in reasons}
            t.checks.update(checks)
            t.schema_failing += bool(checks - self.not_schema)
        for name in self.required:
            column = frame.get(name)
            if name in points:  # a point made from coordinates, even NaN ones, is not empty
                filled = ~points[name].missing
            elif column.dtype == object:  # geometries: None and empty are not filled
                values = column.to_numpy()
                filled = ~shapely.is_missing(values) & ~shapely.is_empty(values)
            else:
                filled = column.notna().to_numpy()
            t.required_filled[name] += int(filled.sum())
        t.required_cells += len(frame) * len(self.required)
        if geoms is not None:
            outside = np.zeros(len(frame), dtype=bool)
            for i, reasons in failures.items():
                outside[i] = any(r.check == OUTSIDE_CITY.name for r in reasons)
            if found is not None:  # a point's bounds are its position: the same centre, from the coordinates
                x, y = (found.source_x + found.source_x) / 2, (found.source_y + found.source_y) / 2
            else:
                bounds = shapely.bounds(geoms) if len(geoms) else np.empty((0, 4))
                x, y = (bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2  # NaN for None/empty
            self.plausibility.add(x, y, source_rows, outside)

    def _count_keys(self, rows: pd.DataFrame) -> None:
        key = self.c.standard.primary_key
        if key and len(rows) and self.count_keys:
            self.tally.keys.append(pd.util.hash_pandas_object(rows[key], index=False).to_numpy())

    def _duplicates(self) -> int:
        """Conforming rows whose key another conforming row also has (quarantined at staging)."""
        if not self.tally.keys:
            return 0
        _, inverse, counts = np.unique(np.concatenate(self.tally.keys), return_inverse=True, return_counts=True)
        return int((counts[inverse] > 1).sum())

    def details(self, now: dt.datetime | None = None, cadence_s: float | None = None,
                previous_run: dict | None = None, source_fingerprint: str = "",
                snapshots: pathlib.Path | None = None, duplicates: int | None = None) -> dict:
        """The run's details (docs/standards.md): labels, checks, plausibility, repairs, score.

        ``previous_run`` (its catalog.runs record) carries the source's age forward;
        ``snapshots`` is where a copy of the standard is kept for ``standards check``;
        ``duplicates``: conforming rows held back for a duplicated key, when the caller found them.
        """
        now = now or dt.datetime.now(dt.timezone.utc)
        t = self.tally
        duplicates = self._duplicates() if duplicates is None else duplicates
        checks = dict(t.checks + Counter({DUPLICATE_KEY.name: duplicates} if duplicates else {}))
        labels = {name: {**stats.as_dict(), "crosswalks": [c.ref for c in self.c.crosswalks.get(name, ())]}
                  for name, stats in t.labels.items()}
        plausibility = self.plausibility.diagnose()
        fresh = score.freshness(score.source_since(previous_run, source_fingerprint, now), cadence_s, now)
        values = sum(s.values for s in t.labels.values())
        mapped = sum(s.mapped for s in t.labels.values())
        crs_part = None
        if plausibility["points"]:
            crs_part = 1 - plausibility["outside_city"] / plausibility["points"]
            if (self.crs_record.get("accepted") or "").startswith("by the manifest"):
                crs_part /= 2
        parts = {
            "schema": 1 - (t.schema_failing + duplicates) / t.rows if t.rows else None,
            "labels": mapped / values if values else None,
            "crs": crs_part,
            "completeness": sum(t.required_filled.values()) / t.required_cells if t.required_cells else None,
            "freshness": fresh["value"],
        }
        return {
            "standard": {"name": self.c.standard.name, "version": self.c.standard.version,
                         "digest": self.c.standard.digest,
                         "snapshot": compat.remember(snapshots, self.c.standard, self.c.pack) if snapshots else None},
            "crs": self.crs_record,
            "labels": labels,
            "checks": checks,
            "completeness": {
                "required_cells": t.required_cells,
                "filled": sum(t.required_filled.values()),
                "by_field": {k: round(v / t.rows, 4) for k, v in t.required_filled.items()} if t.rows else {},
            },
            "plausibility": plausibility,
            "geometry_repairs": {
                "allowed": self.c.repair_geometry,
                "rows": len(t.repaired),
                "source_rows": [r for r, _ in t.repaired[:50]],
                "reasons": dict(Counter(reason.split("[")[0].strip() for _, reason in t.repaired)),
            },
            "freshness": fresh,
            "score": score.combine(parts, dict(self.c.pack.city.score_weights)),
        } | self._history()

    def _history(self) -> dict:
        """The history policy and the rows it held, for a standard whose key carries a vocabulary's codes."""
        if not set(self.c.standard.primary_key) & set(self.matchers):
            return {}
        held = self.tally.history
        return {"history": {"policy": self.c.history, "held": held,
                            "rows": sum(e["rows"] for values in held.values() for e in values.values())}}

    def _quarantine(self, chunk, geometry, source_rows, failures: dict[int, list[Reason]]) -> pd.DataFrame:
        """One row per held-back source row; its record (the source values) written column by column."""
        held = sorted(failures)
        if not held:
            return pd.DataFrame([], columns=[SOURCE_ROW, "checks", "reasons", "record"])
        values = chunk.iloc[held]
        fields = [[f"{_ENCODE(str(name))}: {v}" for v in _json_values(values[name].tolist())]
                  for name in values.columns]
        if geometry is not None:
            shapes = _wkt(geometry.take(held) if isinstance(geometry, _LazyPoints)
                          else np.asarray(geometry, dtype=object)[held])
            fields.append([f'"geometry": {v}' for v in _json_values(shapes, 1000)])
        reasons: dict = {}  # rows that fail alike (one unmapped label) share their JSON
        checks, texts = zip(*(_reasons(failures[i], reasons) for i in held))
        return pd.DataFrame({
            SOURCE_ROW: source_rows[held].astype(np.int64).tolist(),
            "checks": list(checks),
            "reasons": list(texts),
            "record": ["{" + ", ".join(parts) + "}" for parts in zip(*fields)] if fields else ["{}"] * len(held),
        }, columns=[SOURCE_ROW, "checks", "reasons", "record"])


_ENCODE = json.encoder.encode_basestring  # a str as json.dumps(..., ensure_ascii=False) writes it


def _json(value: object) -> str:
    """``json.dumps(value, ensure_ascii=False, default=str)`` of a :func:`_short` value."""
    if value is None:
        return "null"
    return _ENCODE(value) if type(value) is str else json.dumps(value, ensure_ascii=False, default=str)


def _json_values(values: list, limit: int = 200) -> list[str]:
    """The JSON of each value's :func:`_short` form; short plain text (most values) directly."""
    return [_ENCODE(v) if type(v) is str and len(v) <= limit else _json(_short(v, limit)) for v in values]


def _wkt(geoms: np.ndarray) -> list:
    """What :func:`_short` reads of each geometry (its WKT), all at once when they are all geometries."""
    if all(g is None or isinstance(g, shapely.Geometry) for g in geoms):
        return shapely.to_wkt(geoms, rounding_precision=-1).tolist()
    return [_short(g, limit=10**9) for g in geoms]


def _reasons(reasons: list[Reason], seen: dict) -> tuple[str, str]:
    """(checks, reasons as JSON) of one row, from ``seen`` when another row failed exactly alike."""
    try:
        key = tuple((type(v), repr(v) if type(v) is float else v)  # 0.0 and -0.0 are written apart
                    for r in reasons for v in r)
        hash(key)
    except TypeError:
        key = None
    found = seen.get(key) if key is not None else None
    if found is None:
        found = (",".join(dict.fromkeys(r.check for r in reasons)), reasons_json(reasons))
        if key is not None:
            seen[key] = found
    return found


def run_warnings(details: dict) -> list[str]:
    """What a steward should read in a run's log: plausibility causes, outdated labels, repairs."""
    plausibility = details.get("plausibility") or {}
    lines = [c["message"] for c in plausibility.get("causes", ())]
    lines += [r["message"] for r in plausibility.get("repeated_positions", ())]
    held = (details.get("history") or {}).get("held") or {}
    for name, values in held.items():
        for value, entry in values.items():
            lines.append(f"{name}: {entry['rows']} rows with the outdated key {value!r} ({entry['code']}) held as "
                         f"history: {entry['replaced_by']} replaced it, and its current row publishes")
    for name, stats in (details.get("labels") or {}).items():
        for value, entry in (stats.get("outdated") or {}).items():
            if value in held.get(name, {}):
                continue
            lines.append(f"{name}: {entry['rows']} rows use the outdated {value!r} ({entry['code']}), published as "
                         f"{entry['replaced_by']}" + (f": {entry['note']}" if entry.get("note") else ""))
    repairs = details.get("geometry_repairs") or {}
    if repairs.get("rows"):
        lines.append(f"{repairs['rows']} geometries repaired with make_valid (source rows "
                     f"{', '.join(map(str, repairs['source_rows'][:10]))}): {repairs['reasons']}")
    return lines
