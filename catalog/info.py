"""What the catalog knows about a dataset: its entry, columns, versions and quarantine."""

from __future__ import annotations

import json

from twinhub.catalog.lake import ALIAS, META_SCHEMA, Lake
from twinhub.catalog.notes import release_notes
from twinhub.catalog.preview import preview_path
from twinhub.catalog.runs import NUMBERED
from twinhub.errors import UserError


class UnknownDataset(UserError, LookupError):
    pass


def _query(lake: Lake, sql: str, params: list) -> list[dict]:
    """One read-only query on the catalog, as records."""
    con = lake.connect(read_only=True)
    try:
        return _records(con.execute(sql, params))
    finally:
        con.close()


def _records(cursor) -> list[dict]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def dataset_info(lake: Lake, dataset: str) -> dict:
    """Entry, columns and versions (newest first) of a published dataset."""
    con = lake.connect(read_only=True)
    try:
        entries = _records(con.execute(f"SELECT * FROM {META_SCHEMA}.datasets WHERE dataset = ?", [dataset]))
        if not entries:
            known = [r[0] for r in con.execute(f"SELECT dataset FROM {META_SCHEMA}.datasets ORDER BY 1").fetchall()]
            raise UnknownDataset(f"{dataset!r} is not in the catalog; published datasets: {', '.join(known) or 'none'}")
        department, name = dataset.split(".", 1)
        columns = _records(
            con.execute(
                "SELECT column_name AS name, data_type AS type FROM duckdb_columns() "
                "WHERE database_name = ? AND schema_name = ? AND table_name = ? ORDER BY column_index",
                [ALIAS, department, name],
            )
        )
        versions = _records(
            con.execute(
                f"""SELECT s.snapshot_id AS version, n.number, s.snapshot_id AS snapshot,
                           r.finished_at AS published_at, r.run_id, r.status,
                           r.rows_read, r.rows_published, r.rows_quarantined, r.source_fingerprint,
                           r.standard, r.standard_version, r.source_crs, r.extent, r.error,
                           r.rows_added, r.rows_updated, r.rows_unchanged, r.rows_deleted, r.details
                    FROM {META_SCHEMA}.runs r
                    LEFT JOIN {ALIAS}.snapshots() s
                      ON json_extract_string(s.commit_extra_info, '$.run_id') = r.run_id
                     AND json_extract_string(s.commit_extra_info, '$.dataset') = r.dataset
                    LEFT JOIN ({NUMBERED}) n ON n.run_id = r.run_id AND n.dataset = r.dataset
                    WHERE r.dataset = ? ORDER BY r.finished_at DESC""",
                [dataset],
            )
        )
        notes = release_notes(con, dataset)
        for v in versions:
            v["extent"] = json.loads(v["extent"]) if v.get("extent") else None
            v["details"] = json.loads(v["details"]) if v.get("details") else {}
            v["changes"] = {k: v.pop(f"rows_{k}") for k in ("added", "updated", "unchanged", "deleted")}
            v["release_notes"] = notes.get(v["run_id"]) if v["version"] is not None else None
            path = preview_path(lake, dataset, v["version"]) if v["version"] is not None else None
            v["preview"] = str(path) if path is not None and path.exists() else None
        return {**entries[0], "columns": columns, "versions": versions}
    finally:
        con.close()


def quarantine_rows(lake: Lake, dataset: str) -> list[dict]:
    """The dataset's quarantined rows from its latest publish, with their reasons."""
    dataset_info(lake, dataset)  # raises UnknownDataset with the list of datasets
    rows = _query(
        lake,
        f"SELECT source_row, run_id, reasons, record FROM {META_SCHEMA}.quarantine "
        "WHERE dataset = ? ORDER BY source_row",
        [dataset],
    )
    for r in rows:
        r["reasons"] = json.loads(r["reasons"])
        r["record"] = json.loads(r["record"])
    return rows


def last_published(lake: Lake, dataset: str) -> dict | None:
    """The run that published the version now served, or None."""
    if not lake.exists():
        return None
    rows = _query(
        lake,
        f"SELECT * FROM {META_SCHEMA}.runs WHERE dataset = ? AND status = 'published' "
        "ORDER BY finished_at DESC LIMIT 1",
        [dataset],
    )
    return rows[0] if rows else None
