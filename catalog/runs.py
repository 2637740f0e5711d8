"""Each dataset's newest run, as the catalog recorded it (``catalog.runs``).

``twinhub datasets`` shows it as the last run, ``twinhub run --failed`` reruns the datasets whose newest
run failed or was blocked; the steward's review may read the newest published run's details.
"""

from __future__ import annotations

from twinhub.catalog.lake import Lake

# The newest run per dataset (of one status, when given: a bound parameter), with the tier the catalog
# serves the dataset at. Two constant statements: with and without the run's details (JSON, the
# largest column; listing a thousand datasets needs none of it).
_SUMMARY = "r.dataset, r.run_id, r.status, r.finished_at, r.rows_published, r.rows_quarantined"
_LATEST = (
    "FROM catalog.runs r LEFT JOIN catalog.datasets d ON d.dataset = r.dataset "
    "LEFT JOIN catalog.quality q ON q.dataset = r.dataset "
    "WHERE (CAST(? AS VARCHAR) IS NULL OR r.status = ?) "
    "QUALIFY row_number() OVER (PARTITION BY r.dataset ORDER BY r.finished_at DESC) = 1"
)
# the counts of the run that published the version served now (catalog.quality): an "unchanged" run has none
_SERVED = ("d.classification AS served_tier, q.rows_published AS served_published, "
           "q.rows_quarantined AS served_quarantined")
LATEST_RUNS = f"SELECT {_SUMMARY}, {_SERVED} {_LATEST}"
LATEST_RUNS_WITH_DETAILS = f"SELECT {_SUMMARY}, r.details, {_SERVED} {_LATEST}"


def latest_runs(lake: Lake, status: str | None = None, details: bool = False) -> dict[str, dict]:
    """dataset -> its newest run (its newest run of ``status``) as a record.

    Each record holds dataset, run_id, status, finished_at, rows_published, rows_quarantined, with
    ``details`` the run's details (JSON text), and ``served_tier``: the classification the catalog
    serves the dataset at now (None if it serves none), ``served_published`` and ``served_quarantined``:
    the counts of the run that published the version served now (None if none is served). Empty when the catalog does not exist yet.
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
