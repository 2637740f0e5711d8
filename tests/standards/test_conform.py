"""Conforming a chunk: every row comes out once, published or quarantined with all its reasons."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import shapely

from standards.chinese_crs import wgs84_to_gcj02
from standards.conform import SOURCE_ROW, Conformance, Conformer
from standards.pack import load_pack

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
