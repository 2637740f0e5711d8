"""A run SIGKILLed at each fault point: readers see the old or the new version, never a mix; the next run
completes with every source row accounted for; nothing is left behind once `twinhub catalog vacuum` ran."""

from __future__ import annotations

import pytest

from twinhub.catalog.vacuum import orphaned_files
from twinhub.hub.faults import PAUSE_AT, PAUSE_MARKER, POINTS
from twinhub.hub.ingest import ingest
from twinhub.hub.ledger import ledger
from twinhub.hub.locks import holder
from twinhub.hub.registry import lookup

from .conftest import DATASET, cli, expected, kill, run_cli, served, stage_folders, wait_for, write_source

pytestmark = pytest.mark.slow
OLD = {"rows": expected(60)[0], "keys": expected(60)[0], "versions": {"v1": expected(60)[0]}}
NEW = {"rows": expected(80)[0], "keys": expected(80)[0], "versions": {"v2": expected(80)[0]}}
COMMITTED = {"publish.after_commit"}  # the points after which the new version is the served one


def _view(state: dict) -> dict:
    return {k: state[k] for k in ("rows", "keys", "versions")}


@pytest.mark.parametrize("point", list(POINTS))
def test_sigkill_at_each_point_leaves_a_whole_version_and_the_next_run_completes(drill, tmp_path, point):
    _crash_and_recover(*drill, tmp_path, point)


@pytest.mark.parametrize("point", ["publish.before_commit", "publish.after_commit"])
def test_sigkill_inside_and_after_the_transaction_with_postgres_metadata(drill_pg, tmp_path, point):
    _crash_and_recover(*drill_pg, tmp_path, point)


def _crash_and_recover(hub, source, tmp_path, point):
    ingest(hub, lookup(hub, DATASET), run_id="first")
    assert _view(served(hub)) == OLD
    write_source(source, 80, version=2)
    marker = tmp_path / "paused"
    proc = cli(hub.home, "run", DATASET, env={PAUSE_AT: point, PAUSE_MARKER: str(marker)})
    wait_for(marker, proc)
    killed_run = holder(hub.home, DATASET).run_id  # the paused run holds the dataset's lock
    during = _view(served(hub))  # another process reads while the run is stopped at the point
    kill(proc)
    after_kill = _view(served(hub))
    assert during == after_kill == (NEW if point in COMMITTED else OLD)
    assert holder(hub.home, DATASET) is None  # the kernel released the dead run's lock
    if point not in COMMITTED:
        assert stage_folders(hub), "the killed run left its stage (the next run or vacuum removes it)"

    again = run_cli(hub.home, "run", DATASET)
    assert again.returncode == 0, again.stderr
    assert _view(served(hub)) == NEW  # every conforming row once: no loss, no duplicate
    assert stage_folders(hub) == []
    runs = {r["run_id"]: r for r in ledger(hub.lake, DATASET)}
    assert runs[killed_run]["status"] == ("published" if point in COMMITTED else "failed")
    if point not in COMMITTED:
        assert "killed or crashed" in runs[killed_run]["error"]
    assert all(r["balanced"] is not False for r in runs.values())

    orphans = orphaned_files(hub.lake)
    if point == "publish.before_commit":  # DuckLake wrote the new version's files before COMMIT
        assert any("/emergency/drill_points/" in p for p in orphans)
        spared = run_cli(hub.home, "catalog", "vacuum", "--dry-run")  # default grace: young files may be in flight
        assert spared.returncode == 0 and orphaned_files(hub.lake) == orphans, spared.stderr
    vacuum = run_cli(hub.home, "catalog", "vacuum", "--grace", "0s")
    assert vacuum.returncode == 0, vacuum.stderr
    assert f"{len(orphans)} orphaned data files" in vacuum.stdout
    assert orphaned_files(hub.lake) == []
    assert _view(served(hub)) == NEW


def test_vacuum_spares_a_live_run_and_removes_what_a_killed_one_left(drill, tmp_path):
    hub, source = drill
    ingest(hub, lookup(hub, DATASET), run_id="first")
    write_source(source, 80, version=2)
    marker = tmp_path / "paused"
    proc = cli(hub.home, "run", DATASET, env={PAUSE_AT: "publish.before_commit", PAUSE_MARKER: str(marker)})
    wait_for(marker, proc)
    live = stage_folders(hub)
    spared = run_cli(hub.home, "catalog", "vacuum")  # default grace: the in-flight data files are young
    assert spared.returncode == 0, spared.stderr
    assert stage_folders(hub) == live and live, "a stage whose run holds the dataset's lock is live"
    assert "removed 0 dead stage folders, 0 orphaned data files" in spared.stdout
    kill(proc)
    dry = run_cli(hub.home, "catalog", "vacuum", "--dry-run", "--grace", "0s")
    assert f"would remove {live[0]}" in dry.stdout and stage_folders(hub) == live
    done = run_cli(hub.home, "catalog", "vacuum", "--grace", "0s")
    assert done.returncode == 0 and "removed 1 dead stage folders" in done.stdout, done.stdout
    assert stage_folders(hub) == [] and orphaned_files(hub.lake) == []
    assert _view(served(hub)) == OLD
