"""Two processes at once: different datasets both publish; the same dataset has one publisher at a time;
a reader keeps its snapshot while a publish commits."""

from __future__ import annotations

import time

import pytest

from twinhub.hub.faults import PAUSE_AT, PAUSE_MARKER
from twinhub.hub.ingest import ingest
from twinhub.hub.ledger import ledger
from twinhub.hub.locks import PublishInProgress, acquire, holder
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup

from .conftest import DATASET, cli, expected, kill, served, wait_for, write_manifest, write_source

OTHER = "emergency.drill_points_b"


@pytest.mark.slow
def test_two_processes_publishing_different_datasets_both_succeed(drill, tmp_path):
    hub, source = drill
    other = write_source(tmp_path / "b.csv", 45)
    register(hub, write_manifest(tmp_path, other, name="drill_points_b"))
    procs = [cli(hub.home, "run", DATASET), cli(hub.home, "run", OTHER)]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    assert [r[2] for r in results] == [0, 0], [r[1][-1500:] for r in results]
    assert served(hub)["rows"] == expected(60)[0]
    assert served(hub, OTHER)["rows"] == expected(45)[0]
    assert {r["dataset"]: r["status"] for r in ledger(hub.lake)} == {DATASET: "published", OTHER: "published"}


@pytest.mark.slow
def test_a_second_run_on_the_same_dataset_says_publish_in_progress_or_waits(drill, tmp_path):
    hub, source = drill
    ingest(hub, lookup(hub, DATASET), run_id="first")
    write_source(source, 80, version=2)
    marker = tmp_path / "paused"
    first = cli(hub.home, "run", DATASET, env={PAUSE_AT: "stage.after_finalize", PAUSE_MARKER: str(marker)})
    wait_for(marker, first)
    busy = holder(hub.home, DATASET)
    assert busy is not None and busy.pid > 0

    second = cli(hub.home, "run", DATASET)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 1
    assert f"{DATASET}: publish in progress (run {busy.run_id}, pid {busy.pid}, since {busy.since})" in err
    assert "Traceback" not in err and err.count("publish in progress") == 1  # one clear line, no retry storm

    waiting = cli(hub.home, "run", "--wait", DATASET)
    time.sleep(8)
    assert waiting.poll() is None, "--wait waits while the first run holds the dataset"
    kill(first)  # the first run dies; the waiting one takes over and publishes
    out, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err
    assert served(hub)["rows"] == served(hub)["keys"] == expected(80)[0]
    statuses = {r["run_id"]: r["status"] for r in ledger(hub.lake, DATASET)}
    assert statuses[busy.run_id] == "failed" and list(statuses.values()).count("published") == 2


def test_the_lock_refuses_a_second_holder_in_the_same_process_and_frees_on_release(tmp_path):
    with acquire(tmp_path, "a.b", "run-1") as lock:
        assert holder(tmp_path, "a.b").run_id == "run-1"
        with pytest.raises(PublishInProgress, match=r"a\.b: publish in progress \(run run-1, pid \d+, since "):
            acquire(tmp_path, "a.b", "run-2")
        with acquire(tmp_path, "c.d", "run-2"):  # another dataset is free
            pass
    assert holder(tmp_path, "a.b") is None and lock.previous is None
    with acquire(tmp_path, "a.b", "run-3") as again:
        assert again.previous is None  # a clean release leaves nothing to recover


def test_a_reader_keeps_its_snapshot_while_a_publish_commits(drill):
    hub, source = drill
    ingest(hub, lookup(hub, DATASET), run_id="first")
    reader = hub.lake.connect(read_only=True)
    try:
        reader.execute("BEGIN TRANSACTION")
        count = "SELECT count(*), count(*) FILTER (WHERE name LIKE '%v2') FROM emergency.drill_points"
        before = reader.execute(count).fetchone()
        write_source(source, 80, version=2)
        ingest(hub, lookup(hub, DATASET), run_id="second")  # commits while the reader's transaction is open
        during = reader.execute(count).fetchone()
        reader.execute("COMMIT")
        after = reader.execute(count).fetchone()
    finally:
        reader.close()
    assert before == during == (expected(60)[0], 0)
    assert after == (expected(80)[0], expected(80)[0])


PG = "dbname=test host=127.0.0.1 port=5432 user=postgres"


def test_with_postgres_metadata_runs_from_two_hub_homes_take_turns(tmp_path):
    """Two machines (two hub homes) sharing one PostgreSQL catalog: the advisory lock says who publishes."""
    import uuid

    import yaml

    from twinhub.catalog.extensions import connect
    from twinhub.hub.home import Hub
    from twinhub.hub.locks import hold_dataset

    schema = f"twinhub_rel_{uuid.uuid4().hex[:10]}"
    hubs = []
    for machine in ("a", "b"):
        home = tmp_path / machine
        home.mkdir()
        config = {"catalog": {"metadata": f"postgres:{PG}", "schema": schema, "data": str(tmp_path / "shared")}}
        (home / "twinhub.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        hubs.append(Hub.open(home))
        hubs[-1].init()
    source = write_source(tmp_path / "drill.csv", 30)
    try:
        for hub in hubs:
            register(hub, write_manifest(tmp_path, source))
        manifest = lookup(hubs[0], DATASET).manifest
        with hold_dataset(hubs[0], manifest, "run-a"):
            with pytest.raises(PublishInProgress, match=rf"{DATASET}: publish in progress \(run run-a, pid \d+.*since "):
                hold_dataset(hubs[1], manifest, "run-b")
            with hold_dataset(hubs[1], lookup(hubs[1], DATASET).manifest.model_copy(update={"dataset": "other"}),
                              "run-c"):
                pass  # another dataset is free on the other machine
        result = ingest(hubs[1], lookup(hubs[1], DATASET), run_id="run-b")  # free again once released
        assert result.rows_published == expected(30)[0]
    finally:
        con = connect(extensions=("postgres_scanner",))
        con.execute(f"ATTACH '{PG}' AS pg (TYPE postgres)")
        con.execute(f"CALL postgres_execute('pg', 'DROP SCHEMA IF EXISTS {schema} CASCADE')")
        con.close()
