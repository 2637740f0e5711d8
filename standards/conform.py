"""Conform one chunk of a department's rows to a shared standard.

map fields -> map labels -> cast types -> reproject -> validate, all
vectorized over the chunk. Each source row comes out exactly once: either as
a conforming row or as a quarantined row with every reason it failed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely

from standards.coerce import coerce_column
from standards.compile import compile_schema, failure_table
from standards.crs import resolve_crs, transform_geometries
from standards.labels import lookup_table, map_labels
from standards.pack import Standard, StandardsPack

SOURCE_ROW = "_source_row"


@dataclass(frozen=True)
class Conformance:
    """How one dataset maps onto its standard (built from the manifest)."""

    standard: Standard
    pack: StandardsPack
    fields: dict[str, str]
    source_crs: str
    target_crs: str
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    gate: tuple[float, float, float, float] | None = None


@dataclass
class Conformed:
    rows: pd.DataFrame  # standard fields, geometry as WKB, SOURCE_ROW
    quarantine: pd.DataFrame  # SOURCE_ROW, checks (comma-separated), reasons (JSON list), record (JSON)


def _short(value: object, limit: int = 200) -> object:
    if isinstance(value, shapely.Geometry):
        value = value.wkt
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    text = value if isinstance(value, (int, float, bool)) else str(value)
    return text[:limit] + "…" if isinstance(text, str) and len(text) > limit else text


class Conformer:
    """Compiled once per dataset and run; applied to every chunk."""

    def __init__(self, conformance: Conformance):
        self.c = conformance
        self.schema = compile_schema(conformance.standard, conformance.pack, conformance.gate, cross_row=False)
        self.source_crs = resolve_crs(conformance.source_crs)
        self.target_crs = resolve_crs(conformance.target_crs)
        self.tables = {
            f.name: lookup_table(conformance.pack.vocabulary(f.custom["vocabulary"]), conformance.labels.get(f.name))
            for f in conformance.standard.attribute_fields
            if f.custom.get("vocabulary")
        }

    def conform(self, chunk: pd.DataFrame, geometry: np.ndarray | None, source_rows: np.ndarray) -> Conformed:
        """``chunk``: raw source columns; ``geometry``: shapely array in the source CRS."""
        chunk = chunk.reset_index(drop=True)
        frame = pd.DataFrame(index=chunk.index)
        failures: dict[int, list[dict]] = defaultdict(list)
        for f in self.c.standard.attribute_fields:
            column = self.c.fields.get(f.name)
            raw = chunk[column] if column else pd.Series(pd.NA, index=chunk.index, dtype="string")
            if f.name in self.tables:
                raw = map_labels(raw.astype("string"), self.tables[f.name])
            typed, type_failures = coerce_column(raw, f)
            frame[f.name] = typed
            for tf in type_failures:
                failures[tf.index].append(
                    {
                        "check": "type",
                        "column": f.name,
                        "source_column": column,
                        "value": _short(tf.value),
                        "message": f"cannot be read as {tf.expected}",
                    }
                )
        geometry_field = self.c.standard.geometry_field
        if geometry_field is not None:
            geoms = np.asarray(geometry if geometry is not None else [None] * len(chunk), dtype=object)
            frame[geometry_field.name] = transform_geometries(geoms, self.source_crs, self.target_crs)

        for row in failure_table(self.schema, frame).itertuples(index=False):
            failures[int(row.index)].append(
                {
                    "check": row.check,
                    "column": row.column,
                    "source_column": self.c.fields.get(row.column),
                    "value": _short(row.value),
                    "message": row.message,
                }
            )
        bad = np.zeros(len(chunk), dtype=bool)
        bad[list(failures)] = True
        rows = frame[~bad].copy()
        if geometry_field is not None:
            rows[geometry_field.name] = shapely.to_wkb(rows[geometry_field.name].to_numpy())
        rows[SOURCE_ROW] = np.asarray(source_rows)[~bad]
        return Conformed(rows=rows.reset_index(drop=True), quarantine=self._quarantine(chunk, geometry, source_rows, failures))

    def _quarantine(self, chunk, geometry, source_rows, failures: dict[int, list[dict]]) -> pd.DataFrame:
        records = []
        for i in sorted(failures):
            record = {str(k): _short(v) for k, v in chunk.iloc[i].items()}
            if geometry is not None:
                record["geometry"] = _short(geometry[i], limit=1000)
            records.append(
                {
                    SOURCE_ROW: int(source_rows[i]),
                    "checks": ",".join(dict.fromkeys(r["check"] for r in failures[i])),
                    "reasons": json.dumps(failures[i], ensure_ascii=False, default=str),
                    "record": json.dumps(record, ensure_ascii=False, default=str),
                }
            )
        return pd.DataFrame(records, columns=[SOURCE_ROW, "checks", "reasons", "record"])
