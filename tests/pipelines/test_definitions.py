"""The Dagster definitions built from the registry: what the UI and schedules see."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import dagster as dg
import pytest

from twinhub import sample
from twinhub.catalog.info import dataset_info
from twinhub.hub.registration import register
from twinhub.hub.registry import registered
from twinhub.pipelines.factory import build_definitions
from twinhub.pipelines.runner import run_datasets

REPO = pathlib.Path(__file__).resolve().parents[2]
CARE = dg.AssetKey(["civil_affairs", "elderly_care"])
CARE_STAGED = dg.AssetKey(["civil_affairs", "elderly_care_staged"])


@pytest.fixture(scope="module")
def defs(demo_hub) -> dg.Definitions:
    return build_definitions(demo_hub)


def _spec(defs: dg.Definitions, key: dg.AssetKey) -> dg.AssetSpec:
    return next(s for s in defs.resolve_all_asset_specs() if s.key == key)


def test_one_group_per_department_with_a_staging_and_a_published_asset(defs):
    groups = {s.key.to_user_string(): s.group_name for s in defs.resolve_all_asset_specs()}
    assert groups == {
        f"{department}/{name}{suffix}": department
        for department, name in [("civil_affairs", "elderly_care"), ("emergency", "shelters"),
                                 ("health", "health_centres"), ("water", "pumping_stations")]
        for suffix in ("", "_staged")
    } | {"city/facility": "city", "derived/care_homes_near_shelters": "derived"}
    published = _spec(defs, CARE)
    assert {d.asset_key for d in published.deps} == {CARE_STAGED}


def test_catalog_metadata_is_set_at_definition_time(defs, demo_hub):
    spec = _spec(defs, CARE)
    assert spec.description.startswith("**Elderly care facilities**")
    assert spec.owners == ["team:civil_affairs", "data@civil-affairs.example.gov.cn"]
    assert spec.kinds == {"csv", "duckdb", "geoparquet"}
    assert spec.tags["standard"] == "facility" and spec.tags["classification"] == "internal"
    assert spec.tags["crs"] == "EPSG-4490"
    assert spec.metadata["dagster/table_name"] == "lake.civil_affairs.elderly_care"
    columns = {c.name: c for c in spec.metadata["dagster/column_schema"].columns}
    assert list(columns) == ["facility_id", "name", "category", "district", "address", "capacity", "geometry"]
    assert columns["facility_id"].constraints.unique and not columns["facility_id"].constraints.nullable
    assert any("facility_category" in o for o in columns["category"].constraints.other)
    assert columns["geometry"].type == "geometry"
    reference = spec.metadata["dagster/code_references"].code_references[0]
    assert reference.file_path.endswith("civil_affairs/elderly_care.yaml")


def test_the_audit_is_shown_as_asset_checks_on_the_stage(defs):
    checks = {(c.asset_key, c.name): c for a in defs.assets for c in a.check_specs}
    assert {name for key, name in checks if key == CARE_STAGED} == {
        "rows_accounted_for", "schema", "crs_and_geometry", "label_coverage", "row_count_drop", "completeness",
        "crs_offset"}
    assert all(checks[(CARE_STAGED, n)].blocking for n in ("schema", "crs_and_geometry", "row_count_drop"))
    assert not any(checks[(CARE_STAGED, n)].blocking for n in ("label_coverage", "completeness", "crs_offset"))  # warnings


def test_freshness_follows_the_manifest_cadence(defs):
    policy = _spec(defs, CARE).freshness_policy  # daily: late after a day, failing after a day and a half
    assert policy.warn_window.to_timedelta().total_seconds() == 24 * 3600
    assert policy.fail_window.to_timedelta().total_seconds() == 36 * 3600
    weekly = _spec(defs, dg.AssetKey(["water", "pumping_stations"])).freshness_policy
    assert weekly.warn_window.to_timedelta().days == 7


def test_a_schedule_per_manifest_cron_in_the_city_timezone(defs):
    schedules = {s.name: s for s in defs.schedules}
    care = schedules["at_0_2_x_x_x"]  # datasets sharing a cron share a schedule
    assert care.cron_schedule == "0 2 * * *"
    assert care.execution_timezone == "Asia/Shanghai"
    assert care.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedules["at_30_2_x_x_1"].cron_schedule == "30 2 * * 1"
    assert "civil_affairs.elderly_care" in care.description


def test_jobs_per_department_and_per_cron(defs):
    names = {j.name for j in defs.jobs}
    assert {"department_civil_affairs", "department_water", "at_30_2_x_x_1_job"} <= names
    assert len(defs.resolve_implicit_global_asset_job_def().asset_layer.selected_asset_keys) == 10  # everything
    assert defs.resolve_job_def("department_water").tags == {"twinhub/department": "water"}


def test_materialization_reports_counts_and_check_results(demo_hub):
    with dg.DagsterInstance.from_config(str(demo_hub.dagster_home)) as instance:
        event = instance.get_latest_materialization_event(CARE)
        meta = event.asset_materialization.metadata
        assert meta["dagster/row_count"].value == 18
        assert meta["map_preview"].value.startswith("![civil_affairs.elderly_care version ")
        assert "data:image/png;base64,iVBOR" in meta["map_preview"].value  # a PNG, embedded
        assert meta["labels_mapped_share"].value == pytest.approx(23 / 24)  # only 老年活动室 has no code
        assert 0 < meta["interoperability_score"].value <= 100
        assert meta["rows_read"].value == meta["rows_published"].value + meta["rows_quarantined"].value
        names = ["rows_accounted_for", "schema", "crs_and_geometry", "label_coverage", "row_count_drop"]
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(CARE_STAGED, n) for n in names]
        )
        evaluations = {k.name: r.evaluation for k, r in record.items()}
    assert all(e.passed for e in evaluations.values())
    schema = evaluations["schema"].metadata
    assert schema["rows_failing"].value == 3  # duplicate_key x2, type x1 of 24
    assert schema["by_check"].value == {"duplicate_key": 2, "type": 1}
    sample = evaluations["crs_and_geometry"].metadata["failing_rows_sample"].value
    assert {r["source_row"] for r in sample} == {9, 17}  # Beijing, and no coordinates


def test_dagster_cli_validates_the_code_location(demo_hub):
    env = dict(os.environ, TWINHUB_HOME=str(demo_hub.home), DAGSTER_HOME=str(demo_hub.dagster_home))
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _copy_sample(tmp_path, department: str, name: str, source: str, **changes) -> pathlib.Path:
    import yaml

    data = yaml.safe_load((sample.CITY / department / f"{name}.yaml").read_text(encoding="utf-8"))
    for key, value in changes.items():
        data["source"][key] = value
    (tmp_path / source).write_bytes((sample.CITY / department / source).read_bytes())
    manifest = tmp_path / f"{name}.yaml"
    manifest.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return manifest


def test_a_failing_blocking_check_stops_publication(hub, tmp_path):
    """A steward declares the wrong CRS: every point lands outside the city, so nothing is published."""
    manifest = _copy_sample(tmp_path, "emergency", "shelters", "shelters.geojson")
    register(hub, manifest)
    assert run_datasets(hub, ["emergency.shelters"]).ok
    served = dataset_info(hub.lake, "emergency.shelters")["versions"][0]

    register(hub, _copy_sample(tmp_path, "emergency", "shelters", "shelters.geojson", crs="EPSG:3857"))
    summary = run_datasets(hub, ["emergency.shelters"])
    assert not summary.ok
    assert "blocked by the audit (crs_and_geometry, row_count_drop)" in summary.outcomes[0].error
    versions = dataset_info(hub.lake, "emergency.shelters")["versions"]
    assert versions[0]["status"] == "blocked"
    published = [v for v in versions if v["status"] == "published"]
    assert published == [served]  # the served version is the one from before
    assert not any(hub.staging_dir.rglob("*.parquet"))


def test_a_broken_source_fails_fast_and_keeps_the_last_good_version(hub, tmp_path):
    manifest = tmp_path / "shelters.yaml"
    manifest.write_text((sample.CITY / "emergency" / "shelters.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    source = tmp_path / "shelters.geojson"
    source.write_bytes((sample.CITY / "emergency" / "shelters.geojson").read_bytes())
    register(hub, manifest)
    assert run_datasets(hub, ["emergency.shelters"]).ok
    source.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")  # cut off half-way
    summary = run_datasets(hub, ["emergency.shelters"])
    assert not summary.ok
    assert "shelters.geojson" in summary.outcomes[0].error
    latest = dataset_info(hub.lake, "emergency.shelters")["versions"]
    assert latest[0]["status"] == "published" or latest[1]["status"] == "published"
    assert [v["status"] for v in latest if v["status"] == "published"] == ["published"]


def _load_definitions(home: pathlib.Path) -> subprocess.CompletedProcess:
    """Import the code location as Dagster does (``-m twinhub.pipelines.definitions``), in a fresh process."""
    env = dict(os.environ, TWINHUB_HOME=str(home), DAGSTER_HOME=str(home / "dagster"))
    code = "import twinhub.pipelines.definitions as d; print(len(d.defs.resolve_all_asset_specs()))"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def _tree(folder: pathlib.Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_loading_the_code_location_without_a_home_creates_nothing(tmp_path):
    home = tmp_path / "no" / "such" / "home"
    result = _load_definitions(home)
    assert result.returncode != 0
    assert f"{home} is not a twinhub home: run `twinhub init --home {home}`" in result.stderr
    assert not (tmp_path / "no").exists()


def test_loading_the_code_location_of_a_hub_writes_nothing_in_it(hub, tmp_path):
    register(hub, _copy_sample(tmp_path, "emergency", "shelters", "shelters.geojson"))
    registered(hub)  # the registry's parse cache (registry/.index.json) is the one file a read may refresh
    before = _tree(hub.home)
    result = _load_definitions(hub.home)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) >= 2  # the dataset's stage and published asset, at least
    assert _tree(hub.home) == before
