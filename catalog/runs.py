"""Each dataset's newest run, as the catalog recorded it (``catalog.runs``).

``twinhub datasets`` shows it as the last run (beside the version served now), ``twinhub run --failed`` reruns the datasets whose newest
run failed or was blocked; the steward's review may read the newest published run's details.
"""

from __future__ import annotations

import json

from twinhub.catalog.lake import ALIAS, Lake

# Each dataset's versions numbered 1, 2, 3... in publish order (rollbacks included): the steward's handle
# on a version (`twinhub rollback DATASET v3`). DuckLake's snapshot ids are catalog-wide (a dataset goes
# 9 -> 19 -> 21), so they stay beside the number, for --as-of reads of every table at once. Numbered over
# catalog.runs, not over the snapshots, so a purged version (its snapshot expired) keeps its number and
# every later one keeps its own.
NUMBERED = (
    "SELECT r.*, row_number() OVER (PARTITION BY r.dataset ORDER BY r.finished_at, r.run_id) AS number "
    "FROM catalog.runs r WHERE r.status IN ('published', 'rollback')"
)
# a numbered version's snapshot (NULL once purged): the snapshot its run committed
SNAPSHOT_JOIN = (
    f"LEFT JOIN {ALIAS}.snapshots() s ON json_extract_string(s.commit_extra_info, '$.run_id') = v.run_id "
    "AND json_extract_string(s.commit_extra_info, '$.dataset') = v.dataset"
)
# the version each dataset serves now: its newest numbered version
SERVED_VERSIONS = (
    f"SELECT v.dataset, v.number AS served_version, s.snapshot_id AS served_snapshot FROM ({NUMBERED}) v "
    f"{SNAPSHOT_JOIN} QUALIFY row_number() OVER (PARTITION BY v.dataset ORDER BY v.number DESC) = 1"
)

# The newest run per dataset (of one status, when given: a bound parameter), with the tier the catalog
# serves the dataset at. Two constant statements: with and without the run's details (JSON, the
# largest column; listing a thousand datasets needs none of it).
_SUMMARY = "r.dataset, r.run_id, r.status, r.finished_at, r.rows_published, r.rows_quarantined"
_LATEST = (
    "FROM catalog.runs r LEFT JOIN catalog.datasets d ON d.dataset = r.dataset "
    "LEFT JOIN catalog.quality q ON q.dataset = r.dataset "
    f"LEFT JOIN ({SERVED_VERSIONS}) sv ON sv.dataset = r.dataset "
    "WHERE (CAST(? AS VARCHAR) IS NULL OR r.status = ?) "
    "QUALIFY row_number() OVER (PARTITION BY r.dataset ORDER BY r.finished_at DESC) = 1"
)
# the counts of the run that published the version served now (catalog.quality): an "unchanged" run has none
_SERVED = ("d.classification AS served_tier, q.rows_published AS served_published, "
           "q.rows_quarantined AS served_quarantined, sv.served_version, sv.served_snapshot")
LATEST_RUNS = f"SELECT {_SUMMARY}, {_SERVED} {_LATEST}"
LATEST_RUNS_WITH_DETAILS = f"SELECT {_SUMMARY}, r.details, {_SERVED} {_LATEST}"


def latest_runs(lake: Lake, status: str | None = None, details: bool = False) -> dict[str, dict]:
    """dataset -> its newest run (its newest run of ``status``) as a record.

    Each record holds dataset, run_id, status, finished_at, rows_published, rows_quarantined, with
    ``details`` the run's details (JSON text), and ``served_tier``: the classification the catalog
    serves the dataset at now (None if it serves none), ``served_published`` and ``served_quarantined``:
    the counts of the run that published the version served now (None if none is served),
    ``served_version`` (its number for this dataset: 1, 2, 3...) and ``served_snapshot`` (its catalog
    snapshot). Empty when the catalog does not exist yet.
    """
    if not lake.exists():
        return {}
    con = lake.connect(read_only=True)
    try:
        cur = con.execute(LATEST_RUNS_WITH_DETAILS if details else LATEST_RUNS, [status, status])
        names = [d[0] for d in cur.description]
        return {record["dataset"]: record for record in (dict(zip(names, row)) for row in cur.fetchall())}
    finally:
        con.close()


