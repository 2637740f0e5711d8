"""Publish a staged dataset into the catalog in one DuckLake transaction.

Inside the transaction: replace the dataset's rows, replace its quarantine,
record the run, and update its catalog entry. Readers see the old version
or the new one, never a mix; a failure anywhere rolls everything back and
the previous version stays served. Conflicts with other writers are retried.

Cross-row rules run here, over the whole staged dataset rather than per
chunk: a primary key value that appears in more than one conforming row
quarantines every row that carries it (the hub cannot know which is right).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from catalog.lake import ALIAS, META_SCHEMA, Lake, with_retry
from catalog.stage import Stage
from standards.conform import SOURCE_ROW


@dataclass(frozen=True)
class DatasetEntry:
    """What the catalog records about a dataset."""

    department: str
    name: str
    title: str
    description: str
    standard: str
    standard_version: str
    classification: str
    target_crs: str
    columns: tuple[str, ...]  # in the standard's order
    key: tuple[str, ...] = ()
    geometry: str | None = "geometry"

    @property
    def id(self) -> str:
        return f"{self.department}.{self.name}"


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    started_at: dt.datetime
    source_fingerprint: str
    source_crs: str


@dataclass
class PublishResult:
    dataset: str
    run_id: str
    snapshot_id: int | None
    rows_read: int
    rows_published: int
    rows_quarantined: int
    extent: list[float] | None
    reasons: dict[str, int] = field(default_factory=dict)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _duplicates(con: duckdb.DuckDBPyConnection, entry: DatasetEntry, run_id: str) -> pd.DataFrame:
    """Quarantine rows for every staged row whose key is not unique."""
    if not entry.key:
        con.execute("CREATE OR REPLACE TEMP TABLE dup_rows AS SELECT NULL::BIGINT AS src WHERE false")
        return pd.DataFrame(columns=["source_row", "checks", "reasons", "record"])
    keys = ", ".join(_q(k) for k in entry.key)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE dup_rows AS
            SELECT {SOURCE_ROW} AS src, {keys},
                   count(*) OVER (PARTITION BY {keys}) AS n,
                   list({SOURCE_ROW}) OVER (PARTITION BY {keys}) AS rows_with_key
            FROM staged QUALIFY n > 1"""
    )
    attrs = [c for c in entry.columns if c != entry.geometry]
    frame = con.execute(
        f"""SELECT d.src, d.n, d.rows_with_key, {', '.join('s.' + _q(c) for c in attrs)}
            {', ST_AsText(ST_GeomFromWKB(s.' + _q(entry.geometry) + ')) AS geometry' if entry.geometry else ''}
            FROM dup_rows d JOIN staged s ON s.{SOURCE_ROW} = d.src ORDER BY d.src"""
    ).df()
    label = ", ".join(entry.key)
    records = []
    for row in frame.to_dict("records"):
        value = ", ".join(str(row[k]) for k in entry.key)
        others = sorted(int(r) for r in row["rows_with_key"] if r != row["src"])
        reason = {
            "check": "duplicate_key",
            "column": label,
            "value": value,
            "message": f"{label} {value!r} appears in {row['n']} rows (also source rows {others[:10]})",
        }
        record = {k: (None if pd.isna(v) else str(v)) for k, v in row.items() if k not in ("src", "n", "rows_with_key")}
        records.append(
            {
                "source_row": int(row["src"]),
                "checks": "duplicate_key",
                "reasons": json.dumps([reason], ensure_ascii=False),
                "record": json.dumps(record, ensure_ascii=False),
            }
        )
    return pd.DataFrame(records, columns=["source_row", "checks", "reasons", "record"])


def _extent(con: duckdb.DuckDBPyConnection, table: str, geometry: str | None) -> list[float] | None:
    if not geometry:
        return None
    g = _q(geometry)
    row = con.execute(
        f"SELECT min(ST_XMin({g})), min(ST_YMin({g})), max(ST_XMax({g})), max(ST_YMax({g})) FROM {table}"
    ).fetchone()
    return None if row is None or row[0] is None else [round(float(v), 7) for v in row]


def _write_table(con: duckdb.DuckDBPyConnection, entry: DatasetEntry) -> None:
    table = f"{_q(entry.department)}.{_q(entry.name)}"
    select = ", ".join(
        f"ST_GeomFromWKB({_q(c)}) AS {_q(c)}" if c == entry.geometry else _q(c) for c in entry.columns
    )
    order = ", ".join(_q(k) for k in entry.key) or SOURCE_ROW
    query = f"SELECT {select} FROM staged WHERE {SOURCE_ROW} NOT IN (SELECT src FROM dup_rows) ORDER BY {order}"
    existing = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? AND table_name = ? "
        "ORDER BY column_index",
        [ALIAS, entry.department, entry.name],
    ).fetchall()
    if [r[0] for r in existing] == list(entry.columns):
        con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} {query}")
    else:  # new dataset, or the standard's columns changed
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {query}")


