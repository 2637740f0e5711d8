"""Conforming a chunk: every row comes out once, published or quarantined with all its reasons."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import shapely

from twinhub.standards.chinese_crs import wgs84_to_gcj02
from twinhub.standards.conform import SOURCE_ROW, Conformance, Conformer
from twinhub.standards.pack import load_pack

PACK = load_pack()


def _conformer(**kw) -> Conformer:
    return Conformer(
        Conformance(
            standard=PACK.standard("facility"),
            pack=PACK,
            fields={"facility_id": "编号", "name": "名称", "category": "类型", "capacity": "床位"},
            labels={"category": {"老人院": "elderly_care_home"}},
            source_crs="GCJ-02",
            target_crs="EPSG:4490",
            gate=PACK.city.gate(geographic=True),
            **kw,
        )
    )


def test_rows_are_mapped_typed_reprojected_or_quarantined():
    true_lon, true_lat = 121.47, 31.23
    glon, glat = wgs84_to_gcj02(true_lon, true_lat)
    chunk = pd.DataFrame(
        {
            "编号": ["A", "B", "C", "D"],
            "名称": ["甲", "乙", "", "丁"],
            "类型": ["老人院", "养老院", "养老院", "图书馆"],
            "床位": ["1,200", "x", "5", "7"],
        }
    )
    geometry = np.array([shapely.Point(glon, glat)] * 3 + [None], dtype=object)
    out = _conformer().conform(chunk, geometry, np.array([10, 11, 12, 13]))

    assert len(out.rows) + len(out.quarantine) == len(chunk)
    assert out.rows[SOURCE_ROW].tolist() == [10]
    row = out.rows.iloc[0]
    assert (row["facility_id"], row["category"], row["capacity"]) == ("A", "elderly_care_home", 1200)
    point = shapely.from_wkb(row["geometry"])
    assert abs(point.x - true_lon) < 1e-8 and abs(point.y - true_lat) < 1e-8

    reasons = {r[SOURCE_ROW]: json.loads(r["reasons"]) for _, r in out.quarantine.iterrows()}
    assert [(x["check"], x["source_column"], x["value"]) for x in reasons[11]] == [("type", "床位", "x")]
    assert [(x["check"], x["column"]) for x in reasons[12]] == [("required", "name")]
    assert {(x["check"], x["column"]) for x in reasons[13]} == {("label_unmapped", "category"), ("required", "geometry")}
    assert json.loads(out.quarantine.iloc[2]["record"])["类型"] == "图书馆"


def test_an_empty_chunk_gives_empty_outputs():
    out = _conformer().conform(pd.DataFrame({"编号": [], "名称": [], "类型": [], "床位": []}), np.array([]), np.array([]))
    assert out.rows.empty and out.quarantine.empty


# --------------------------------------------------------------------------- geometry repair, details

import pytest  # noqa: E402

from twinhub.standards.conform import run_warnings  # noqa: E402

BOWTIE = shapely.Polygon([(121.40, 31.20), (121.45, 31.25), (121.45, 31.20), (121.40, 31.25), (121.40, 31.20)])
SQUARE = shapely.box(121.40, 31.20, 121.41, 31.21)


def _buildings(repair: bool) -> Conformer:
    return Conformer(Conformance(
        standard=PACK.standard("building"), pack=PACK, fields={"building_id": "id", "use": "use", "year_built": "year"},
        source_crs="EPSG:4490", target_crs="EPSG:4490", gate=PACK.city.gate(geographic=True), repair_geometry=repair,
    ))


def _footprints():
    chunk = pd.DataFrame({"id": ["B1", "B2", "B3"], "use": ["住宅", "办公楼", "商住"], "year": ["1998", "2005", "2011"]})
    infinite = shapely.Polygon([(121.4, 31.2), (np.inf, 31.3), (121.5, 31.2), (121.4, 31.2)])
    geometry = np.array([SQUARE, BOWTIE, infinite], dtype=object)
    return chunk, geometry


@pytest.mark.parametrize(
    ("repair", "published", "held"),
    [
        (False, [1], {2: "geometry is not valid (Self-intersection", 3: "geometry has NaN or infinite coordinates"}),
        (True, [1, 2], {3: "geometry has NaN or infinite coordinates"}),  # NaN cannot be repaired
    ],
    ids=["quarantined", "repaired"],
)
def test_invalid_geometries_are_quarantined_or_repaired_where_allowed(repair, published, held):
    conformer = _buildings(repair)
    out = conformer.conform(*_footprints(), np.array([1, 2, 3]))
    assert out.rows[SOURCE_ROW].tolist() == published
    reasons = {r[SOURCE_ROW]: json.loads(r["reasons"]) for _, r in out.quarantine.iterrows()}
    assert {k: v[0]["message"][: len(held[k])] for k, v in reasons.items()} == held
    assert all(r[0]["check"] == "geometry_invalid" for r in reasons.values())
    repairs = conformer.details()["geometry_repairs"]
    assert repairs["allowed"] is repair
    assert (repairs["rows"], repairs["source_rows"]) == ((1, [2]) if repair else (0, []))
    if repair:
        assert repairs["reasons"] == {"Self-intersection": 1}
        assert shapely.from_wkb(out.rows["geometry"][1]).geom_type == "MultiPolygon"
        assert any("repaired with make_valid" in w for w in run_warnings(conformer.details()))
    else:
        assert "repair_geometry: true" in reasons[2][0]["message"]


def test_service_requests_dates_labels_and_details():
    conformer = Conformer(Conformance(
        standard=PACK.standard("service_request"), pack=PACK,
        fields={"request_id": "工单号", "opened_at": "受理时间", "closed_at": "办结时间", "status": "状态",
                "category": "类别", "district": "区"},
        labels={"category": {"路面坑洼": "road_damage"}},
        source_crs="GCJ-02", target_crs="EPSG:4490", gate=PACK.city.gate(geographic=True),
    ))
    chunk = pd.DataFrame({
        "工单号": ["R1", "R2", "R3", "R4"],
        "受理时间": ["2024年3月5日 09时30分", "2024/03/05 10:00", "1999-01-01", "昨天"],
        "办结时间": ["2024-03-06T10:00:00+08:00", "", "", ""],
        "状态": ["已办结", "处理中", "已受理", "已办结"],
        "类别": ["路面坑洼", "噪音", "路灯故障", "垃圾清运"],
        "区": ["闸北区", "徐汇", "卢湾区", "Pudong"],
    })
    geometry = np.array([shapely.Point(*wgs84_to_gcj02(121.47, 31.23))] * 4, dtype=object)
    out = conformer.conform(chunk, geometry, np.array([1, 2, 3, 4]))
    row = out.rows.iloc[0]
    assert row["opened_at"] == pd.Timestamp("2024-03-05 01:30", tz="UTC")  # Shanghai time, stored in UTC
    assert row["closed_at"] == pd.Timestamp("2024-03-06 02:00", tz="UTC")
    assert (row["status"], row["category"], row["district"]) == ("closed", "road_damage", "310106")
    reasons = {r[SOURCE_ROW]: json.loads(r["reasons"]) for _, r in out.quarantine.iterrows()}
    assert [(x["check"], x["column"]) for x in reasons[3]] == [("minimum", "opened_at")]  # before 2000
    assert [(x["check"], x["value"]) for x in reasons[4]] == [("type", "昨天")]
    details = conformer.details()
    assert set(details) == {"standard", "crs", "labels", "checks", "completeness", "plausibility",
                            "geometry_repairs", "freshness", "score"}
    assert details["labels"]["district"]["outdated"]["闸北区"]["replaced_by"] == "310106"
    assert details["labels"]["district"]["outdated"]["卢湾区"]["replaced_by"] == "310101"
    assert details["labels"]["category"]["by_how"] == {"manifest": 1, "synonym": 3}
    assert details["checks"] == {"minimum": 1, "type": 1}
    assert details["score"]["parts"]["schema"] == 0.5 and details["score"]["parts"]["labels"] == 1.0
    assert details["crs"]["how"] == "manifest" and details["crs"]["accuracy_m"] == 1.0
    assert details["completeness"]["by_field"]["opened_at"] == 0.75  # 昨天 could not be read
    assert any("闸北区" in w and "310106" in w for w in run_warnings(details))


def test_duplicate_keys_across_chunks_count_against_the_schema():
    conformer = _conformer()
    point = np.array([shapely.Point(*wgs84_to_gcj02(121.47, 31.23))] * 2, dtype=object)
    for ids in (["A", "B"], ["B", "C"]):
        chunk = pd.DataFrame({"编号": ids, "名称": ["n", "n"], "类型": ["养老院", "养老院"], "床位": ["1", "2"]})
        conformer.conform(chunk, point, np.array([1, 2]))
    details = conformer.details()
    assert details["checks"] == {"duplicate_key": 2}
    assert details["score"]["parts"]["schema"] == 0.5
