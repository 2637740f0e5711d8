"""Release notes: what a new version changes against the version served before it.

Generated from the data inside the publishing transaction, so they describe
exactly the two versions a reader could see: schema (columns added, removed,
retyped), row count, extent, label distributions (how many rows carry each
code of each label column) and validation (how many rows each check held
back). Stored in ``catalog.release_notes``; ``catalog.columns`` is rewritten
with the new version's columns at the same time.

    >>> compare(None, {"schema": [["id", "VARCHAR"]], "rows": 3, "extent": None,
    ...                "labels": {}, "quarantine": {"type": 1}})["summary"]
    'first version: 3 rows published, 1 quarantined (type 1)'
"""

from __future__ import annotations

import datetime as dt
import json

import duckdb

from twinhub.catalog.lake import META_SCHEMA

MAX_LABEL_VALUES = 50  # a text column with at most this many distinct values counts as a label column
LABEL_SAMPLE = 1000  # rows that rule a column out as a label column when they alone hold too many values
EXTENT_DIGITS = 7
_COMPUTE = object()  # facts(extent=...) not given: computed from the table


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def columns_of(con: duckdb.DuckDBPyConnection, department: str, name: str) -> list[tuple[str, str]]:
    """(name, type) of a catalog table's columns in order; empty when it does not exist."""
    return con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'lake' AND schema_name = ? "
        "AND table_name = ? ORDER BY column_index",
        [department, name],
    ).fetchall()


def label_columns(con: duckdb.DuckDBPyConnection, table: str, schema: list[tuple[str, str]],
                  exclude: tuple[str, ...] = ()) -> list[str]:
    """Text columns with few distinct values: the ones whose distribution is worth comparing.

    Exact distinct counts of columns of unique values (names, ids, addresses) are most of the cost
    (~0.3 s per 1e6 rows); a column with more than ``MAX_LABEL_VALUES`` values among any ``LABEL_SAMPLE``
    rows has at least as many in the table, so only the others are counted over the whole table."""
    text = [c for c, t in schema if t == "VARCHAR" and c not in exclude]
    if not text:
        return []
    sample = con.execute(
        f"SELECT {', '.join(f'count(DISTINCT {q(c)})' for c in text)} FROM "
        f"(SELECT {', '.join(q(c) for c in text)} FROM {table} LIMIT {LABEL_SAMPLE})"
    ).fetchone()
    text = [c for c, n in zip(text, sample) if n <= MAX_LABEL_VALUES]
    counts = con.execute(
        f"SELECT count(*){''.join(f', count(DISTINCT {q(c)})' for c in text)} FROM {table}"
    ).fetchone()
    rows, distinct = counts[0], counts[1:]
    return [c for c, n in zip(text, distinct) if 0 < n <= MAX_LABEL_VALUES and (n < rows or rows <= 2)]


def facts(con: duckdb.DuckDBPyConnection, dataset: str, table: str | None, labels: list[str] | None,
          geometry: str | None, extent=_COMPUTE) -> dict | None:
    """Schema, row count, extent, label distributions and quarantine reasons of the version in ``table``.

    ``labels`` names the label columns; None picks text columns with few distinct values. ``extent``:
    the table's, when the caller has it already (as :func:`_extent` gives it), not computed again.
    """
    if table is None:
        return None
    department, name = dataset.split(".", 1)
    schema = columns_of(con, department, name)
    present = {c for c, _ in schema}
    if labels is None:
        labels = label_columns(con, table, schema, exclude=(geometry,) if geometry else ())
    out = {"schema": [list(c) for c in schema], "rows": con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]}
    out["extent"] = (None if geometry not in present else _extent(con, table, geometry) if extent is _COMPUTE
                     else extent)
    out["labels"] = {
        c: dict(con.execute(f"SELECT coalesce({q(c)}, '(empty)'), count(*) FROM {table} GROUP BY 1 ORDER BY 1").fetchall())
        for c in labels if c in present
    }
    out["quarantine"] = dict(
        con.execute(
            f"SELECT c, count(*) FROM (SELECT unnest(string_split(checks, ',')) AS c "
            f"FROM {META_SCHEMA}.quarantine WHERE dataset = ?) GROUP BY c ORDER BY 1",
            [dataset],
        ).fetchall()
    )
    return out


