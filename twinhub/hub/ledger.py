"""The reconciliation ledger: where every source row of every run went.

``catalog.runs`` holds, per run, rows read, published, quarantined and filtered (left out by the
manifest's filter, twinhub/hub/derive.py) and the changes against the version before (added, updated,
unchanged, deleted); ``ledger`` lists them and checks that read = published + quarantined + filtered.
``catalog.row_sources`` maps each published row's source row number to its key (JSON for several columns)
(replaced at each publish like the quarantine, so DuckLake's snapshots keep the
map of every version still held): ``trace`` follows one source row of a run to
its published key, its quarantine reasons or the filter that left it out (the run's details keep the
filtered rows per reason).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from twinhub.catalog.info import UnknownDataset
from twinhub.catalog.lake import ALIAS, META_SCHEMA, Lake
from twinhub.catalog.publish import PublishResult

COLUMNS = ("run_id", "status", "finished_at", "version", "rows_read", "rows_published", "rows_quarantined",
           "rows_filtered", "rows_added", "rows_updated", "rows_deleted", "rows_unchanged", "balanced", "error")


def _records(cursor) -> list[dict]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _runs(con, dataset: str | None, where: str = "", params: tuple = ()) -> list[dict]:
    # a catalog not yet upgraded by a writing connection (catalog/lake.py) has no rows_filtered: none were
    filtered = "coalesce(r.rows_filtered, 0)" if _has_filtered(con) else "0"
    sql = f"""SELECT r.dataset, r.run_id, r.status, r.finished_at, s.snapshot_id AS version,
                     r.rows_read, r.rows_published, r.rows_quarantined, {filtered} AS rows_filtered,
                     r.rows_added, r.rows_updated,
                     r.rows_deleted, r.rows_unchanged, r.source_fingerprint, r.config_fingerprint,
                     r.source_crs, r.started_at, r.extent, r.error
              FROM {META_SCHEMA}.runs r
              LEFT JOIN {ALIAS}.snapshots() s
                ON r.status = 'published'
               AND json_extract_string(s.commit_extra_info, '$.run_id') = r.run_id
               AND json_extract_string(s.commit_extra_info, '$.dataset') = r.dataset
              WHERE (? IS NULL OR r.dataset = ?) {where}
              ORDER BY r.finished_at DESC, r.dataset"""
    return _records(con.execute(sql, [dataset, dataset, *params]))


def _has_filtered(con) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? AND table_name = 'runs' "
        "AND column_name = 'rows_filtered'", [ALIAS, META_SCHEMA]).fetchone()[0])


def published_run(lake: Lake, dataset: str, run_id: str) -> PublishResult | None:
    """The result of ``run_id`` if it already published ``dataset`` (a retry then has nothing to do)."""
    if not lake.exists():
        return None
    con = lake.connect(read_only=True)
    try:
        rows = _runs(con, dataset, "AND r.run_id = ? AND r.status = 'published'", (run_id,))
    finally:
        con.close()
    if not rows:
        return None
    r = rows[0]
    return PublishResult(
        dataset=dataset, run_id=run_id, snapshot_id=r["version"], rows_read=r["rows_read"],
        rows_published=r["rows_published"], rows_quarantined=r["rows_quarantined"],
        extent=json.loads(r["extent"]) if r.get("extent") else None,
        changes={k: r[f"rows_{k}"] for k in ("added", "updated", "unchanged", "deleted")},
    )


def run_recorded(lake: Lake, dataset: str, run_id: str) -> bool:
    """Whether ``catalog.runs`` has any row for ``run_id`` on ``dataset``."""
    con = lake.connect(read_only=True)
    try:
        return bool(con.execute(f"SELECT count(*) FROM {META_SCHEMA}.runs WHERE dataset = ? AND run_id = ?",
                                [dataset, run_id]).fetchone()[0])
    finally:
        con.close()


def ledger(lake: Lake, dataset: str | None = None, runs: int = 20) -> list[dict]:
    """The latest ``runs`` runs (of ``dataset``, or of every dataset), newest first.

    ``balanced`` is False for a published run whose rows read differ from
    published + quarantined + filtered: a row went missing or was counted twice.
    """
    con = lake.connect(read_only=True)
    try:
        rows = _runs(con, dataset)
    finally:
        con.close()
    if dataset and not rows:
        raise UnknownDataset(f"{dataset!r} has no runs in the catalog: `twinhub datasets` lists what is registered")
    for r in rows:
        r["balanced"] = (None if r["status"] != "published" else
                         r["rows_read"] == (r["rows_published"] or 0) + (r["rows_quarantined"] or 0) + r["rows_filtered"])
    return rows[:runs] if dataset else _latest_per_dataset(rows, runs)


def _latest_per_dataset(rows: list[dict], runs: int) -> list[dict]:
    seen: dict[str, int] = {}
    kept = []
    for r in rows:
        seen[r["dataset"]] = seen.get(r["dataset"], 0) + 1
        if seen[r["dataset"]] <= runs:
            kept.append(r)
    return kept


@dataclass
class Trace:
    dataset: str
    run_id: str
    version: int | None
    source_row: int
    outcome: str  # published | quarantined | filtered | not read
    key: dict | None = None
    row: dict | None = None  # the published row as the version serves it
    reasons: list | None = None
    rows_read: int | None = None
    filter_reason: str | None = None  # filtered: the filter's reason

    def describe(self) -> str:
        where = f"{self.dataset} run {self.run_id} (version {self.version})"
        if self.outcome == "published":
            key = ", ".join(f"{k}={v!r}" for k, v in (self.key or {}).items())
            return f"source row {self.source_row} of {where}: published under key {key}"
        if self.outcome == "quarantined":
            why = "; ".join(r.get("message") or r.get("check", "") for r in self.reasons or [])
            return f"source row {self.source_row} of {where}: quarantined: {why}"
        if self.outcome == "filtered":
            return f"source row {self.source_row} of {where}: filtered: {self.filter_reason}"
        return (f"source row {self.source_row} of {where}: not read: the source had {self.rows_read} rows "
                "(rows are numbered from 1 as the connector read them)")


def trace(lake: Lake, dataset: str, source_row: int, run_id: str | None = None) -> Trace:
    """Where ``source_row`` of ``dataset``'s run ``run_id`` (default: the version served now) went."""
    con = lake.connect(read_only=True)
    try:
        published = [r for r in _runs(con, dataset) if r["status"] == "published" and r["version"] is not None]
        chosen = next((r for r in published if r["run_id"] == run_id), None) if run_id else (published or [None])[0]
        if chosen is None:
            raise UnknownDataset(_no_run(dataset, run_id, published))
        at = f"AT (VERSION => {int(chosen['version'])})"
        base = Trace(dataset, chosen["run_id"], chosen["version"], source_row, "not read", rows_read=chosen["rows_read"])
        found = con.execute(f"SELECT key FROM {META_SCHEMA}.row_sources {at} WHERE dataset = ? AND source_row = ?",
                            [dataset, source_row]).fetchone()
        if found:
            return _published(con, base, found[0], at)
        q = con.execute(f"SELECT reasons FROM {META_SCHEMA}.quarantine {at} WHERE dataset = ? AND source_row = ?",
                        [dataset, source_row]).fetchone()
        if q:
            base.outcome, base.reasons = "quarantined", json.loads(q[0])
        elif 1 <= source_row <= (chosen["rows_read"] or 0) and chosen["rows_filtered"]:
            base.outcome, base.filter_reason = "filtered", _filter_reason(con, chosen, source_row)
        return base
    finally:
        con.close()


