"""Usefulness, measured: reuse across departments, latency, freshness and quality per dataset.

From the audit log and the run history:

* **reuse** -- queries, lookups and exports of a dataset by consumers of *other*
  departments (the silos a hub exists to break), and how many such consumers;
* **latency** -- hours from a source change to its publication: the time
  between the last run that still saw the old source and the run that
  published the new one (an upper bound: the hub cannot see the source change
  itself), averaged over the dataset's source changes;
* **freshness** -- hours since the hub last confirmed the dataset current (a
  run that published or found the source unchanged) against the manifest's
  declared cadence (standards/cadence.py, as the score and Dagster's freshness
  read it): ``fresh`` within 1.5 cadences, else ``stale``;
* **quality** -- the share of source rows the served version quarantined.

:func:`build_report` returns the figures and, with ``save``, writes them as
``catalog.report_datasets`` and ``catalog.report_departments`` so they can be
queried in SQL like the rest of the catalog.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from twinhub.catalog.lake import META_SCHEMA, Lake, commit, with_retry
from twinhub.standards.cadence import GRACE, cron_interval

REUSE_ACTIONS = ("query", "near", "export", "export-catalog")

DATASET_FIGURES = f"""
WITH ds AS (SELECT dataset, department, classification FROM {META_SCHEMA}.datasets),
use AS (
    SELECT a.*, t.table_name AS dataset
    FROM {META_SCHEMA}.audit a, unnest(from_json(a.tables, '["VARCHAR"]')) AS t(table_name)
    WHERE a.status = 'ok' AND a.action IN {REUSE_ACTIONS}),
reuse AS (
    SELECT u.dataset,
           count(*) FILTER (WHERE u.action IN ('query', 'near')) AS queries,
           count(*) FILTER (WHERE u.action IN ('query', 'near') AND u.department IS NOT NULL
                            AND u.department <> ds.department) AS queries_other_departments,
           count(*) FILTER (WHERE u.action LIKE 'export%' AND u.department IS NOT NULL
                            AND u.department <> ds.department) AS exports_other_departments,
           count(DISTINCT u.department) FILTER (WHERE u.department <> ds.department) AS consuming_departments
    FROM use u JOIN ds USING (dataset) GROUP BY 1),
ok_runs AS (
    SELECT dataset, status, finished_at, source_fingerprint,
           lag(finished_at) OVER w AS previous_at, lag(source_fingerprint) OVER w AS previous_fingerprint
    FROM {META_SCHEMA}.runs WHERE status IN ('published', 'unchanged')
    WINDOW w AS (PARTITION BY dataset ORDER BY finished_at)),
latency AS (
    SELECT dataset, avg(epoch(finished_at - previous_at)) / 3600 AS change_to_publish_hours,
           count(*) AS source_changes
    FROM ok_runs WHERE status = 'published' AND previous_fingerprint IS DISTINCT FROM source_fingerprint
      AND previous_at IS NOT NULL GROUP BY 1),
confirmed AS (
    SELECT dataset, max(finished_at) FILTER (WHERE status IN ('published', 'unchanged', 'rollback')) AS last_confirmed_at,
           max(finished_at) FILTER (WHERE status IN ('published', 'rollback')) AS last_published_at,
           count(*) FILTER (WHERE status IN ('published', 'rollback')) AS versions,
           count(*) FILTER (WHERE status IN ('failed', 'blocked')) AS failed_runs
    FROM {META_SCHEMA}.runs GROUP BY 1)
SELECT ds.dataset, ds.department, ds.classification, c.versions, c.failed_runs, c.last_published_at,
       c.last_confirmed_at, epoch(?::TIMESTAMPTZ - c.last_confirmed_at) / 3600 AS hours_since_confirmed,
       coalesce(r.queries, 0) AS queries, coalesce(r.queries_other_departments, 0) AS queries_other_departments,
       coalesce(r.exports_other_departments, 0) AS exports_other_departments,
       coalesce(r.consuming_departments, 0) AS consuming_departments,
       l.change_to_publish_hours, coalesce(l.source_changes, 0) AS source_changes,
       q.rows_read, q.rows_quarantined, q.quarantined_share
