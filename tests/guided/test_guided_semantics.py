"""Guided registration judges columns by their values (issue 16 item 6).

A 2017-style district shapefile and a POI export (tests/guided/synthetic.py, answers known), and the
NYC borough boundaries (shared/data/realworld/us_nyc_borough_boundaries: NYC Department of City
Planning via geopandas, BSD-3-Clause; see its SOURCE.txt), whose Shape_Area is in square US feet.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from twinhub.cli.main import main
from twinhub.guided.guide import propose
from twinhub.guided.profile import profile_column
from twinhub.guided.semantics import Hierarchy, constant, hierarchy, id_like, initials, name_like

from .conftest import city_hub
from .synthetic import district_shapefile, poi_csv

NYC = "us_nyc_borough_boundaries/nybb_16a.zip"


def _cli(hub, *args: str):
    return CliRunner().invoke(main, ["--home", str(hub.home), *args], catch_exceptions=False)


def _col(name: str, values: list) -> object:
    return profile_column(name, pd.Series(values))


@pytest.mark.parametrize("column, expected", [
    (_col("NAME", ["HP", "XH", "JA", "CN", "PT"]), {"initials"}),
    (_col("adname", ["黄浦区", "徐汇区", "静安区"]), {"name_like"}),
    (_col("NAME", ["Staten Island", "Queens", "Brooklyn Heights"]), {"name_like"}),
    (_col("地址", ["漕溪北路100号", "淮海中路101号", "长寿路102号"]), set()),  # addresses are not names
    (_col("Id", [0, 0, 0, 0]), {"constant"}),
    (_col("编号", ["A1", "A2", "A3"]), {"id_like", "initials"}),
    (_col("OBJECTID", [1, 2, 3]), {"id_like"}),
    (_col("category", ["SH", "SH", "BJ"]), {"initials"}),
    (_col("Id", [1, 2, 2]), set()),  # repeats: no id
])
def test_what_a_column_looks_like(column, expected):
    found = {name for name, check in [("initials", initials), ("name_like", name_like), ("constant", constant),
                                      ("id_like", id_like)] if check(column)}
    assert found == expected


@pytest.mark.parametrize("values, expected", [
    (["医疗保健服务;综合医院;三级甲等医院", "医疗保健服务;诊所;诊所", "购物服务;便利店;便利店"], Hierarchy(";", 3, None)),
    (["餐饮服务;中餐厅;中餐厅|购物服务;便利店;便利店", "餐饮服务;中餐厅;中餐厅", "购物服务;便利店;便利店"], Hierarchy(";", 3, "|")),
    (["bus|metro", "bus", "ferry|bus", "metro"], Hierarchy(None, 1, "|")),
    (["71-E;71-W", "71-E", "927;71-E"], Hierarchy(None, 1, ";")),
    (["公交,地铁", "公交", "地铁,轮渡", "公交"], Hierarchy(None, 1, ",")),
    (["10 Downing St, London", "1 Acacia Ave, Leeds", "2 Mill Rd, York"], None),  # addresses: no list, no levels
    (["https://x.org/a/b.jpg", "https://x.org/a/c.jpg"], None),  # URLs are no paths of categories
    (["2017/03/04", "2018/01/02"], None),
    (["Public toilets", "Public toilets"], None),
])
def test_lists_and_hierarchies(values, expected):
    assert hierarchy(_col("c", values)) == expected


@pytest.mark.parametrize("name_column", ["adname", "区县名称"])
def test_a_2017_district_shapefile_is_understood(hub, tmp_path, name_column):
    """Initials in NAME, Shape_Area in square degrees, an Id of zeros: none of them is taken for what it is not."""
    path, truth = district_shapefile(tmp_path / "src", name_column)
    proposal = propose(hub, str(path), "planning")
    assert proposal.manifest["standard"] == "admin_area"
    assert proposal.manifest["fields"] == {"area_code": name_column, "name": name_column,
                                           "level": {"constant": "county"}, "area_km2": "面积"}
    profile = proposal.profile
    assert profile.encoding in ("GB18030", "GBK", "gb18030", "gbk")
    assert profile.areas["Shape_Area"].unit == "deg2" and profile.areas["面积"].unit == "km2"
    assert abs(profile.areas["面积"].ratio - 1) < 0.01 and abs(profile.areas["Shape_Area"].ratio - 1) < 1e-6
    assert "the same value (0) in every row" in profile.looks["Id"]
    assert "romanised initials" in profile.looks["NAME"]
    why = {m.field: m.why for m in proposal.scores[0].mappings}
    assert "values look like km²: median ratio to the true area 1.00 over 8 polygons" in why["area_km2"]
    assert "its values look like names" in why["name"]
    assert "every area_code value is a county-level division (8 of them" in why["level"]
    assert "unique over 8 rows" in why["area_code"]
    (draft,) = proposal.drafts
    assert {e.value: e.code for e in draft.entries} == dict(zip(truth["name"], [
        "310101", "310104", "310105", "310106", "310107", "310109", "310110", "310112"]))


def test_square_degrees_alone_are_refused_and_metres_converted(hub, tmp_path):
    """Only Shape_Area (degrees): no area. A column in m²: an expression converting it to km²."""
    import geopandas as gpd

    from .synthetic import district_frame

    boxes, truth = district_frame()
    folder = tmp_path / "src"
    folder.mkdir()
    gpd.GeoDataFrame({"adname": truth["name"], "Shape_Area": truth["deg2"]}, geometry=boxes,
                     crs="EPSG:4326").to_file(folder / "deg.shp", encoding="UTF-8", engine="pyogrio")
    degrees = propose(hub, str(folder / "deg.shp"), "planning")
    assert "area_km2" not in degrees.manifest["fields"]
    area = next(m for m in degrees.scores[0].mappings if m.field == "area_km2")
    assert area.column is None  # Shape_Area was judged and refused
    shape = next(f for f in degrees.scores[0].mappings if f.field == "area_km2")
    assert shape.why == "no column fits"
    gpd.GeoDataFrame({"adname": truth["name"], "AREA": (truth["km2"] * 1e6).round(0)}, geometry=boxes,
                     crs="EPSG:4326").to_file(folder / "m2.shp", encoding="UTF-8", engine="pyogrio")
    metres = propose(hub, str(folder / "m2.shp"), "planning")
    assert metres.manifest["fields"]["area_km2"] == {"expression": 'TRY_CAST("AREA" AS DOUBLE) * 1e-06'}
    area = next(m for m in metres.scores[0].mappings if m.field == "area_km2")
    assert "values look like m²" in area.why and "converted to km² (x 1e-06)" in area.why
    from twinhub.guided.judge import Judged, judge_area
    from twinhub.standards.pack import load_pack

    building = load_pack().standard("building")  # a column equal to the footprint is no floor area
    floor = next(f for f in building.fields if f.name == "floor_area_m2")
    judged = Judged(0.9, [])
    judge_area(floor, metres.profile.columns[1], metres.profile.areas["AREA"], judged)
    assert judged.score == 0.45 and "the polygons' own area, not a Gross floor area" in judged.why[0]


def test_nyc_borough_areas_are_square_feet(realworld, tmp_path):
    """The real NYC boroughs (EPSG:2263, US feet): Shape_Area matches the true areas as ft², ratio 1.00."""
    hub = city_hub(tmp_path, "nyc")
    proposal = propose(hub, str(realworld / NYC), "planning", standard="admin_area")
    found = proposal.profile.areas["Shape_Area"]
    assert found.unit == "ft2" and abs(found.ratio - 1) < 0.005 and found.rows == 5
    assert proposal.manifest["fields"]["area_km2"] == {"expression": 'TRY_CAST("Shape_Area" AS DOUBLE) * 9.290341161327482e-08'}
    assert proposal.manifest["fields"]["name"] == "BoroName"
    assert "Shape_Leng" not in proposal.profile.areas or proposal.profile.areas["Shape_Leng"].unit is None


def test_a_poi_export_gets_a_derived_key_and_its_category_level(hub, tmp_path):
    path, frame = poi_csv(tmp_path / "src")
    proposal = propose(hub, str(path), "health", crs="GCJ-02")
    fields = proposal.manifest["fields"]
    assert proposal.manifest["standard"] == "facility"
    assert fields == {"facility_id": {"key": ["名称", "地址"]}, "name": "名称", "address": "地址", "district": "区县",
                      "category": {"column": "类型", "split": "|", "separator": ";", "level": 2}}
    assert proposal.manifest["vocabularies"] == {"district": "admin_division"}
    why = {m.field: m.why for m in proposal.scores[0].mappings}
    assert why["facility_id"].startswith(f"no column is unique; 名称 + 地址 are unique together over {len(frame)} rows")
    assert f"名称 alone repeats in {int(frame['名称'].duplicated(keep=False).sum())} rows" in why["facility_id"]
    assert "level 2 maps best to facility_category" in why["category"]
    assert "100% of its values are districts of admin_division" in why["district"]
    (draft,) = proposal.drafts
    assert {e.value for e in draft.entries} == {"综合医院", "诊所", "专科医院", "便利店"}  # level 2 of every item
    assert {e.value: e.rows for e in draft.entries}["诊所"] == 15


def test_an_id_column_is_taken_and_a_constant_one_is_not(hub, tmp_path):
    path, frame = poi_csv(tmp_path / "src")
    with_ids = frame.assign(编号=[f"P{i:03d}" for i in range(len(frame))], Id=0)
    with_ids.to_csv(tmp_path / "ids.csv", index=False)
    proposal = propose(hub, str(tmp_path / "ids.csv"), "health", crs="GCJ-02")
    assert proposal.manifest["fields"]["facility_id"] == "编号"
    id_mapping = next(m for m in proposal.scores[0].mappings if m.field == "facility_id")
    assert f"unique over {len(frame)} rows" in id_mapping.why
    frame.assign(Id=0).to_csv(tmp_path / "zeros.csv", index=False)
    zeros = propose(hub, str(tmp_path / "zeros.csv"), "health", crs="GCJ-02")
    assert zeros.manifest["fields"]["facility_id"] == {"key": ["名称", "地址"]}
    assert "same value (0) in every row" in zeros.profile.looks["Id"]


def test_the_written_manifest_carries_the_proposals_and_their_evidence(hub, tmp_path):
    """Through the CLI as a department would: the manifest file reads back with the derived mappings."""
    path, _ = district_shapefile(tmp_path / "src", "adname")
    out = tmp_path / "dept" / "districts.yaml"
    result = _cli(hub, "register", str(path), "--department", "planning", "--dataset", "districts", "--out", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    manifest = yaml.safe_load(text)
    assert manifest["fields"]["level"] == {"constant": "county"} and manifest["fields"]["name"] == "adname"
    assert "values look like km²: median ratio to the true area 1.00" in text
    assert "romanised initials or codes (HP, XH, CN), not names" in result.output
    poi, _ = poi_csv(tmp_path / "src")
    shown = _cli(hub, "register", str(poi), "--department", "health", "--crs", "GCJ-02", "--format", "json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["manifest"]["fields"]["category"] == {"column": "类型", "split": "|", "separator": ";", "level": 2}
    assert data["profile"]["looks"]["类型"] == "lists joined by '|' of 3-level categories joined by ';'"


@pytest.mark.slow
def test_the_guided_manifests_run_end_to_end(tmp_path):
    """Registered with --yes (the district layer) and after filling the draft (the POIs), both publish what the
    proposals derived: the division codes, names, level and areas; the POIs' derived keys and level-2 categories."""
    from twinhub.catalog.query import run_query
    from twinhub.hub.home import Hub
    from twinhub.hub.ingest import ingest
    from twinhub.hub.registry import lookup

    hub = Hub.open(tmp_path / "home")
    (hub.home / "twinhub.yaml").write_text(yaml.safe_dump({"landing": {d: [str(tmp_path)] for d in ("planning", "health")}}),
                                           encoding="utf-8")
    hub = Hub.open(hub.home)
    shp, truth = district_shapefile(tmp_path / "src", "区县名称")
    done = _cli(hub, "register", str(shp), "--department", "planning", "--dataset", "districts", "--yes")
    assert done.exit_code == 0, done.output
    run = ingest(hub, lookup(hub, "planning.districts"), run_id="r1")
    assert (run.rows_read, run.rows_published, run.rows_quarantined) == (8, 8, 0)
    rows = run_query(hub.lake, "SELECT area_code, name, level, area_km2 FROM planning.districts ORDER BY 1").rows
    assert [r[:3] for r in rows][:2] == [("310101", "黄浦区", "county"), ("310104", "徐汇区", "county")]
    published = {r[1]: r[3] for r in rows}
    for name, km2 in zip(truth["name"], truth["km2"]):
        assert abs(published[name] / km2 - 1) < 0.011  # 面积, within the 1% the generator measured it to

    poi, frame = poi_csv(tmp_path / "src")
    out = tmp_path / "dept" / "clinics.yaml"
    wrote = _cli(hub, "register", str(poi), "--department", "health", "--dataset", "clinics", "--crs", "GCJ-02",
                 "--out", str(out))
    assert wrote.exit_code == 0, wrote.output
    draft = out.parent / "health.clinics.category.yaml"
    draft.write_text(draft.read_text(encoding="utf-8").replace('"综合医院", code: "?"', '"综合医院", code: "hospital"')
                     .replace('"专科医院", code: "?"', '"专科医院", code: "hospital"'), encoding="utf-8")
    registered = _cli(hub, "register", str(out), "--yes")
    assert registered.exit_code == 0, registered.output
    run = ingest(Hub.open(hub.home), lookup(hub, "health.clinics"), run_id="r1")
    assert (run.rows_read, run.rows_published, run.rows_quarantined) == (len(frame), len(frame), 0)
    rows = run_query(hub.lake, "SELECT facility_id, name, category, district FROM health.clinics").rows
    assert len({r[0] for r in rows}) == len(frame) and all(len(r[0]) == 16 for r in rows)  # one key per POI
    assert {r[2] for r in rows} == {"hospital", "clinic"}
    counts = {c: sum(r[2] == c for r in rows) for c in ("hospital", "clinic")}
    assert counts == {"hospital": 24, "clinic": 15}  # 综合医院 20 + 专科医院 4; 诊所 12 + 3 listed first
    again = ingest(Hub.open(hub.home), lookup(hub, "health.clinics"), run_id="r2", force=True)
    assert again.rows_published == len(frame)
    assert {r[0] for r in run_query(hub.lake, "SELECT facility_id FROM health.clinics").rows} == {r[0] for r in rows}
