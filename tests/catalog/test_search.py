"""Finding data: ranked search in Chinese and English, and what is within a distance of a spot."""

from __future__ import annotations

import pytest
import shapely
from pyproj import Geod

from twinhub.catalog.near import near
from twinhub.catalog.query import run_query
from twinhub.catalog.search import search, tokens
from twinhub.cli.catalog import _synonyms

GEOD = Geod(ellps="GRS80")


@pytest.mark.parametrize("text, expected", [
    ("Elderly care 养老院", ["elderly", "care", "养老", "老院"]),
    ("泵站", ["泵站"]),
    ("站", ["站"]),
    ("day_care_centre", ["day", "care", "centre"]),
    ("ＰＵＭＰＩＮＧ　Station", ["pumping", "station"]),  # full-width letters and space
    ("", []),
])
def test_tokens(text, expected):
    assert tokens(text) == expected


@pytest.mark.parametrize("text, first", [
    ("养老", "civil_affairs.elderly_care"),  # in the description (Chinese, no spaces)
    ("日间照料中心", "civil_affairs.elderly_care"),  # a label's Chinese name in the vocabulary
    ("泵站", "water.pumping_stations"),  # the vocabulary's zh label of pumping_station
    ("雨水泵站", "water.pumping_stations"),
    ("避难场所", "emergency.shelters"),  # a synonym of emergency_shelter
    ("elderly care", "civil_affairs.elderly_care"),
    ("pumping station", "water.pumping_stations"),
    ("SHELTERS", "emergency.shelters"),  # title, any case
    ("evacuation shelter capacity", "emergency.shelters"),
])
def test_search_ranks_the_right_dataset_first(city, text, first):
    hits = search(city.lake, text, synonyms=_synonyms(city))
    assert hits and hits[0].dataset == first, [(h.dataset, h.score, h.matched) for h in hits]
    assert all(h.score <= hits[0].score for h in hits)


def test_title_outranks_a_column_name(city):
    hits = search(city.lake, "capacity pumping", synonyms=_synonyms(city))
    assert hits[0].dataset == "water.pumping_stations"  # title + labels beat the column every dataset has
    assert {h.dataset for h in hits} == {"water.pumping_stations", "emergency.shelters", "civil_affairs.elderly_care"}


@pytest.mark.parametrize("filters, expected", [
    ({}, ["civil_affairs.elderly_care", "emergency.shelters", "water.pumping_stations"]),
    ({"department": "water"}, ["water.pumping_stations"]),
    ({"standard": "facility"}, ["civil_affairs.elderly_care", "emergency.shelters", "water.pumping_stations"]),
    ({"standard": "roads"}, []),
    ({"bbox": (0.0, 0.0, 1.0, 1.0)}, []),
    ({"bbox": (121.0, 31.0, 122.0, 32.0)}, ["civil_affairs.elderly_care", "emergency.shelters",
                                            "water.pumping_stations"]),
])
def test_filters_without_text_list_matching_datasets_by_name(city, filters, expected):
    assert [h.dataset for h in search(city.lake, None, **filters)] == expected


def test_text_with_no_match_finds_nothing(city):
    assert search(city.lake, "spaceport 航天港", synonyms=_synonyms(city)) == []


def _all_points(hub) -> list[tuple[str, str, shapely.Point]]:
    out = []
    for dataset in ("water.pumping_stations", "emergency.shelters", "civil_affairs.elderly_care"):
        for ident, wkt in run_query(hub.lake, f"SELECT facility_id, geometry FROM {dataset}").rows:
            out.append((dataset, ident, shapely.from_wkt(wkt)))
    return out


@pytest.mark.parametrize("radius", [300.0, 2500.0, 6000.0])
def test_near_returns_every_departments_features_within_true_metres(city, radius):
    points = _all_points(city)
    x, y = 121.47, 31.23
    expected = sorted((d, i) for d, i, p in points if GEOD.inv(x, y, p.x, p.y)[2] <= radius)
    found = near(city.lake, x, y, radius, city.target_crs)
    assert sorted((f.dataset, f.attributes["facility_id"]) for f in found) == expected
    for f in found:
        p = shapely.from_wkt(f.wkt)
        assert f.distance_m == pytest.approx(GEOD.inv(x, y, p.x, p.y)[2], abs=0.01)
    assert [f.distance_m for f in found] == sorted(f.distance_m for f in found)
    if radius == 6000.0:
        assert len({f.department for f in found}) == 3  # a spot in the centre meets every department


@pytest.mark.parametrize("radius", [0.0, -5.0, 500_000.0])
def test_near_refuses_a_silly_radius(city, radius):
    with pytest.raises(ValueError, match="--radius"):
        near(city.lake, 121.47, 31.23, radius, city.target_crs)
