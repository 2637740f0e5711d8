"""The sample city's plausibility gate covers the whole municipality, islands included (issue 16, item 8).

The points are known places (Hengsha's east shore, Sheshan island east of Chongming, Dajinshan, the
Yangshan port); the gate is the shipped city.yaml's extent widened by its buffer, tested with the
outside_city check's own vectorized forms (what a run executes on points and on shapes).
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import shapely

from twinhub import sample
from twinhub.standards.checks.outside_city import OUTSIDE_CITY
from twinhub.standards.pack import load_pack

CITY = load_pack().city
GATE = CITY.gate(geographic=True)
POINTS_INSIDE = OUTSIDE_CITY.points({"extent": GATE})
SHAPES_INSIDE = OUTSIDE_CITY.vectorized({"extent": GATE})


def _inside(lon: float, lat: float) -> bool:
    return bool(POINTS_INSIDE(np.array([lon]), np.array([lat]))[0])


@pytest.mark.parametrize(("place", "lon", "lat", "inside"), [
    ("Hengsha island, east shore", 121.93, 31.30, True),
    ("Sheshan islet, east of Chongming", 122.24, 31.42, True),
    ("Chongming island, north-east tip", 121.98, 31.63, True),
    ("Dajinshan island, south of Jinshan", 121.42, 30.69, True),
    ("Yangshan deep-water port", 122.07, 30.62, True),
    ("People's Square", 121.475, 31.232, True),
    ("(0, 0)", 0.0, 0.0, False),
    ("Hengsha with axes swapped", 31.30, 121.93, False),
    ("Sheshan with axes swapped", 31.42, 122.24, False),
    ("Hangzhou", 120.16, 30.27, False),
    ("Nantong, north of the Yangtze", 120.89, 32.01, False),
])
def test_the_gate_admits_the_whole_municipality_and_nothing_implausible(place, lon, lat, inside):
    assert _inside(lon, lat) is inside, place


def test_a_boundary_with_its_easternmost_islet_passes_as_one_shape():
    mainland = shapely.box(120.86, 30.68, 122.00, 31.87)
    islet = shapely.Point(122.24, 31.42).buffer(0.005)
    boundary = shapely.MultiPolygon([mainland, islet])
    beyond = shapely.MultiPolygon([mainland, shapely.Point(122.40, 31.42).buffer(0.005)])
    islet_alone = shapely.Point(122.40, 31.42).buffer(0.005)
    # partly inside is kept whole (its outside part is reported: test_extent_partly_outside); wholly outside is not
    assert SHAPES_INSIDE(np.array([boundary, beyond, islet_alone], dtype=object)).tolist() == [True, True, False]


def test_the_planted_out_of_city_points_are_still_outside():
    with open(sample.TRUTH, encoding="utf-8") as f:
        planted = [row for row in csv.DictReader(f) if row["expected"] == "outside_city"]
    assert len(planted) == 4
    for row in planted:
        lon, lat = float(row["lon"]), float(row["lat"])
        # a planted swap keeps its true position in truth.csv (inside): the file holds it lat/lon (outside)
        assert not (_inside(lon, lat) and _inside(lat, lon)), row
    assert sum(not _inside(float(r["lon"]), float(r["lat"])) for r in planted) == 3
