"""The catalog's commands through the twinhub CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from twinhub.cli.main import main
from twinhub.hub.ingest import ingest
from twinhub.hub.registry import lookup

from .conftest import publish_sample


def twinhub(hub, *args: str):
    return CliRunner().invoke(main, ["--home", str(hub.home), *args], catch_exceptions=False)


def test_catalog_show_lists_versions_with_release_notes_and_previews(city):
    result = twinhub(city, "catalog", "show", "water.pumping_stations")
    assert result.exit_code == 0, result.output
    assert "release notes:" in result.output
    assert "first version: 13 rows published, 5 quarantined" in result.output
    assert "map preview: " in result.output and ".png" in result.output
    info = json.loads(twinhub(city, "catalog", "show", "water.pumping_stations", "--format", "json").output)
    latest = info["versions"][0]
    assert latest["changes"] == {"added": 13, "updated": 0, "unchanged": 0, "deleted": 0}
    assert latest["standard_version"] and latest["source_fingerprint"].startswith("sha256:")
    assert latest["preview"].endswith(f"v{latest['version']}.png")


@pytest.mark.parametrize("args, first", [
    (["养老院"], "civil_affairs.elderly_care"),
    (["pumping"], "water.pumping_stations"),
    (["--published-by", "emergency"], "emergency.shelters"),
])
def test_catalog_search(city, args, first):
    result = twinhub(city, "catalog", "search", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["dataset"] == first


def test_catalog_search_rejects_a_bad_bbox(city):
    result = twinhub(city, "catalog", "search", "--bbox", "1,2,3")
    assert result.exit_code == 2 and "minx,miny,maxx,maxy" in result.output


def test_catalog_near_as_json(city):
    result = twinhub(city, "catalog", "near", "121.47", "31.23", "--radius", "3000", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows and all(r["distance_m"] <= 3000 for r in rows)
    assert rows == sorted(rows, key=lambda r: r["distance_m"])


def test_catalog_near_refuses_a_bad_radius(city):
    result = twinhub(city, "catalog", "near", "121.47", "31.23", "--radius", "0")
    assert result.exit_code == 2 and result.output.startswith("error: --radius")


def test_query_row_limit_is_reported(city):
    result = twinhub(city, "query", "--max-rows", "2", "--format", "csv", "SELECT facility_id FROM water.pumping_stations")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["facility_id", "PS001", "PS003"]  # header + 2 rows
    assert "only the first 2 rows are shown" in result.stderr


@pytest.mark.parametrize("as_of, message", [("yesterday", "neither a version nor a time"),
                                            ("999999", "has no version 999999")])
def test_query_as_of_errors(city, as_of, message):
    result = twinhub(city, "query", "--as-of", as_of, "SELECT 1")
    assert result.exit_code == 2 and message in result.output


def test_export_asks_for_force(city, tmp_path):
    target = tmp_path / "water.geojson"
    first = twinhub(city, "export", "water.pumping_stations", "--file-format", "geojson", "--out", str(target))
    assert first.exit_code == 0 and "wrote 13 rows" in first.output
    again = twinhub(city, "export", "water.pumping_stations", "--file-format", "geojson", "--out", str(target))
    assert again.exit_code == 2 and "use --force" in again.output
    forced = twinhub(city, "export", "water.pumping_stations", "--file-format", "geojson", "--out", str(target), "--force")
    assert forced.exit_code == 0


def test_export_catalog_and_report(city, tmp_path):
    result = twinhub(city, "export-catalog", "--metadata-format", "stac", "--out", str(tmp_path / "stac"))
    assert result.exit_code == 0 and (tmp_path / "stac" / "catalog.json").is_file()
    report = twinhub(city, "report", "--no-save", "--format", "json")
    figures = json.loads(report.output)
    assert {d["dataset"] for d in figures["datasets"]} == {
        "water.pumping_stations", "emergency.shelters", "civil_affairs.elderly_care"}
    assert {d["department"] for d in figures["departments"]} == {"water", "emergency", "civil_affairs"}


def test_rollback_through_the_cli(hub):
    first = publish_sample(hub, "emergency/shelters.yaml", run_id="s1")
    ingest(hub, lookup(hub, "emergency.shelters"), run_id="s2", force=True)
    result = twinhub(hub, "rollback", "emergency.shelters", "v1", "--reason", "bad import")
    assert result.exit_code == 0, result.output
    assert f"serves the rows of v1 (snapshot {first.snapshot_id})" in result.output
    shown = json.loads(twinhub(hub, "catalog", "show", "emergency.shelters", "--format", "json").output)
    assert [(v["status"], v["number"]) for v in shown["versions"]] == [("rollback", 3), ("published", 2),
                                                                     ("published", 1)]
    by_snapshot = twinhub(hub, "rollback", "emergency.shelters", "--snapshot", str(shown["versions"][1]["snapshot"]))
    assert by_snapshot.exit_code == 0 and "v4 (snapshot" in by_snapshot.output and "the rows of v2" in by_snapshot.output
    again = twinhub(hub, "rollback", "emergency.shelters", "--to", "v42")
    assert again.exit_code == 2 and "has no version v42; its versions: v1" in again.output
    old_script = twinhub(hub, "rollback", "emergency.shelters", "--to", str(first.snapshot_id))  # a bare snapshot id
    assert old_script.exit_code == 2 and f"--snapshot {first.snapshot_id}" in old_script.output
    assert [v["number"] for v in json.loads(twinhub(hub, "catalog", "show", "emergency.shelters", "--format",
                                                    "json").output)["versions"]] == [4, 3, 2, 1]  # refused: no v5
