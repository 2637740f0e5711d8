"""The newest run per dataset (twinhub/catalog/runs.py), behind `twinhub datasets` and `twinhub run --failed`."""

from __future__ import annotations

import json

from click.testing import CliRunner

from twinhub.catalog.runs import latest_runs
from twinhub.cli.main import main


def _newest_by_python(hub, status=None) -> dict[str, dict]:
    """The oracle: every run read back, the newest per dataset picked in Python."""
    con = hub.lake.connect(read_only=True)
    try:
        cur = con.execute("SELECT * FROM catalog.runs")
        names = [d[0] for d in cur.description]
        runs = [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        con.close()
    newest: dict[str, dict] = {}
    for run in runs:
        if status is None or run["status"] == status:
            if run["dataset"] not in newest or run["finished_at"] > newest[run["dataset"]]["finished_at"]:
                newest[run["dataset"]] = run
    return newest


def test_latest_runs_is_the_newest_run_of_each_dataset(demo_hub):
    for status in (None, "published", "failed"):
        expected = _newest_by_python(demo_hub, status)
        found = latest_runs(demo_hub.lake, status, details=True)
        assert {d: (r["run_id"], r["status"], r["details"]) for d, r in found.items()} == {
            d: (r["run_id"], r["status"], r["details"]) for d, r in expected.items()}
    assert all("details" not in r and r["served_tier"] for r in latest_runs(demo_hub.lake).values())


def test_latest_runs_carry_the_served_versions_number_and_snapshot(demo_hub):
    """The served version's number is how many versions the dataset published (rollbacks included); its
    snapshot is the one the newest of them committed."""
    con = demo_hub.lake.connect(read_only=True)
    try:
        runs = con.execute("SELECT dataset, run_id FROM catalog.runs WHERE status IN ('published', 'rollback') "
                           "ORDER BY finished_at").fetchall()
        snapshots = {(run, dataset): snapshot for run, dataset, snapshot in con.execute(
            "SELECT json_extract_string(commit_extra_info, '$.run_id'), json_extract_string(commit_extra_info, "
            "'$.dataset'), snapshot_id FROM lake.snapshots() WHERE commit_extra_info IS NOT NULL").fetchall()}
    finally:
        con.close()
    expected: dict[str, tuple] = {}
    for dataset, run_id in runs:
        expected[dataset] = (expected.get(dataset, (0,))[0] + 1, snapshots[run_id, dataset])
    found = latest_runs(demo_hub.lake)
    assert {d: (r["served_version"], r["served_snapshot"]) for d, r in found.items()} == expected


def test_datasets_lists_each_ones_newest_run(demo_hub):
    result = CliRunner().invoke(main, ["datasets", "--home", str(demo_hub.home), "--format", "json"])
    assert result.exit_code == 0, result.output
    newest = _newest_by_python(demo_hub)
    listed = {r["dataset"]: (r["last_run"], r["published"], r["quarantined"]) for r in json.loads(result.output)}
    assert listed == {d: (r["status"], r["rows_published"], r["rows_quarantined"]) for d, r in newest.items()}


def test_a_hub_that_never_ran_has_no_latest_runs(hub):
    assert latest_runs(hub.lake) == {} and latest_runs(hub.lake, "published", details=True) == {}