def publish(lake: Lake, entry: DatasetEntry, stage: Stage, run: RunInfo) -> PublishResult:
    """Publish the staged dataset as a new catalog version, atomically."""
    con = lake.connect()
    try:
        con.execute(f"CREATE TEMP TABLE staged AS SELECT * FROM read_parquet('{stage.rows_glob}')")
        con.execute(f"CREATE TEMP TABLE staged_q AS SELECT * FROM read_parquet('{stage.quarantine_glob}')")
        duplicates = _duplicates(con, entry, run.run_id)
        con.register("dup_quarantine", duplicates)
        with_retry(lambda: con.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(entry.department)}"))
        return with_retry(lambda: _commit(con, entry, stage, run, len(duplicates)), what=f"publishing {entry.id}")
    finally:
        con.close()


def _commit(con, entry: DatasetEntry, stage: Stage, run: RunInfo, n_duplicates: int) -> PublishResult:
    table = f"{_q(entry.department)}.{_q(entry.name)}"
    con.execute("BEGIN")
    try:
        _write_table(con, entry)
        published = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        con.execute(f"DELETE FROM {META_SCHEMA}.quarantine WHERE dataset = ?", [entry.id])
        con.execute(
            f"""INSERT INTO {META_SCHEMA}.quarantine
                SELECT ?, ?, {SOURCE_ROW}, checks, reasons, record FROM staged_q
                UNION ALL SELECT ?, ?, source_row, checks, reasons, record FROM dup_quarantine""",
            [entry.id, run.run_id, entry.id, run.run_id],
        )
        quarantined = stage.rows_quarantined + n_duplicates
        if published + quarantined != stage.rows_read:
            raise AssertionError(
                f"{entry.id}: {stage.rows_read} rows read but {published} published + {quarantined} quarantined"
            )
        extent = _extent(con, table, entry.geometry)
        now = dt.datetime.now(dt.timezone.utc)
        con.execute(
            f"INSERT INTO {META_SCHEMA}.runs VALUES (?, ?, 'published', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            [
                run.run_id, entry.id, run.started_at, now, stage.rows_read, published, quarantined,
                run.source_fingerprint, entry.standard, entry.standard_version, run.source_crs,
                entry.target_crs, json.dumps(extent),
            ],
        )
        con.execute(f"DELETE FROM {META_SCHEMA}.datasets WHERE dataset = ?", [entry.id])
        con.execute(
            f"INSERT INTO {META_SCHEMA}.datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                entry.id, entry.department, entry.name, entry.title, entry.description, entry.standard,
                entry.standard_version, entry.classification, entry.target_crs, entry.id, now,
            ],
        )
        reasons = dict(
            con.execute(
                f"SELECT c, count(*) FROM (SELECT unnest(string_split(checks, ',')) AS c "
                f"FROM {META_SCHEMA}.quarantine WHERE dataset = ?) GROUP BY c ORDER BY 2 DESC, 1",
                [entry.id],
            ).fetchall()
        )
        info = json.dumps({"run_id": run.run_id, "dataset": entry.id})
        con.execute(f"CALL {ALIAS}.set_commit_message('twinhub', ?, extra_info => ?)", [f"publish {entry.id}", info])
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:  # the failed COMMIT already ended the transaction
            pass
        raise
    snapshot = con.execute(
        f"SELECT max(snapshot_id) FROM {ALIAS}.snapshots() WHERE commit_extra_info = ?", [info]
    ).fetchone()[0]
    return PublishResult(
        dataset=entry.id,
        run_id=run.run_id,
        snapshot_id=snapshot,
        rows_read=stage.rows_read,
        rows_published=published,
        rows_quarantined=quarantined,
        extent=extent,
        reasons=reasons,
    )


def record_failure(lake: Lake, dataset: str, run: RunInfo, error: str) -> None:
    """Note a failed run in ``catalog.runs``; the dataset's published rows are untouched."""
    con = lake.connect()
    try:
        now = dt.datetime.now(dt.timezone.utc)
        with_retry(
            lambda: con.execute(
                f"INSERT INTO {META_SCHEMA}.runs VALUES (?, ?, 'failed', ?, ?, NULL, NULL, NULL, ?, NULL, NULL, ?, "
                "NULL, NULL, ?)",
                [run.run_id, dataset, run.started_at, now, run.source_fingerprint, run.source_crs, error[:2000]],
            )
        )
    finally:
        con.close()
