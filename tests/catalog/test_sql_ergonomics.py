"""Every function's result prints; area, length and distance come out in metres in every dialect.

Metres are checked against an independent oracle, pyproj.Geod on the WGS 84 ellipsoid, on the
catalog's own lon/lat points (pumping stations), on shapes built from them in the query, and on
real places in Shanghai written as WKT.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
import shapely
from click.testing import CliRunner
from pyproj import Geod

from twinhub.catalog.query import run_query
from twinhub.cli import output
from twinhub.cli.main import main

GEOD = Geod(ellps="WGS84")
STATIONS = "water.pumping_stations"
PEOPLES_SQUARE = "POLYGON((121.4700 31.2280, 121.4780 31.2280, 121.4780 31.2340, 121.4700 31.2340, 121.4700 31.2280))"
CENTURY_PARK = ("POLYGON((121.5440 31.2190, 121.5560 31.2170, 121.5620 31.2230, 121.5540 31.2300, 121.5450 31.2270,"
                " 121.5440 31.2190))")
THE_BUND = "LINESTRING(121.4840 31.2300, 121.4900 31.2380, 121.4905 31.2430)"

# ----------------------------------------------------------------------------- every result prints

# (select expression over water.pumping_stations, text every format shows for it)
PRINTED = [
    ("ST_GeometryType(geometry)", "POINT"),
    ("geometry", "POINT ("),
    ("ST_Centroid(ST_Buffer(geometry, 0.001))", "POINT ("),
    ("ST_AsWKB(geometry)", "0101000000"),  # a BLOB as hex: little-endian WKB point
    ("'\\xAA\\xBB'::BLOB", "aabb"),
    ("ST_Dump(ST_Collect([geometry, geometry]))", "POINT ("),  # geometries inside a list of structs
    ("ST_Extent(geometry)", "BOX("),
    ("{'code': facility_id, 'built': DATE '2019-05-04'}", "2019-05-04"),
    ("[facility_id, 'x']", "PS0"),
    ("DATE '2024-02-29'", "2024-02-29"),
    ("TIMESTAMP '2024-02-29 10:30:00'", "2024-02-29"),
    ("TIME '10:30:00'", "10:30:00"),
    ("INTERVAL 3 DAY", "3 days"),
    ("1.50::DECIMAL(5, 2)", "1.50"),
    ("{'price': 12.345::DECIMAL(8, 3)}", "12.345"),
    ("'nan'::DOUBLE", ""),
]


@pytest.mark.parametrize("expression, shown", PRINTED, ids=[e for e, _ in PRINTED])
def test_every_function_result_prints_in_every_format(city, expression, shown):
    result = run_query(city.lake, f"SELECT facility_id, {expression} AS value FROM {STATIONS} ORDER BY 1 LIMIT 2")
    assert len(result.rows) == 2
    table = output.render(result.columns, result.rows, "table")
    records = json.loads(output.render(result.columns, result.rows, "json"))  # strict JSON: NaN is null
    rows = list(csv.DictReader(io.StringIO(output.render(result.columns, result.rows, "csv"))))
    assert len(records) == len(rows) == 2
    assert shown in table and shown in json.dumps(records, ensure_ascii=False) and shown in rows[0]["value"]


@pytest.mark.parametrize("fmt", output.FORMATS)
def test_the_cli_prints_the_geometry_type(city, fmt):
    """The command of the issue, as a steward types it."""
    stations = run_query(city.lake, f"SELECT count(*) FROM {STATIONS}").rows[0][0]
    result = CliRunner().invoke(main, ["--home", str(city.home), "query", "--format", fmt,
                                       f"SELECT ST_GeometryType(geometry) FROM {STATIONS}"])
    assert result.exit_code == 0, result.output
    assert result.output.count("POINT") == stations


def test_nan_is_null_in_json(city):
    result = run_query(city.lake, f"SELECT 'nan'::DOUBLE AS v, 'inf'::DOUBLE AS w FROM {STATIONS} LIMIT 1")
    assert json.loads(output.render(result.columns, result.rows, "json")) == [{"v": None, "w": None}]


# ----------------------------------------------------------------------------- metres in every dialect

def _buffers(dialect: str) -> str:
    measure = {"duckdb": "ST_Area_Spheroid(shape)", "postgres": "ST_Area(shape::geography)",
               "mysql": "ST_Area(shape)"}[dialect]
    return (f"SELECT shape, {measure} FROM (SELECT ST_Buffer(geometry, 0.01) AS shape FROM {STATIONS}) AS q")


def _lines(dialect: str) -> str:
    measure = {"duckdb": "ST_Length_Spheroid(line)", "postgres": "ST_Length(line::geography)",
               "mysql": "ST_Length(line)"}[dialect]
    return (f"SELECT line, {measure} FROM (SELECT ST_MakeLine(a.geometry, b.geometry) AS line FROM {STATIONS} AS a"
            f" JOIN {STATIONS} AS b ON a.facility_id < b.facility_id) AS q")


def _distances(dialect: str) -> str:
    measure = {"duckdb": "ST_Distance_Spheroid(a.geometry, b.geometry)",
               "postgres": "ST_Distance(a.geometry::geography, b.geometry::geography)",
               "mysql": "ST_Distance_Sphere(a.geometry, b.geometry)"}[dialect]
    return (f"SELECT ST_MakeLine(a.geometry, b.geometry), {measure} FROM {STATIONS} AS a"
            f" JOIN {STATIONS} AS b ON a.facility_id < b.facility_id")


def _place(dialect: str, wkt: str, measure: str) -> str:
    geometry = {"duckdb": f"ST_GeomFromText('{wkt}')", "postgres": f"ST_GeomFromText('{wkt}', 4326)",
                "mysql": f"ST_GeomFromText('{wkt}', 4326)"}[dialect]
    call = {("duckdb", "area"): f"ST_Area_Spheroid({geometry})", ("duckdb", "length"): f"ST_Length_Spheroid({geometry})",
            ("postgres", "area"): f"ST_Area({geometry}::geography)",
            ("postgres", "length"): f"ST_Length({geometry}::geography)",
            ("mysql", "area"): f"ST_Area({geometry})", ("mysql", "length"): f"ST_Length({geometry})"}[dialect, measure]
    return f"SELECT {geometry}, {call}"


def _area(shape: shapely.Geometry) -> float:
    return abs(GEOD.geometry_area_perimeter(shape)[0])


def _length(line: shapely.Geometry) -> float:
    return GEOD.geometry_length(line)


def _distance(line: shapely.Geometry) -> float:
    (x1, y1), (x2, y2) = line.coords
    return GEOD.inv(x1, y1, x2, y2)[2]


CASES = [
    (query, oracle, dialect)
    for dialect in ("duckdb", "postgres", "mysql")
    for query, oracle in (
        (_buffers(dialect), _area),
        (_lines(dialect), _length),
        (_distances(dialect), _distance),
        (_place(dialect, PEOPLES_SQUARE, "area"), _area),
        (_place(dialect, CENTURY_PARK, "area"), _area),
        (_place(dialect, THE_BUND, "length"), _length),
    )
] + [
    # DuckDB users who already flip to [lat, lon] keep their right answer
    ("SELECT shape, ST_Area_Spheroid(ST_FlipCoordinates(shape)) FROM"
     f" (SELECT ST_Buffer(geometry, 0.01) AS shape FROM {STATIONS}) AS q", _area, "duckdb"),
    (f"SELECT ST_MakeLine(a.geometry, b.geometry), ST_Distance_Spheroid(ST_FlipCoordinates(a.geometry),"
     f" ST_FlipCoordinates(b.geometry)) FROM {STATIONS} AS a JOIN {STATIONS} AS b ON a.facility_id < b.facility_id",
     _distance, "duckdb"),
]


@pytest.mark.parametrize("sql, oracle, dialect", CASES, ids=[f"{d}-{i}" for i, (_, _, d) in enumerate(CASES)])
def test_metres_match_the_ellipsoid_within_a_thousandth(city, sql, oracle, dialect):
    rows = run_query(city.lake, sql, dialect=dialect).rows
    assert rows
    for wkt, metres in rows:
        expected = oracle(shapely.from_wkt(wkt))
        assert expected > 10
        assert metres == pytest.approx(expected, rel=1e-3), (wkt, metres, expected)


def test_geometries_inside_structs_and_lists_come_back_as_wkt_keeping_their_shape(city):
    points = dict(run_query(city.lake, f"SELECT facility_id, geometry FROM {STATIONS}").rows)
    rows = run_query(city.lake, f"SELECT t, ST_Dump(ST_Collect([geometry, geometry])) AS parts FROM {STATIONS} AS t").rows
    assert len(rows) == len(points)
    for row, parts in rows:
        assert row["geometry"] == points[row["facility_id"]]
        assert [part["geom"] for part in parts] == [row["geometry"]] * 2
