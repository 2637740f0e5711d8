"""`twinhub datasets` shows the served version's counts, also when the last run was "unchanged"."""

from __future__ import annotations

import json

from click.testing import CliRunner

from twinhub.cli.demo import prepare_demo
from twinhub.cli.main import main
from twinhub.pipelines.runner import run_datasets

DATASET = "emergency.shelters"


def _runs(hub) -> list[dict]:
    con = hub.lake.connect(read_only=True)
    try:
        cur = con.execute("SELECT * FROM catalog.runs")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        con.close()


def test_an_unchanged_last_run_still_shows_the_served_versions_counts(hub):
    prepare_demo(hub)
    assert run_datasets(hub).ok
    again = run_datasets(hub, [DATASET])  # nothing changed: no new version
    assert again.ok and not again.outcomes[0].new_version
    runs = [r for r in _runs(hub) if r["dataset"] == DATASET]
    newest = max(runs, key=lambda r: r["finished_at"])
    assert newest["status"] == "unchanged" and newest["rows_published"] is None  # what used to show blank
    served = max((r for r in runs if r["status"] in ("published", "rollback")), key=lambda r: r["finished_at"])

    result = CliRunner().invoke(main, ["datasets", "--home", str(hub.home), "--format", "json"])
    assert result.exit_code == 0, result.output
    row = {r["dataset"]: r for r in json.loads(result.output)}[DATASET]
    assert row["last_run"] == "unchanged"
    assert (row["published"], row["quarantined"]) == (served["rows_published"], served["rows_quarantined"])
    assert row["published"] > 0