def version_label(number: int | None, snapshot: int | None) -> str:
    """How a user sees a version: its number for the dataset, beside the catalog snapshot.

        >>> version_label(3, 21)
        'v3 (snapshot 21)'
    """
    if number is None:
        return ""
    return f"v{number}" if snapshot is None else f"v{number} (snapshot {snapshot})"


def served_versions(lake: Lake, datasets: list[str] | None = None) -> dict[str, dict]:
    """dataset -> the version it serves now: ``number``, ``snapshot``, ``run_id``, ``status``, ``rows_read``,
    ``rows_published``, ``rows_quarantined`` (of ``datasets``, or all). Empty when there is no catalog."""
    if not lake.exists():
        return {}
    con = lake.connect(read_only=True)
    try:
        cur = con.execute(
            f"SELECT v.dataset, v.number, s.snapshot_id AS snapshot, v.run_id, v.status, v.rows_read, "
            f"v.rows_published, v.rows_quarantined FROM ({NUMBERED}) v {SNAPSHOT_JOIN} "
            "WHERE CAST(? AS VARCHAR[]) IS NULL OR list_contains(CAST(? AS VARCHAR[]), v.dataset) "
            "QUALIFY row_number() OVER (PARTITION BY v.dataset ORDER BY v.number DESC) = 1",
            [datasets, datasets])
        names = [d[0] for d in cur.description]
        return {record["dataset"]: record for record in (dict(zip(names, row)) for row in cur.fetchall())}
    finally:
        con.close()


def run_record(lake: Lake, dataset: str, run_id: str) -> dict | None:
    """The run ``run_id`` of ``dataset`` as catalog.runs holds it, with its version ``number`` and
    ``snapshot`` when it published one; None when the catalog has no such run."""
    if not lake.exists():
        return None
    con = lake.connect(read_only=True)
    try:
        cur = con.execute(
            f"SELECT r.*, v.number, s.snapshot_id AS snapshot FROM catalog.runs r "
            f"LEFT JOIN ({NUMBERED}) v ON v.run_id = r.run_id AND v.dataset = r.dataset "
            f"{SNAPSHOT_JOIN} WHERE r.dataset = ? AND r.run_id = ?", [dataset, run_id])
        names = [d[0] for d in cur.description]
        row = cur.fetchone()
        return dict(zip(names, row)) if row else None
    finally:
        con.close()


def recent_runs(lake: Lake, dataset: str, limit: int = 5) -> list[dict]:
    """The newest runs of ``dataset`` (run_id, status, finished_at), to tell a user which to ask for."""
    if not lake.exists():
        return []
    con = lake.connect(read_only=True)
    try:
        return [dict(zip(("run_id", "status", "finished_at"), r)) for r in con.execute(
            "SELECT run_id, status, finished_at FROM catalog.runs WHERE dataset = ? ORDER BY finished_at DESC "
            "LIMIT ?", [dataset, limit]).fetchall()]
    finally:
        con.close()


def quarantine_at(lake: Lake, dataset: str, snapshot: int) -> list[dict]:
    """The quarantined rows of the version of ``dataset`` at catalog ``snapshot`` (as
    catalog/info.py ``quarantine_rows`` gives the served version's)."""
    con = lake.connect(read_only=True, snapshot=snapshot)
    try:
        rows = con.execute("SELECT source_row, run_id, reasons, record FROM catalog.quarantine WHERE dataset = ? "
                           "ORDER BY source_row", [dataset]).fetchall()
    finally:
        con.close()
    return [{"source_row": r, "run_id": run, "reasons": json.loads(reasons), "record": json.loads(record)}
            for r, run, reasons, record in rows]
