"""`twinhub datasets` shows the served version (v-number, snapshot) and its counts, also when the last run was
"unchanged" or the served version is a rollback's."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from twinhub import sample
from twinhub.cli.demo import prepare_demo
from twinhub.cli.main import main
from twinhub.hub.registration import register
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
    assert row["served"] == f"v1 (snapshot {_snapshot_of(hub, served['run_id'])})"  # one version so far


def _snapshot_of(hub, run_id: str) -> int:
    con = hub.lake.connect(read_only=True)
    try:
        return con.execute("SELECT snapshot_id FROM lake.snapshots() WHERE json_extract_string(commit_extra_info, "
                           "'$.run_id') = ? AND json_extract_string(commit_extra_info, '$.dataset') = ?",
                           [run_id, DATASET]).fetchone()[0]
    finally:
        con.close()


@pytest.mark.slow
def test_after_a_rollback_runs_and_datasets_show_the_rollbacks_version_and_counts(hub):
    """v1 published, v2 forced, rollback to v1 (= v3): an unchanged run after it reports v3's counts."""
    register(hub, sample.CITY / "emergency" / "shelters.yaml")
    assert run_datasets(hub, [DATASET]).ok
    assert run_datasets(hub, [DATASET], force=True).outcomes[0].status == "published"
    back = CliRunner().invoke(main, ["rollback", DATASET, "v1", "--home", str(hub.home)])
    assert back.exit_code == 0, back.output
    rollback = max((r for r in _runs(hub) if r["dataset"] == DATASET), key=lambda r: r["finished_at"])
    assert rollback["status"] == "rollback"
    label = f"v3 (snapshot {_snapshot_of(hub, rollback['run_id'])})"
    assert f"{DATASET}: {label} serves the rows of v1" in back.output

    again = run_datasets(hub, [DATASET]).outcomes[0]  # the source did not change since: unchanged
    assert (again.status, again.served_label, again.number) == ("unchanged", label, 3)
    assert (again.rows_published, again.rows_quarantined) == (rollback["rows_published"], rollback["rows_quarantined"])
    result = CliRunner().invoke(main, ["datasets", "--home", str(hub.home), "--format", "json"])
    row = {r["dataset"]: r for r in json.loads(result.output)}[DATASET]
    assert (row["last_run"], row["served"], row["published"], row["quarantined"]) == (
        "unchanged", label, rollback["rows_published"], rollback["rows_quarantined"])