def extent_sql(table: str, geometry: str) -> str:
    """min x, min y, max x, max y of a geometry column: one extent aggregate (the same values as
    min(ST_XMin(g)), ... and half their cost: 0.15 -> 0.08 s per 1e6 points)."""
    return f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent_Agg({q(geometry)}) AS e FROM {table})"


def _extent(con: duckdb.DuckDBPyConnection, table: str, geometry: str) -> list[float] | None:
    row = con.execute(extent_sql(table, geometry)).fetchone()
    return None if row[0] is None else [round(float(v), EXTENT_DIGITS) for v in row]


def compare(before: dict | None, after: dict, changes: dict | None = None, truncation: dict | None = None) -> dict:
    """Release notes of ``after`` against ``before`` (None for a first version), with a one-line summary.

    ``truncation``: the run's ``truncation`` record (twinhub/hub/completeness.py); when it suspects the
    source was cut off at an export limit, the notes carry its findings and the summary says so.
    """
    quarantined = sum(after["quarantine"].values())
    suspected = [f["message"] for f in (truncation or {}).get("findings", [])]
    if before is None:
        reasons = ", ".join(f"{k} {v}" for k, v in after["quarantine"].items())
        summary = f"first version: {after['rows']} rows published, {quarantined} quarantined" + (
            f" ({reasons})" if reasons else "") + _suspected(suspected)
        return {"summary": summary, "first": True, "rows": {"before": None, "after": after["rows"]},
                "extent": {"before": None, "after": after["extent"]}, "labels": after["labels"],
                "quarantine": after["quarantine"], "changes": changes or {}, "suspected_truncation": suspected}
    notes = {
        "first": False,
        "schema": _schema(before["schema"], after["schema"]),
        "rows": {"before": before["rows"], "after": after["rows"], "change": after["rows"] - before["rows"]},
        "extent": {"before": before["extent"], "after": after["extent"], "changed": before["extent"] != after["extent"]},
        "labels": _labels(before["labels"], after["labels"]),
        "quarantine": _counts(before["quarantine"], after["quarantine"]),
        "changes": changes or {},
        "suspected_truncation": suspected,
    }
    notes["summary"] = _summary(notes) + _suspected(suspected)
    return notes


def _suspected(findings: list[str]) -> str:
    return "; suspected truncation: " + "; ".join(findings) if findings else ""


def _schema(before: list, after: list) -> dict:
    old, new = dict(map(tuple, before)), dict(map(tuple, after))
    return {
        "added": [c for c in new if c not in old],
        "removed": [c for c in old if c not in new],
        "retyped": [{"column": c, "from": old[c], "to": new[c]} for c in new if c in old and old[c] != new[c]],
    }


def _counts(before: dict, after: dict) -> dict:
    """{key: [before, after]} for every key whose count changed."""
    keys = sorted(set(before) | set(after))
    return {k: [before.get(k, 0), after.get(k, 0)] for k in keys if before.get(k, 0) != after.get(k, 0)}


def _labels(before: dict, after: dict) -> dict:
    out = {}
    for column in sorted(set(before) & set(after)):  # label columns of both versions
        changed = _counts(before[column], after[column])
        if changed:
            out[column] = changed
    return out


def _signed(n: int) -> str:
    return f"+{n}" if n > 0 else str(n)


