"""The plausibility gate's diagnosis: why points fall outside the city, on real files."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import shapely

from twinhub.connectors import open_source
from twinhub.standards.conform import Conformance, Conformer, run_warnings
from twinhub.standards.crs import resolve_crs, transform_xy
from twinhub.standards.pack import City, load_pack
from twinhub.standards.plausibility import Plausibility

PACK = load_pack()
NEW_TAIPEI = City("New Taipei", "EPSG:4326", "Asia/Taipei", (121.28, 24.67, 122.01, 25.30), 2000)
BOSTON = City("Boston", "EPSG:4326", "America/New_York", (-71.20, 42.22, -70.98, 42.40), 1000)


def _diagnose(x, y, source: str, city: City = PACK.city, target: str = "EPSG:4490") -> dict:
    """Run positions written in ``source`` through the gate as the Conformer does, then diagnose."""
    gate = city.gate(resolve_crs(target).is_geographic)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    tx, ty = transform_xy(x, y, source, target)
    outside = ~((tx >= gate[0]) & (tx <= gate[2]) & (ty >= gate[1]) & (ty <= gate[3]))
    p = Plausibility(resolve_crs(source), resolve_crs(target), city, gate)
    p.add(x, y, np.arange(1, len(x) + 1), outside)
    return p.diagnose()


def _causes(record: dict) -> dict[str, int]:
    return {c["cause"]: c["rows"] for c in record["causes"]}


@pytest.mark.parametrize(
    ("x", "y", "source", "causes"),
    [
        # 40 Shanghai points written lat/lon: 37 swapped, 3 on (0, 0)
        (list(np.linspace(30.9, 31.4, 37)) + [0, 0, 0], list(np.linspace(121.2, 121.7, 37)) + [0, 0, 0],
         "EPSG:4326", {"swapped_axes": 37, "placeholder": 3}),
        # Gauss-Kruger metres declared as WGS 84 degrees: read as EPSG:4549 they fall inside
        (list(np.linspace(600_000, 660_000, 8)), list(np.linspace(3_440_000, 3_470_000, 8)),
         "EPSG:4326", {"other_crs": 8}),
        # a digit lost in one latitude: x is in the city's range, y is not
        ([121.47, 121.50], [3.123, 31.20], "EPSG:4326", {"one_coordinate_off": 1}),
        ([116.40], [39.91], "EPSG:4326", {"far_away": 1}),  # Beijing
    ],
    ids=["swapped-and-zero", "degrees-vs-metres", "typo", "far-away"],
)
def test_each_cause_is_named_with_its_count(x, y, source, causes):
    record = _diagnose(x, y, source)
    assert _causes(record) == causes, record["causes"]
    assert record["outside_city"] == sum(causes.values())


def test_a_swap_reads_as_the_issue_says():
    record = _diagnose([31.2] * 37 + [0] * 3, [121.5] * 37 + [0] * 3, "EPSG:4326")
    message = next(c["message"] for c in record["causes"] if c["cause"] == "swapped_axes")
    assert message.startswith("37 of 40 points outside the city fall inside if x and y are swapped")


def test_baidu_metres_declared_as_a_grid_name_the_other_crs():
    """Written in Baidu's metres, declared as Gauss-Kruger: the diagnosis names a Mercator that fits."""
    x, y = transform_xy(np.linspace(121.3, 121.6, 6), np.linspace(31.1, 31.3, 6), "EPSG:4490", "BD-09MC")
    record = _diagnose(x, y, "EPSG:4549")
    other = next(c for c in record["causes"] if c["cause"] == "other_crs")
    assert other["rows"] == 6 and other["crs"] in {"EPSG:3857", "BD-09MC"}
    assert "if read as" in other["message"]


def test_banqiao_as_published(realworld):
    """tw_newtaipei_banqiao_parking: the as-published xlsx has three car parks at (22000, 22000), one with X and Y
    swapped and one with a typo in Y (~110 km south); the corrected xlsx is the oracle."""
    pack = dataclasses.replace(PACK, city=NEW_TAIPEI)
    path = realworld / "tw_newtaipei_banqiao_parking" / "板橋路外公共停車場資訊總表.xlsx"
    conformer = Conformer(Conformance(
        standard=pack.standard("facility"), pack=pack,
        fields={"facility_id": "ID", "name": "NAME", "category": "TYPE", "capacity": "TOTALCAR"},
        labels={"category": {"1": "car_park", "2": "car_park"}},
        source_crs="EPSG:3826", target_crs="EPSG:4326", gate=NEW_TAIPEI.gate(geographic=True),
    ))
    quarantined = {}
    for chunk in open_source({"format": "xlsx", "path": str(path), "x": "TW97X", "y": "TW97Y"}).chunks():
        out = conformer.conform(chunk.frame, chunk.geometry, chunk.source_rows)
        quarantined.update(zip(out.quarantine["_source_row"], out.quarantine["checks"]))
    details = conformer.details()
    causes = {c["cause"]: c for c in details["plausibility"]["causes"]}
    assert causes["placeholder"]["source_rows"] == [31, 113, 114]
    assert causes["placeholder"]["positions"] == [[22000.0, 22000.0]]
    assert causes["swapped_axes"]["source_rows"] == [79]
    assert causes["one_coordinate_off"]["source_rows"] == [57] and causes["one_coordinate_off"]["axis"] == "y"
    assert {r for r, checks in quarantined.items() if "outside_city" in checks} == {31, 57, 79, 113, 114}
    assert details["plausibility"]["outside_city"] == 5 and details["plausibility"]["points"] == 113
    assert any("x and y are swapped" in line for line in run_warnings(details))


def test_boston_311_placeholder_point_is_reported_not_quarantined(realworld):
    """us_boston_311: intersection cases sit on 42.3594, -71.0587 (inside Boston, so the gate passes them)."""
    import csv

    with (realworld / "us_boston_311" / "boston311-100.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    x = np.array([float(r["longitude"]) for r in rows])
    y = np.array([float(r["latitude"]) for r in rows])
    record = _diagnose(x, y, "EPSG:4326", BOSTON, "EPSG:4326")
    assert record["outside_city"] == 0 and record["causes"] == []
    [repeated] = record["repeated_positions"]
    assert (repeated["x"], repeated["y"]) == (-71.0587, 42.3594)
    assert repeated["rows"] == sum(1 for r in rows if (r["latitude"], r["longitude"]) == ("42.3594", "-71.0587"))
    assert repeated["rows"] >= 19 and "placeholder" in repeated["message"]


def test_positions_spread_over_the_city_raise_nothing():
    rng = np.random.default_rng(3)
    x, y = rng.uniform(121.2, 121.8, 500), rng.uniform(30.9, 31.4, 500)
    record = _diagnose(x, y, "EPSG:4326")
    assert record == {"points": 500, "outside_city": 0, "causes": [], "repeated_positions": []}
    assert shapely.points(x, y).shape == (500,)