def _filter_reason(con, run: dict, source_row: int) -> str:
    """The reason of the filter that left ``source_row`` out, from the run's details (their ranges are
    capped: past them, the reasons it may have been)."""
    found = con.execute(f"SELECT details FROM {META_SCHEMA}.runs WHERE dataset = ? AND run_id = ? AND status = ?",
                        [run["dataset"], run["run_id"], "published"]).fetchone()
    record = (json.loads(found[0]) if found and found[0] else {}).get("filter") or {}
    for reason, ranges in (record.get("source_rows") or {}).items():
        if any(first <= source_row <= last for first, last in ranges):
            return reason
    reasons = [reason for reason, rows in (record.get("by_reason") or {}).items() if rows]
    return reasons[0] if len(reasons) == 1 else "one of: " + "; ".join(reasons) if reasons else "by the manifest's filter"


def _published(con, base: Trace, key_text: str | None, at: str) -> Trace:
    base.outcome = "published"
    names = [r[0] for r in con.execute(
        f"SELECT name FROM {META_SCHEMA}.columns WHERE dataset = ? AND is_key ORDER BY position", [base.dataset]).fetchall()]
    base.key = ({names[0]: key_text} if len(names) == 1 else json.loads(key_text)) if key_text is not None else {}
    if base.key:
        department, name = base.dataset.split(".", 1)
        geometry = [r[0] for r in con.execute(
            f"SELECT name FROM {META_SCHEMA}.columns WHERE dataset = ? AND is_geometry", [base.dataset]).fetchall()]
        exclude = f"EXCLUDE ({', '.join(_q(g) for g in geometry)})" if geometry else ""
        match = " AND ".join(f"CAST({_q(k)} AS VARCHAR) IS NOT DISTINCT FROM ?" for k in base.key)
        rows = _records(con.execute(f"SELECT * {exclude} FROM {_q(department)}.{_q(name)} {at} WHERE {match}",
                                    list(base.key.values())))
        base.row = {k: (str(v) if v is not None else None) for k, v in rows[0].items()} if rows else None
    return base


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _no_run(dataset: str, run_id: str | None, published: list[dict]) -> str:
    if not published:
        return f"{dataset!r} has no published version: `twinhub ledger {dataset}` lists its runs"
    runs = ", ".join(r["run_id"] for r in published[:5])
    return f"{dataset}: run {run_id!r} did not publish a version still held; published runs: {runs}"