def _summary(notes: dict) -> str:
    parts = []
    schema = notes["schema"]
    for key, mark in (("added", "+"), ("removed", "-")):
        if schema[key]:
            parts.append(f"columns {mark}{', '.join(schema[key])}")
    for r in schema["retyped"]:
        parts.append(f"column {r['column']} {r['from']} -> {r['to']}")
    rows = notes["rows"]
    parts.append(f"rows {rows['before']} -> {rows['after']} ({_signed(rows['change'])})" if rows["change"]
                 else f"rows {rows['after']} (same count)")
    changes = {k: v for k, v in notes["changes"].items() if v}
    if changes and set(changes) != {"unchanged"}:
        parts.append(", ".join(f"{k} {v}" for k, v in changes.items() if k != "unchanged"))
    if notes["extent"]["changed"]:
        parts.append("extent changed")
    for column, values in notes["labels"].items():
        shown = ", ".join(f"{v} {_signed(b - a)}" for v, (a, b) in list(values.items())[:5])
        parts.append(f"{column}: {shown}")
    if notes["quarantine"]:
        parts.append("quarantine: " + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in notes["quarantine"].items()))
    return "; ".join(parts)


def record(con: duckdb.DuckDBPyConnection, dataset: str, run_id: str, previous_run_id: str | None,
           notes: dict) -> None:
    """Insert the version's release notes (inside the publishing transaction)."""
    con.execute(
        f"INSERT INTO {META_SCHEMA}.release_notes VALUES (?, ?, ?, ?, ?, ?)",
        [dataset, run_id, previous_run_id, dt.datetime.now(dt.timezone.utc), notes["summary"],
         json.dumps(notes, ensure_ascii=False, default=str)],
    )


def record_columns(con: duckdb.DuckDBPyConnection, dataset: str, schema: list, key: tuple[str, ...],
                   labels: list[str], geometry: str | None, tiers=None) -> None:
    """Rewrite ``catalog.columns`` for the dataset's new version, in one INSERT. ``tiers``
    (standards.tiers.ColumnTier) fill in what catalog/column_tiers.py's ``record`` would set afterwards
    with one UPDATE per column (~0.02 s each)."""
    con.execute(f"DELETE FROM {META_SCHEMA}.columns WHERE dataset = ?", [dataset])
    if not schema:
        return
    tier = {t.name: t for t in tiers or ()}
    values = []
    for position, (name, kind) in enumerate(schema):
        t = tier.get(name)
        values += [dataset, position, name, kind, name in key, name in labels, name == geometry,
                   *((t.classification, t.protection, ",".join(t.personal_data) or None) if t else (None,) * 3)]
    con.execute(
        f"INSERT INTO {META_SCHEMA}.columns (dataset, position, name, type, is_key, is_label, is_geometry, "
        "classification, protection, personal_data) VALUES "
        + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(schema)), values)


def column_facts(con: duckdb.DuckDBPyConnection, dataset: str) -> list[dict]:
    """The dataset's columns from ``catalog.columns``; for a version published before that table
    existed, from the table itself (keys and labels then unknown)."""
    cursor = con.execute(f"SELECT name, type, is_key, is_label, is_geometry FROM {META_SCHEMA}.columns "
                         "WHERE dataset = ? ORDER BY position", [dataset])
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r)) for r in cursor.fetchall()]
    if rows:
        return rows
    return [{"name": c, "type": t, "is_key": False, "is_label": False, "is_geometry": t.startswith("GEOMETRY")}
            for c, t in columns_of(con, *dataset.split(".", 1))]


def previous_run(con: duckdb.DuckDBPyConnection, dataset: str) -> str | None:
    """The run behind the version served now (inside the transaction: before the new one)."""
    row = con.execute(
        f"SELECT run_id FROM {META_SCHEMA}.runs WHERE dataset = ? AND status IN ('published', 'rollback') "
        "ORDER BY finished_at DESC LIMIT 1",
        [dataset],
    ).fetchone()
    return row[0] if row else None


def release_notes(con: duckdb.DuckDBPyConnection, dataset: str) -> dict[str, dict]:
    """run_id -> notes (with its summary) for every version of ``dataset``."""
    rows = con.execute(
        f"SELECT run_id, notes FROM {META_SCHEMA}.release_notes WHERE dataset = ?", [dataset]
    ).fetchall()
    return {run_id: json.loads(notes) for run_id, notes in rows}
