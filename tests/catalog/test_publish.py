"""Publishing is atomic: readers see the old version or the new one, never a mix, and nothing is lost."""

from __future__ import annotations

import datetime as dt
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import shapely

from twinhub import sample
from twinhub.catalog.info import dataset_info, quarantine_rows
from twinhub.catalog.publish import RunInfo, publish
from twinhub.catalog.stage import Stage
from twinhub.connectors import SourceError
from twinhub.hub.home import Hub
from twinhub.hub.ingest import dataset_entry, ingest
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup

REPO = pathlib.Path(__file__).resolve().parents[2]


def _state(hub, dataset: str) -> tuple:
    con = hub.lake.connect(read_only=True)
    try:
        rows = con.execute(f"SELECT * EXCLUDE (geometry), ST_AsText(geometry) FROM {dataset} ORDER BY 1").fetchall()
        quarantined = con.execute("SELECT source_row FROM catalog.quarantine WHERE dataset = ? ORDER BY 1",
                                  [dataset]).fetchall()
        snapshots = con.execute("SELECT count(*) FROM lake.snapshots()").fetchone()[0]
        return rows, quarantined, snapshots
    finally:
        con.close()


@pytest.fixture
def water(hub):
    register(hub, sample.CITY / "water" / "pumping_stations.yaml")
    ingest(hub, lookup(hub, "water.pumping_stations"), run_id="first")
    return hub


def test_republishing_replaces_rows_and_adds_a_version(water):
    before = _state(water, "water.pumping_stations")
    ingest(water, lookup(water, "water.pumping_stations"), run_id="second", force=True)
    after = _state(water, "water.pumping_stations")
    assert after[0] == before[0] and after[1] == before[1]  # same rows, no duplicates
    versions = dataset_info(water.lake, "water.pumping_stations")["versions"]
    assert [v["run_id"] for v in versions] == ["second", "first"]
    assert versions[0]["version"] > versions[1]["version"]


def test_a_failure_inside_the_commit_leaves_the_previous_version_served(water):
    before = _state(water, "water.pumping_stations")
    manifest = lookup(water, "water.pumping_stations").manifest
    standard = water.pack.standard("facility")
    stage = Stage(water.staging_dir / "broken")
    good = {"facility_id": "X1", "name": "n", "category": "pumping_station", "district": None, "address": None,
            "capacity": pd.NA, "geometry": shapely.to_wkb(shapely.Point(121.4, 31.2)), "_source_row": 1}
    broken = dict(good, facility_id="X2", geometry=b"\x01\x02not wkb", _source_row=2)
    frame = pd.DataFrame([good, broken]).astype({"capacity": "Int64"})
    stage.write(frame, pd.DataFrame(columns=["_source_row", "checks", "reasons", "record"]))
    run = RunInfo("broken", dt.datetime.now(dt.timezone.utc), "sha256:x", "EPSG:4490")
    with pytest.raises(Exception):  # noqa: B017 - whatever DuckDB raises on the broken WKB, nothing is published
        publish(water.lake, dataset_entry(manifest, standard, water.target_crs), stage, run)
    assert _state(water, "water.pumping_stations") == before


def test_a_source_failing_half_way_publishes_nothing_and_cleans_its_staging(hub, tmp_path):
    source = tmp_path / "care"
    source.mkdir()
    shutil.copy(sample.CITY / "civil_affairs" / "elderly_care.yaml", source / "elderly_care.yaml")
    good = (sample.CITY / "civil_affairs" / "elderly_care.csv").read_bytes()
    (source / "elderly_care.csv").write_bytes(good)
    register(hub, source / "elderly_care.yaml")
    entry = lookup(hub, "civil_affairs.elderly_care")
    ingest(hub, entry, run_id="good")
    before = _state(hub, "civil_affairs.elderly_care")
    config = hub.home / "twinhub.yaml"
    config.write_text(config.read_text().replace("chunk_rows: 50000", "chunk_rows: 5"))
    small_chunks = Hub(hub.home)  # reads the new chunk size: three good chunks are staged before the bad bytes
    lines = good.split(b"\n")
    (source / "elderly_care.csv").write_bytes(b"\n".join(lines[:15]) + b"\n\xff\xfe\xfa bad bytes\n" + b"\n".join(lines[15:]))
    with pytest.raises(SourceError, match=r"not valid in the declared gbk encoding.*data row 15"):
        ingest(small_chunks, entry, run_id="bad")
    rows, quarantined, snapshots = _state(hub, "civil_affairs.elderly_care")
    assert (rows, quarantined) == before[:2]
    assert snapshots == before[2] + 1  # only the failed run's record in catalog.runs
    assert not any((hub.staging_dir / "bad").rglob("*.parquet"))
    versions = dataset_info(hub.lake, "civil_affairs.elderly_care")["versions"]
    assert versions[0]["status"] == "failed" and "gbk" in versions[0]["error"]
    assert len(quarantine_rows(hub.lake, "civil_affairs.elderly_care")) == len(before[1])


