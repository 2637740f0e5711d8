"""Each dataset's newest run, as the catalog recorded it (``catalog.runs``).

``twinhub datasets`` shows it as the last run, ``twinhub run --failed`` reruns the datasets whose newest
run failed or was blocked, and the steward's review reads the newest published run's privacy findings.
"""

from __future__ import annotations

from twinhub.catalog.lake import Lake

# The newest run per dataset (of one status, when given), with the tier the catalog serves it at.
# The status is a bound parameter; the SQL is a constant.
LATEST_RUNS = (
    "SELECT r.*, d.classification AS served_tier "
    "FROM catalog.runs r LEFT JOIN catalog.datasets d ON d.dataset = r.dataset "
    "WHERE (CAST(? AS VARCHAR) IS NULL OR r.status = ?) "
    "QUALIFY row_number() OVER (PARTITION BY r.dataset ORDER BY r.finished_at DESC) = 1"
)


def latest_runs(lake: Lake, status: str | None = None) -> dict[str, dict]:
    """dataset -> its newest run (its newest run of ``status``) as a record, plus ``served_tier``.

    ``served_tier`` is the classification the catalog serves the dataset at now (None if it serves none).
    An empty dict when the catalog does not exist yet.
    """
    if not lake.exists():
        return {}
    con = lake.connect(read_only=True)
    try:
        cur = con.execute(LATEST_RUNS, [status, status])
        names = [d[0] for d in cur.description]
        return {record["dataset"]: record for record in (dict(zip(names, row)) for row in cur.fetchall())}
    finally:
        con.close()
