"""Idempotent runs: an unchanged source publishes nothing new; a Dagster retry after the publish step
failed (before or after its COMMIT) publishes the rows exactly once."""

from __future__ import annotations

import pytest

from twinhub.hub import faults
from twinhub.hub.ingest import ingest
from twinhub.hub.ledger import ledger
from twinhub.hub.registry import lookup
from twinhub.pipelines.runner import run_datasets

from .conftest import DATASET, expected, served, stage_folders, write_source

pytestmark = pytest.mark.slow


def _versions(hub) -> list:
    return [r["version"] for r in ledger(hub.lake, DATASET, runs=100) if r["status"] == "published"]


def test_an_unchanged_source_publishes_no_new_version(drill):
    hub, _ = drill
    first = ingest(hub, lookup(hub, DATASET), run_id="first")
    again = ingest(hub, lookup(hub, DATASET), run_id="again")
    assert again.unchanged and again.snapshot_id == first.snapshot_id
    assert _versions(hub) == [first.snapshot_id]
    assert [r["status"] for r in ledger(hub.lake, DATASET)] == ["unchanged", "published"]


def test_running_the_same_run_id_twice_publishes_once(drill):
    """What a retried step sees: its run already published, so the second call returns the same result."""
    hub, source = drill
    ingest(hub, lookup(hub, DATASET), run_id="first")
    write_source(source, 70, version=2)
    once = ingest(hub, lookup(hub, DATASET), run_id="second", force=True)
    twice = ingest(hub, lookup(hub, DATASET), run_id="second", force=True)
    assert twice.snapshot_id == once.snapshot_id and twice.rows_published == once.rows_published
    assert [r["run_id"] for r in ledger(hub.lake, DATASET)] == ["second", "first"]


@pytest.mark.parametrize("point", ["publish.after_commit", "publish.before_commit"])
def test_a_dagster_retry_after_the_publish_step_failed_publishes_exactly_once(drill, monkeypatch, point):
    hub, source = drill
    ingest(hub, lookup(hub, DATASET), run_id="first")
    write_source(source, 80, version=2)
    monkeypatch.setenv(faults.FAIL_AT, point)
    monkeypatch.setattr(faults, "_failed", {})
    summary = run_datasets(hub, [DATASET])  # the op's retry policy re-executes it after the injected failure
    assert faults._failed == {point: 1}, "the fault was injected once"
    outcome = next(o for o in summary.outcomes if o.dataset == DATASET)
    assert outcome.ok, outcome.error
    published, quarantined = expected(80)
    assert served(hub)["rows"] == served(hub)["keys"] == published
    assert served(hub)["versions"] == {"v2": published}
    runs = [r for r in ledger(hub.lake, DATASET) if r["run_id"] == summary.run_id]
    statuses = sorted(r["status"] for r in runs)
    # after COMMIT the retry finds its run published and does nothing; before COMMIT nothing was
    # published, the failure is recorded and the retry publishes
    assert statuses == (["published"] if point == "publish.after_commit" else ["failed", "published"])
    assert len(_versions(hub)) == 2  # the first version and this run's: one version per publishing run
    assert runs[0]["rows_published"] == published and runs[0]["rows_quarantined"] == quarantined
    assert stage_folders(hub) == []