PUBLISH = textwrap.dedent(
    """
    import sys
    from twinhub.hub.home import Hub
    from twinhub.hub.ingest import ingest
    from twinhub.hub.registry import lookup
    hub = Hub.open(sys.argv[1])
    for i in range(int(sys.argv[3])):
        # wait: two runs on one dataset take turns (its lock, twinhub/locks.py) instead of failing
        ingest(hub, lookup(hub, sys.argv[2]), run_id=f"{sys.argv[2]}-{sys.argv[4]}-{i}", force=True, wait=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "first, second",
    [("water.pumping_stations", "emergency.shelters"), ("water.pumping_stations", "water.pumping_stations")],
    ids=["different-datasets", "same-dataset"],
)
def test_concurrent_publishers_both_succeed(hub, first, second):
    for path in (sample.CITY / "water" / "pumping_stations.yaml", sample.CITY / "emergency" / "shelters.yaml"):
        register(hub, path)
    procs = [
        subprocess.Popen([sys.executable, "-c", PUBLISH, str(hub.home), ds, "3", tag], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for ds, tag in ((first, "a"), (second, "b"))
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    for dataset in {first, second}:
        versions = dataset_info(hub.lake, dataset)["versions"]
        published = [v for v in versions if v["status"] == "published"]
        assert len(published) == (6 if first == second else 3)
        assert len({v["version"] for v in published}) == len(published)  # each publish its own snapshot
        rows = _state(hub, dataset)[0]
        assert len(rows) == published[0]["rows_published"]  # no mix of two publishes


def test_changes_are_counted_by_key_and_an_unchanged_source_publishes_nothing(hub, tmp_path):
    folder = tmp_path / "care"
    folder.mkdir()
    shutil.copy(sample.CITY / "civil_affairs" / "elderly_care.yaml", folder)
    csv_path = folder / "elderly_care.csv"
    lines = (sample.CITY / "civil_affairs" / "elderly_care.csv").read_text(encoding="gbk").splitlines()
    csv_path.write_text("\n".join(lines) + "\n", encoding="gbk")
    register(hub, folder / "elderly_care.yaml")
    entry = lookup(hub, "civil_affairs.elderly_care")
    first = ingest(hub, entry, run_id="v1")
    assert first.changes == {"added": 18, "updated": 0, "unchanged": 0, "deleted": 0}

    again = ingest(hub, entry, run_id="v1-again")
    assert again.unchanged and again.snapshot_id == first.snapshot_id

    edited = [lines[0]] + [l for l in lines[1:] if not l.startswith("MZ-0002,")]  # deleted at the source
    edited = [l.replace("第4养老院", "第4养老院（新楼）") if l.startswith("MZ-0004,") else l for l in edited]  # updated
    edited.append(lines[1].replace("MZ-0001", "MZ-0100"))  # added
    csv_path.write_text("\n".join(edited) + "\n", encoding="gbk")
    second = ingest(hub, entry, run_id="v2")
    assert second.changes == {"added": 1, "updated": 1, "unchanged": 16, "deleted": 1}
    ids = {r[0] for r in _state(hub, "civil_affairs.elderly_care")[0]}
    assert "MZ-0002" not in ids and "MZ-0100" in ids
    statuses = [v["status"] for v in dataset_info(hub.lake, "civil_affairs.elderly_care")["versions"]]
    assert statuses == ["published", "unchanged", "published"]
