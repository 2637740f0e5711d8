"""CRS candidates for undeclared coordinates, ranked against the city; never applied."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from twinhub.standards.crs import transform_xy
from twinhub.standards.crs_detect import candidates_message, rank_crs
from twinhub.standards.pack import City, load_pack

SHANGHAI = load_pack().city
NEW_TAIPEI = City("New Taipei", "EPSG:4326", "Asia/Taipei", (121.28, 24.67, 122.01, 25.30), 2000)
ADUR = City("Adur", "EPSG:4326", "Europe/London", (-0.42, 50.80, -0.17, 50.90), 2000)
# true positions (CGCS2000) spread over Shanghai's centre
LON = np.array([121.47, 121.40, 121.55, 121.30, 121.62, 121.45])
LAT = np.array([31.23, 31.20, 31.25, 31.10, 31.30, 31.35])


def _written_in(crs: str) -> tuple[np.ndarray, np.ndarray]:
    return transform_xy(LON, LAT, "EPSG:4490", crs)


@pytest.mark.parametrize(
    ("written_in", "swap", "top", "also_fits"),
    [
        # GK CM 120E first (the city's usual grid); on Xian 1980 the same grid is ~100 m off: alike
        ("EPSG:4549", False, "EPSG:4549", {"EPSG:2385"}),
        # lon/lat: WGS 84 first; GCJ-02 and BD-09 are ~500 m off: alike, each a third of the confidence
        ("EPSG:4326", False, "EPSG:4326", {"GCJ-02", "BD-09"}),
        ("EPSG:4326", True, "EPSG:4326", set()),  # latitude first: found, and flagged as swapped
        # UTM 51N is within ~1.4 km of GK CM 123E (scale 0.9996 vs 1): the range cannot tell them apart
        ("EPSG:32651", False, "EPSG:4550", {"EPSG:32651"}),
        # Web Mercator and Baidu's Mercator metres both land in Shanghai, ~19 km apart: a tie, not alike
        ("EPSG:3857", False, "EPSG:3857", set()),
        ("BD-09MC", False, "EPSG:3857", set()),
        ("EPSG:4550", False, "EPSG:4550", set()),  # GK CM 123E is not confused with 120E
    ],
    ids=["gk-cm120", "lonlat", "latlon", "utm51n", "web-mercator", "bd09mc", "gk-cm123"],
)
def test_candidates_are_ranked_and_look_alikes_named(written_in, swap, top, also_fits):
    x, y = _written_in(written_in)
    if swap:
        x, y = y, x
    ranked = rank_crs(x, y, SHANGHAI, "EPSG:4490", limit=12)
    best = ranked[0]
    assert (best.crs, best.swapped, best.inside_share) == (top, swap, 1.0), [c.describe() for c in ranked]
    assert also_fits <= set(best.alike)
    assert written_in in {c.crs for c in ranked if c.inside_share == 1.0 and c.swapped == swap}
    ties = [c for c in ranked if c.inside_share == 1.0]
    assert best.confidence == pytest.approx(1 / len(ties))
    assert [c.inside_share for c in ranked] == sorted((c.inside_share for c in ranked), reverse=True)


def test_a_unique_fit_gets_full_confidence():
    x, y = _written_in("EPSG:4549")
    partly = rank_crs(np.append(x, 9e9), np.append(y, 9e9), SHANGHAI, "EPSG:4490")[0]
    assert partly.inside_share == pytest.approx(6 / 7)


def test_nothing_fits_coordinates_of_nowhere():
    assert rank_crs([1.0, 2.0], [3.0, 4.0], SHANGHAI, "EPSG:4490") == []
    assert "local city grid" in candidates_message([])


def test_banqiao_car_parks_are_found_in_taiwan_s_tm2(realworld):
    """tw_newtaipei_banqiao_parking: TW97X/TW97Y in EPSG:3826, declared nowhere in the files."""
    with (realworld / "tw_newtaipei_banqiao_parking" / "BanqiaoPublicParkingSpaceInfo.csv").open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    x = np.array([float(r["TW97X"]) for r in rows])
    y = np.array([float(r["TW97Y"]) for r in rows])
    top = rank_crs(x, y, NEW_TAIPEI, "EPSG:4326")[0]
    assert top.crs == "EPSG:3826" and not top.swapped and top.inside_share == 1.0
    assert "EPSG:3828" in top.alike  # TWD67 / TM2: the same grid on the old datum
    assert "EPSG:3826" in candidates_message([top]) and "never guesses" in candidates_message([top])


def test_adur_toilets_are_found_in_the_british_national_grid(realworld):
    """uk_adur_public_toilets: GeoX/GeoY eastings/northings; the file only says 'OSGB36' in a column."""
    with (realworld / "uk_adur_public_toilets" / "adur-public-toilets-valid.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["GeoX"] and r["GeoY"]]
    x = np.array([float(r["GeoX"]) for r in rows])
    y = np.array([float(r["GeoY"]) for r in rows])
    assert rank_crs(x, y, ADUR, "EPSG:4326")[0].crs == "EPSG:27700"
