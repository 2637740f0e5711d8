"""Cross-department assets: the unified city layer and a derived SQL dataset, in the catalog and the lineage."""

from __future__ import annotations

import dagster as dg
import pytest
from pyproj import Geod

from twinhub.catalog.query import run_query
from twinhub.hub.layers import LayerError, derived_datasets
from twinhub.pipelines.factory import build_definitions

GEOD = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def defs(demo_hub) -> dg.Definitions:
    return build_definitions(demo_hub)


def test_the_city_layer_holds_every_departments_facilities(demo_hub):
    layer = dict(run_query(demo_hub.lake, "SELECT department, count(*) FROM city.facility GROUP BY 1").rows)
    for dataset in ("civil_affairs.elderly_care", "emergency.shelters", "health.health_centres",
                    "water.pumping_stations"):
        published = run_query(demo_hub.lake, f"SELECT count(*) FROM {dataset}").rows[0][0]
        assert layer[dataset.split(".")[0]] == published


def test_the_city_layer_has_column_lineage_to_each_department(defs):
    spec = next(s for s in defs.resolve_all_asset_specs() if s.key == dg.AssetKey(["city", "facility"]))
    assert spec.group_name == "city"
    lineage = spec.metadata["dagster/column_lineage"].deps_by_column
    assert {d.asset_key.to_user_string() for d in lineage["category"]} == {
        "civil_affairs/elderly_care", "emergency/shelters", "health/health_centres", "water/pumping_stations"}
    assert {d.column_name for d in lineage["geometry"]} == {"geometry"}


def test_a_derived_sql_dataset_reads_its_inputs_and_sits_downstream_of_them(defs, demo_hub, truth):
    spec = next(s for s in defs.resolve_all_asset_specs()
                if s.key == dg.AssetKey(["derived", "care_homes_near_shelters"]))
    assert {d.asset_key.to_user_string() for d in spec.deps} == {"civil_affairs/elderly_care", "emergency/shelters"}
    assert spec.tags["classification"] == "internal"  # the higher of internal (care homes) and public (shelters)

    rows = run_query(demo_hub.lake, "SELECT care_home_id, shelter_id FROM derived.care_homes_near_shelters").rows
    homes = {t["id"]: (float(t["lon"]), float(t["lat"])) for t in truth
             if t["dataset"] == "civil_affairs.elderly_care" and t["expected"] == "published"}
    categories = dict(run_query(demo_hub.lake, "SELECT facility_id, category FROM civil_affairs.elderly_care").rows)
    shelters = {t["id"]: (float(t["lon"]), float(t["lat"])) for t in truth
                if t["dataset"] == "emergency.shelters" and t["expected"] == "published"}
    expected = {(h, s) for h, hp in homes.items() for s, sp in shelters.items()
                if categories[h] == "elderly_care_home" and GEOD.inv(*hp, *sp)[2] <= 500}
    assert expected and set(rows) == expected


def test_a_derived_dataset_must_be_a_guarded_select(hub):
    (hub.home / "derived").mkdir()
    (hub.home / "derived" / "bad.sql").write_text("DROP TABLE water.pumping_stations", encoding="utf-8")
    with pytest.raises(Exception, match="DROP"):
        derived_datasets(hub, {"water.pumping_stations"})
    (hub.home / "derived" / "bad.sql").unlink()
    (hub.home / "derived" / "Bad Name.sql").write_text("SELECT 1", encoding="utf-8")
    with pytest.raises(LayerError, match="lower-case"):
        derived_datasets(hub, set())


def _versions(hub) -> dict:
    """Every published table's (table id, last snapshot that changed it)."""
    con = hub.lake.connect(read_only=True)
    try:
        tables = hub.lake.tables(con, include_meta=False)
        return hub.lake.table_versions(con, tables)
    finally:
        con.close()


@pytest.mark.slow
def test_an_unchanged_run_rewrites_no_table(hub):
    from twinhub.cli.demo import prepare_demo
    from twinhub.pipelines.runner import run_datasets

    prepare_demo(hub)
    assert run_datasets(hub).ok
    before = _versions(hub)
    assert {"city.facility", "derived.care_homes_near_shelters"} <= set(before)
    assert run_datasets(hub).ok  # every source unchanged: only the runs are recorded
    assert _versions(hub) == before

    assert run_datasets(hub, ["water.pumping_stations"], force=True).ok  # a new version of one input
    after = _versions(hub)
    assert after["water.pumping_stations"] != before["water.pumping_stations"]
    assert after["city.facility"] != before["city.facility"]  # rebuilt from it
    assert after["emergency.shelters"] == before["emergency.shelters"]
    # the derived dataset reads care homes and shelters, not water: it stays as it was
    assert after["derived.care_homes_near_shelters"] == before["derived.care_homes_near_shelters"]
    layer = dict(run_query(hub.lake, "SELECT department, count(*) FROM city.facility GROUP BY 1").rows)
    assert layer["water"] == run_query(hub.lake, "SELECT count(*) FROM water.pumping_stations").rows[0][0]

    assert run_datasets(hub, ["emergency.shelters"], force=True).ok
    assert _versions(hub)["derived.care_homes_near_shelters"] != after["derived.care_homes_near_shelters"]
