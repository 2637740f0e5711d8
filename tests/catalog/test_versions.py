"""Versions: release notes on a known change, time travel by version and time, rollback, map previews."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from PIL import Image

from twinhub.catalog.info import dataset_info, quarantine_rows
from twinhub.catalog.lake import UnknownVersion
from twinhub.catalog.preview import preview_path
from twinhub.catalog.query import run_query
from twinhub.catalog.versions import AmbiguousVersion, find_version, parse_as_of, parse_version, rollback
from twinhub.hub.ingest import ingest
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup

from .conftest import copy_sample

DATASET = "civil_affairs.elderly_care"


def _rows(hub, as_of=None) -> list[tuple]:
    return run_query(hub.lake, f"SELECT facility_id, name, category FROM {DATASET} ORDER BY 1", as_of=as_of).rows


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """Elderly care published twice with a known change between, then rolled back to the first version."""
    from twinhub.hub.home import Hub

    root = tmp_path_factory.mktemp("versions")
    hub = Hub.open(root / "home")
    manifest = copy_sample(root / "source", "civil_affairs/elderly_care.yaml")
    csv = manifest.parent / "elderly_care.csv"
    register(hub, manifest)
    first = ingest(hub, lookup(hub, DATASET), run_id="v1")
    between = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.05)
    lines = csv.read_text(encoding="gbk").splitlines()
    edited = [line for line in lines if not line.startswith("MZ-0002,")]  # deleted: a quarantined row goes too
    edited = [line.replace(",养老院,普陀区", ",日间照料中心,普陀区") if line.startswith("MZ-0004,") else line
              for line in edited]  # relabelled: elderly_care_home -1, day_care_centre +1
    edited.append(lines[4].replace("MZ-0004", "MZ-0100"))  # added: one more elderly_care_home
    csv.write_text("\n".join(edited) + "\n", encoding="gbk")
    second = ingest(hub, lookup(hub, DATASET), run_id="v2")
    before_rollback = _rows(hub)
    rolled = rollback(hub.lake, DATASET, first.snapshot_id, "rb", reason="v2 was wrong")
    return {"hub": hub, "first": first, "second": second, "between": between, "rolled": rolled,
            "before_rollback": before_rollback}


def test_release_notes_describe_the_known_change(versions):
    info = dataset_info(versions["hub"].lake, DATASET)
    notes = {v["run_id"]: v["release_notes"] for v in info["versions"]}
    first, second = notes["v1"], notes["v2"]
    assert first["first"] and first["summary"].startswith("first version: 18 rows published, 6 quarantined")
    assert second["rows"] == {"before": 18, "after": 18, "change": 0}
    assert second["changes"] == {"added": 1, "updated": 1, "unchanged": 16, "deleted": 1}
    # MZ-0002 (a home) deleted, MZ-0004 relabelled home -> day care, MZ-0100 (a home) added
    assert second["labels"]["category"] == {"day_care_centre": [1, 2], "elderly_care_home": [17, 16]}
    assert second["schema"] == {"added": [], "removed": [], "retyped": []}
    assert not second["extent"]["changed"] or second["extent"]["before"] != second["extent"]["after"]
    assert second["summary"] == ("rows 18 (same count); added 1, updated 1, deleted 1; "
                                 "category: day_care_centre +1, elderly_care_home -1; district: 普陀区 +1, 长宁区 -1")


def test_label_and_validation_changes_are_exact(versions):
    hub = versions["hub"]
    v1 = run_query(hub.lake, f"SELECT category, count(*) FROM {DATASET} GROUP BY 1",
                   as_of=versions["first"].snapshot_id).rows
    v2 = run_query(hub.lake, f"SELECT category, count(*) FROM {DATASET} GROUP BY 1",
                   as_of=versions["second"].snapshot_id).rows
    expected = {c: [dict(v1).get(c, 0), dict(v2).get(c, 0)] for c in set(dict(v1)) | set(dict(v2))
                if dict(v1).get(c, 0) != dict(v2).get(c, 0)}
    notes = dataset_info(hub.lake, DATASET)["versions"]
    second = next(v for v in notes if v["run_id"] == "v2")["release_notes"]
    assert second["labels"]["category"] == expected and expected  # computed from the data, both ways
    q1 = run_query(hub.lake, "SELECT checks FROM catalog.quarantine WHERE dataset = ? ".replace("?", f"'{DATASET}'"),
                   as_of=versions["first"].snapshot_id).rows
    q2 = run_query(hub.lake, f"SELECT checks FROM catalog.quarantine WHERE dataset = '{DATASET}'",
                   as_of=versions["second"].snapshot_id).rows
    count = lambda rows, c: sum(c in r[0].split(",") for r in rows)  # noqa: E731
    checks = {c for r in q1 + q2 for c in r[0].split(",")}
    assert second["quarantine"] == {c: [count(q1, c), count(q2, c)] for c in sorted(checks)
                                    if count(q1, c) != count(q2, c)}


@pytest.mark.parametrize("as_of, expected", [("first", "v1"), ("second", "v2")])
def test_time_travel_by_version_reads_every_table_as_it_was(versions, as_of, expected):
    hub, version = versions["hub"], versions[as_of].snapshot_id
    rows = _rows(hub, as_of=version)
    ids = {r[0] for r in rows}
    assert ("MZ-0100" in ids) == (expected == "v2")
    runs = run_query(hub.lake, f"SELECT run_id FROM catalog.runs WHERE dataset = '{DATASET}' ORDER BY finished_at",
                     as_of=version).rows
    assert runs[-1][0] == expected  # catalog.* tables travel too


def test_time_travel_by_time(versions):
    hub = versions["hub"]
    assert _rows(hub, as_of=versions["between"]) == _rows(hub, as_of=versions["first"].snapshot_id)
    with pytest.raises(UnknownVersion, match="did not exist yet"):
        _rows(hub, as_of=dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))
    with pytest.raises(UnknownVersion, match="no version 99999"):
        _rows(hub, as_of=99999)


@pytest.mark.parametrize("text, expected", [
    ("7", 7), (" 12 ", 12), ("2026-05-01T08:00:00+08:00", dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)),
    ("2026-05-01", dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)),
])
def test_parse_as_of(text, expected):
    assert parse_as_of(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "v3", "1; DROP TABLE x", ""])
def test_parse_as_of_refuses_anything_else(text):
    with pytest.raises(UnknownVersion, match="neither a version nor a time"):
        parse_as_of(text)


def test_rollback_serves_the_old_rows_as_a_new_version_and_keeps_history(versions):
    hub, first, second, rolled = versions["hub"], versions["first"], versions["second"], versions["rolled"]
    assert rolled.version > second.snapshot_id and rolled.restored == first.snapshot_id
    assert _rows(hub) == _rows(hub, as_of=first.snapshot_id) != versions["before_rollback"]
    history = dataset_info(hub.lake, DATASET)["versions"]
    assert [(v["run_id"], v["status"]) for v in history] == [("rb", "rollback"), ("v2", "published"),
                                                             ("v1", "published")]
    assert history[0]["details"]["rollback_to_version"] == first.snapshot_id
    assert history[0]["details"]["rollback_to_number"] == 1
    assert history[0]["details"]["reason"] == "v2 was wrong"
    assert _rows(hub, as_of=second.snapshot_id) == versions["before_rollback"]  # history is not rewritten


def test_rollback_restores_the_quarantine_of_that_version(versions):
    hub = versions["hub"]
    held = sorted(r["source_row"] for r in quarantine_rows(hub.lake, DATASET))
    old = run_query(hub.lake, f"SELECT source_row FROM catalog.quarantine WHERE dataset = '{DATASET}' ORDER BY 1",
                    as_of=versions["first"].snapshot_id).rows
    assert held == [r[0] for r in old] and len(held) == versions["first"].rows_quarantined
    latest = dataset_info(hub.lake, DATASET)["versions"][0]
    assert latest["rows_published"] + latest["rows_quarantined"] == latest["rows_read"]
    assert latest["release_notes"]["summary"].startswith(f"rollback to v1 (snapshot {versions['first'].snapshot_id})")


@pytest.mark.parametrize("target, message", [("current", "v3 .* serves now"),
                                             (123456, "has no version at catalog snapshot 123456; its versions: v1")])
def test_rollback_refuses_the_current_or_an_unknown_version(versions, target, message):
    hub = versions["hub"]
    version = versions["rolled"].version if target == "current" else target
    with pytest.raises(UnknownVersion, match=message):
        rollback(hub.lake, DATASET, version, "never")
    assert dataset_info(hub.lake, DATASET)["versions"][0]["run_id"] == "rb"


def test_each_version_has_a_map_preview(versions):
    hub = versions["hub"]
    for v in dataset_info(hub.lake, DATASET)["versions"]:
        path = preview_path(hub.lake, DATASET, v["version"])
        assert v["preview"] == str(path) and path.is_file()
        with Image.open(path) as image:
            assert image.format == "PNG" and max(image.size) <= 520
            colours = {c for _, c in image.getcolors(maxcolors=100_000)}
            assert (0x1F, 0x5F, 0xA8) in colours  # features were drawn


def test_preview_path_refuses_odd_names(versions):
    with pytest.raises(ValueError):
        preview_path(versions["hub"].lake, "../etc.passwd", 1)


def test_versions_are_numbered_per_dataset_in_publish_order_beside_their_snapshot(versions):
    """v1, v2, v3 (the rollback) whatever the catalog-wide snapshot ids, which keep growing."""
    hub, first, second, rolled = versions["hub"], versions["first"], versions["second"], versions["rolled"]
    history = dataset_info(hub.lake, DATASET)["versions"]
    assert [(v["run_id"], v["number"], v["snapshot"]) for v in history] == [
        ("rb", 3, rolled.version), ("v2", 2, second.snapshot_id), ("v1", 1, first.snapshot_id)]
    assert (rolled.number, rolled.restored_number) == (3, 1)
    assert rolled.label == f"v3 (snapshot {rolled.version})"
    con = hub.lake.connect(read_only=True)
    try:
        assert find_version(con, DATASET, number=2)["version"] == second.snapshot_id
        assert find_version(con, DATASET, snapshot=first.snapshot_id)["number"] == 1
        with pytest.raises(UnknownVersion, match=f"no version v9; its versions: v1 \\(snapshot {first.snapshot_id}\\)"):
            find_version(con, DATASET, number=9)
    finally:
        con.close()


@pytest.mark.parametrize("text, expected", [("v3", 3), ("V12", 12), (" v1 ", 1)])
def test_parse_version(text, expected):
    assert parse_version(text) == expected


@pytest.mark.parametrize("text, error, message", [
    ("3", AmbiguousVersion, "write v3 .* or --snapshot 3"), ("v", UnknownVersion, "not a version"),
    ("v3; DROP TABLE x", UnknownVersion, "not a version"), ("", UnknownVersion, "not a version")])
def test_parse_version_refuses_bare_numbers_and_anything_else(text, error, message):
    with pytest.raises(error, match=message):
        parse_version(text)


def test_a_purged_version_keeps_the_others_numbers(tmp_path):
    """Numbers come from the runs, not from the snapshots left: purging v2 does not make v3 the new v2."""
    from twinhub.catalog.versions import dataset_versions, purge
    from twinhub.hub.home import Hub

    hub = Hub.open(tmp_path / "home")
    register(hub, copy_sample(tmp_path / "source", "civil_affairs/elderly_care.yaml"))
    snapshots = [ingest(hub, lookup(hub, DATASET), run_id=f"r{i}", force=True).snapshot_id for i in (1, 2, 3)]
    purge(hub.lake, DATASET, snapshots[1], reason="v2 leaked")
    con = hub.lake.connect(read_only=True)
    try:
        assert [(v["number"], v["version"]) for v in dataset_versions(con, DATASET)] == [
            (3, snapshots[2]), (1, snapshots[0])]
        with pytest.raises(UnknownVersion, match=f"no version v2; its versions: v1 \\(snapshot {snapshots[0]}\\), v3"):
            find_version(con, DATASET, number=2)
    finally:
        con.close()
    assert [v["number"] for v in dataset_info(hub.lake, DATASET)["versions"]] == [3, 2, 1]  # the run stays listed