FROM ds LEFT JOIN confirmed c USING (dataset) LEFT JOIN reuse r USING (dataset)
LEFT JOIN latency l USING (dataset) LEFT JOIN {META_SCHEMA}.quality q USING (dataset)
ORDER BY ds.dataset"""


@dataclass
class Report:
    generated_at: dt.datetime
    datasets: pd.DataFrame
    departments: pd.DataFrame


def expected_interval_hours(schedule: str | None) -> float | None:
    """The cadence a dataset's freshness is measured against, in hours; None without a readable schedule."""
    interval = cron_interval(schedule)
    return interval.total_seconds() / 3600 if interval else None


def _freshness(row: pd.Series) -> str:
    if pd.isna(row["expected_interval_hours"]):
        return "no schedule"
    if pd.isna(row["hours_since_confirmed"]):
        return "never run"
    return "fresh" if row["hours_since_confirmed"] <= GRACE * row["expected_interval_hours"] else "stale"


def _departments(datasets: pd.DataFrame, now: dt.datetime) -> pd.DataFrame:
    week_ago = pd.Timestamp(now - dt.timedelta(days=7))
    rows = []
    for department, group in datasets.groupby("department", sort=True):
        read = group["rows_read"].fillna(0).sum()
        rows.append({
            "department": department,
            "datasets": len(group),
            "published_last_7_days": int((pd.to_datetime(group["last_published_at"], utc=True) >= week_ago).sum()),
            "stale_datasets": int((group["freshness"] == "stale").sum()),
            "queries_other_departments": int(group["queries_other_departments"].sum()),
            "exports_other_departments": int(group["exports_other_departments"].sum()),
            "consuming_departments_max": int(group["consuming_departments"].max()),
            "change_to_publish_hours": group["change_to_publish_hours"].mean(),
            "quarantined_share": float(group["rows_quarantined"].fillna(0).sum() / read) if read else None,
        })
    return pd.DataFrame(rows)


def build_report(lake: Lake, schedules: dict[str, str | None] | None = None, save: bool = False,
                 now: dt.datetime | None = None) -> Report:
    """Figures per dataset and per department (``schedules``: dataset -> cron, from the registry)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    con = lake.connect(read_only=True)
    try:
        datasets = con.execute(DATASET_FIGURES, [now]).df()
    finally:
        con.close()
    schedules = schedules or {}
    datasets["schedule"] = datasets["dataset"].map(lambda d: schedules.get(d))
    datasets["expected_interval_hours"] = datasets["dataset"].map(
        lambda d: expected_interval_hours(schedules.get(d))).astype("float64")
    datasets["freshness"] = datasets.apply(_freshness, axis=1) if len(datasets) else []
    report = Report(now, datasets, _departments(datasets, now))
    if save:
        _save(lake, report)
    return report


def _save(lake: Lake, report: Report) -> None:
    con = lake.connect()
    try:
        con.register("report_datasets_frame", report.datasets.assign(generated_at=report.generated_at))
        con.register("report_departments_frame", report.departments.assign(generated_at=report.generated_at))

        def write() -> None:
            for name in ("report_datasets", "report_departments"):
                con.execute(f"CREATE OR REPLACE TABLE {META_SCHEMA}.{name} AS SELECT * FROM {name}_frame")

        with_retry(lambda: commit(con, write, "report"), what="saving the report")
    finally:
        con.close()


def dataset_figures(lake: Lake, dataset: str, schedule: str | None = None) -> dict:
    """One dataset's figures as plain numbers (e.g. for Dagster metadata)."""
    report = build_report(lake, {dataset: schedule})
    rows = report.datasets[report.datasets["dataset"] == dataset]
    if rows.empty:
        return {}
    return {k: (None if pd.isna(v) else v.item() if hasattr(v, "item") else v) for k, v in rows.iloc[0].items()}


__all__ = ["Report", "build_report", "dataset_figures", "expected_interval_hours"]
