"""The twinhub command line, on the sample city hub."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from twinhub import sample
from twinhub.cli.main import main


def twinhub(hub, *args: str, input: str | None = None):
    return CliRunner().invoke(main, ["--home", str(hub.home), *args], input=input, catch_exceptions=False)


def test_query_in_the_postgres_dialect_as_json(demo_hub):
    result = twinhub(demo_hub, "query", "--dialect", "postgres", "--format", "json",
                     "SELECT facility_id, ST_AsText(geometry) AS wkt FROM water.pumping_stations "
                     "WHERE facility_id = 'PS001'")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows[0]["facility_id"] == "PS001"
    assert rows[0]["wkt"].startswith("POINT (121.")


def test_query_as_csv_with_geometry_as_wkt(demo_hub):
    result = twinhub(demo_hub, "query", "--format", "csv",
                     "SELECT facility_id, geometry FROM emergency.shelters ORDER BY 1 LIMIT 2")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["facility_id"] for r in rows] == ["EM-002", "EM-004"]
    assert all(r["geometry"].startswith("POINT (") for r in rows)


def test_query_in_mysql_dialect_reads_sql_from_stdin(demo_hub):
    sql = "SELECT `category`, COUNT(*) AS n FROM health.health_centres GROUP BY `category` ORDER BY n DESC, 1"
    result = twinhub(demo_hub, "query", "--dialect", "mysql", "-", input=sql)
    assert result.exit_code == 0, result.output
    assert "health_centre" in result.output


@pytest.mark.parametrize("sql", ["DROP TABLE water.pumping_stations", "SELECT * FROM read_csv('/etc/passwd')",
                                 "SELECT 1; SELECT 2"])
def test_refused_query_exits_2_with_a_message_and_no_traceback(demo_hub, sql):
    result = twinhub(demo_hub, "query", sql)
    assert result.exit_code == 2
    assert result.output.startswith("error: ")
    assert "Traceback" not in result.output


def test_quarantine_as_json_gives_reasons_and_the_original_record(demo_hub):
    result = twinhub(demo_hub, "quarantine", "water.pumping_stations", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["source_row"]: r for r in json.loads(result.output)}
    assert rows[4]["reasons"][0]["check"] == "label_unmapped"
    assert rows[4]["record"]["STN_TYPE"] == "排涝闸站"  # GBK DBF read through its .cpg


def test_quarantine_table_summarises_reasons(demo_hub):
    result = twinhub(demo_hub, "quarantine", "civil_affairs.elderly_care")
    assert result.exit_code == 0, result.output
    assert "6 rows quarantined: duplicate_key 2" in result.output


def test_catalog_show_lists_columns_and_versions(demo_hub):
    result = twinhub(demo_hub, "catalog", "show", "health.health_centres", "--format", "json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert [c["name"] for c in info["columns"]] == ["facility_id", "name", "category", "district", "address",
                                                     "capacity", "geometry"]
    latest = info["versions"][0]
    assert latest["version"] is not None and latest["source_crs"] == "BD-09"
    minx, miny, maxx, maxy = latest["extent"]
    assert 121 < minx < maxx < 122 and 31 < miny < maxy < 32


def test_catalog_show_of_an_unknown_dataset(demo_hub):
    result = twinhub(demo_hub, "catalog", "show", "water.nothing")
    assert result.exit_code == 2
    assert "water.pumping_stations" in result.output  # lists what exists


def test_datasets_lists_the_registry_with_last_runs(demo_hub):
    result = twinhub(demo_hub, "datasets", "--format", "json")
    rows = {r["dataset"]: r for r in json.loads(result.output)}
    assert set(rows) == {"civil_affairs.elderly_care", "emergency.shelters", "health.health_centres",
                         "water.pumping_stations"}
    assert rows["water.pumping_stations"]["published"] == 13
    assert rows["water.pumping_stations"]["last_run"] == "published"


def test_register_reports_every_problem_and_exits_2(hub, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("department: water\ndataset: x\ntitle: X\nstandard: facility\n"
                   "source: {format: csv, path: nowhere.csv}\nfields: {}\nfrequency: daily\n", encoding="utf-8")
    result = twinhub(hub, "register", str(bad))
    assert result.exit_code == 2
    assert "frequency: unknown key" in result.output
    assert "nothing was registered" in result.output


def test_run_needs_datasets_or_all(hub):
    result = CliRunner().invoke(main, ["--home", str(hub.home), "run"])
    assert result.exit_code == 2
    assert "--all" in result.output


def test_run_one_dataset_through_dagster(hub):
    assert twinhub(hub, "register", str(sample.CITY / "water" / "pumping_stations.yaml")).exit_code == 0
    result = twinhub(hub, "run", "water.pumping_stations")
    assert result.exit_code == 0, result.output
    assert "water.pumping_stations  published  18    13         5" in result.output
    assert "added 13, updated 0, deleted 0" in result.output
    again = twinhub(hub, "run", "water.pumping_stations")
    assert "water.pumping_stations  unchanged  18    13         5" in again.output


def test_run_of_an_unknown_dataset(hub):
    result = twinhub(hub, "run", "water.nothing")
    assert result.exit_code == 2
    assert "no registered dataset 'water.nothing'" in result.output


def test_run_failed_reruns_only_datasets_whose_last_run_failed(hub, tmp_path):
    import shutil

    for department, name, source in [("water", "pumping_stations", "pumping_stations.zip"),
                                      ("emergency", "shelters", "shelters.geojson")]:
        shutil.copy(sample.CITY / department / f"{name}.yaml", tmp_path)
        shutil.copy(sample.CITY / department / source, tmp_path)
        assert twinhub(hub, "register", str(tmp_path / f"{name}.yaml")).exit_code == 0
    (tmp_path / "shelters.geojson").write_text("{", encoding="utf-8")  # a broken export
    assert twinhub(hub, "run", "--all").exit_code == 1
    (tmp_path / "shelters.geojson").write_bytes((sample.CITY / "emergency" / "shelters.geojson").read_bytes())
    result = twinhub(hub, "run", "--failed")
    assert result.exit_code == 0, result.output
    assert "emergency.shelters  published" in result.output
    assert "water.pumping_stations" not in result.output
    assert twinhub(hub, "run", "--failed").output.strip() == "no dataset's last run failed"
