"""gcj02_to_wgs84() and its siblings in `twinhub query` (catalog/crs_functions.py): the SQL macros agree with
standards/chinese_crs.py's numpy functions, round-trip, work in every dialect on a real catalog, and widen the
guard by exactly their own names."""

from __future__ import annotations

import csv

import numpy as np
import pyarrow as pa
import pytest
import shapely

from twinhub import sample
from twinhub.catalog import crs_functions
from twinhub.catalog.guard import QueryRefused, prepare_query
from twinhub.catalog.query import run_query
from twinhub.catalog.sandbox import SPATIAL, Limits, extensions_for, lock, open_sandbox
from twinhub.standards import chinese_crs

FUNCTIONS = sorted(crs_functions.FUNCTIONS)
INVERSES = {"wgs84_to_gcj02": "gcj02_to_wgs84", "gcj02_to_bd09": "bd09_to_gcj02", "wgs84_to_bd09": "bd09_to_wgs84"}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """The query sandbox as a user's query gets it (spatial loaded, functions created, locked), with 20,000
    random points over China and beyond (GCJ-02 adds nothing outside China) in table ``pts``."""
    con = open_sandbox(Limits(), str(tmp_path_factory.mktemp("sandbox")))
    rng = np.random.default_rng(2026)
    lon = np.concatenate([rng.uniform(73.0, 135.0, 18_000), rng.uniform(-180.0, 180.0, 2_000)])
    lat = np.concatenate([rng.uniform(18.0, 53.0, 18_000), rng.uniform(-80.0, 80.0, 2_000)])
    con.register("pts_arrow", pa.table({"lon": lon, "lat": lat}))
    con.execute("CREATE TABLE pts AS SELECT * FROM pts_arrow")
    con.unregister("pts_arrow")
    lock(con)
    yield con, lon, lat
    con.close()


@pytest.mark.parametrize("name", FUNCTIONS)
def test_sql_agrees_with_numpy_on_random_points(sandbox, name):
    con, lon, lat = sandbox
    got = con.execute(f"SELECT r.lon, r.lat FROM (SELECT {name}(lon, lat) AS r FROM pts)").fetchnumpy()
    expected_lon, expected_lat = getattr(chinese_crs, name)(lon, lat)
    assert np.max(np.abs(got["lon"] - expected_lon)) < 1e-9
    assert np.max(np.abs(got["lat"] - expected_lat)) < 1e-9
    moved = np.hypot(expected_lon - lon, expected_lat - lat)
    assert np.median(moved[:18_000]) > 1e-3  # the oracle did move the points (hundreds of metres)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_point_form_equals_lon_lat_form(sandbox, name):
    con, _, _ = sandbox
    rows = con.execute(f"""SELECT ST_X(g), ST_Y(g), p.lon, p.lat FROM (
        SELECT {name}(ST_Point(lon, lat)) AS g, {name}(lon, lat) AS p FROM pts LIMIT 500)""").fetchall()
    assert len(rows) == 500 and all(r[0] == r[2] and r[1] == r[3] for r in rows)


@pytest.mark.parametrize("forward, inverse", INVERSES.items())
def test_sql_round_trip(sandbox, forward, inverse):
    con, lon, lat = sandbox
    got = con.execute(f"SELECT r.lon, r.lat FROM (SELECT {inverse}(f.lon, f.lat) AS r FROM "
                      f"(SELECT {forward}(lon, lat) AS f FROM pts))").fetchnumpy()
    assert np.max(np.abs(got["lon"] - lon)) < 1e-9 and np.max(np.abs(got["lat"] - lat)) < 1e-9


def test_nulls_and_non_points(sandbox):
    con, _, _ = sandbox
    assert con.execute("SELECT gcj02_to_wgs84(NULL, 31.2), gcj02_to_wgs84(NULL::GEOMETRY)").fetchone() == (None, None)
    with pytest.raises(Exception, match=r"converts points only: pass ST_Centroid"):
        con.execute("SELECT bd09_to_wgs84(ST_GeomFromText('LINESTRING (121 31, 121.1 31.1)'))").fetchall()


def test_only_the_point_form_needs_the_spatial_extension():
    assert extensions_for("SELECT gcj02_to_wgs84(121.5, 31.2)") == ()
    assert extensions_for("SELECT gcj02_to_wgs84(geometry) FROM w.p") == SPATIAL


def _source_gcj02() -> dict[str, tuple[float, float]]:
    """civil_affairs.elderly_care's source rows as the department wrote them: GCJ-02 off a web map."""
    with (sample.CITY / "civil_affairs" / "elderly_care.csv").open(encoding="gbk", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {r["机构编号"]: (float(r["经度"]), float(r["纬度"])) for r in rows if r["经度"]}


@pytest.mark.parametrize("dialect, sql", [
    ("duckdb", "SELECT facility_id, wgs84_to_gcj02(geometry) AS g FROM civil_affairs.elderly_care"),
    ("postgres", "SELECT facility_id, wgs84_to_gcj02(geometry) AS g FROM civil_affairs.elderly_care"),
    ("mysql", "SELECT `facility_id`, wgs84_to_gcj02(`geometry`) AS g FROM `civil_affairs`.`elderly_care`"),
    ("tsql", "SELECT [facility_id], wgs84_to_gcj02([geometry]) AS g FROM [civil_affairs].[elderly_care]"),
    ("bigquery", "SELECT facility_id, wgs84_to_gcj02(geometry) AS g FROM civil_affairs.elderly_care"),
    ("sqlite", "SELECT facility_id, wgs84_to_gcj02(geometry) AS g FROM civil_affairs.elderly_care"),
])
def test_query_gives_back_the_departments_gcj02_in_every_dialect(city, dialect, sql):
    """The hub published the GCJ-02 CSV as WGS 84; wgs84_to_gcj02 in SQL returns the CSV's own numbers."""
    source = _source_gcj02()
    rows = run_query(city.lake, sql, dialect=dialect).rows
    assert len(rows) >= 15
    for facility_id, wkt in rows:
        point = shapely.from_wkt(wkt)
        assert abs(point.x - source[facility_id][0]) < 1e-8 and abs(point.y - source[facility_id][1]) < 1e-8


def test_near_a_gcj02_point_in_sql(city):
    """A care home's position as the department's web map showed it, converted in SQL, finds that care home."""
    facility_id, (x, y) = next(iter(_source_gcj02().items()))
    rows = run_query(city.lake, f"""
        SELECT facility_id FROM civil_affairs.elderly_care
        WHERE ST_DWithin(geometry::geography, gcj02_to_wgs84(ST_SetSRID(ST_MakePoint({x}, {y}), 4326))::geography, 5)
        """, dialect="postgres").rows
    assert rows == [(facility_id,)]


@pytest.mark.parametrize("sql, message", [
    ("SELECT __twinhub_gcj02_offset(121.0, 31.0)", "function __twinhub_gcj02_offset is not allowed"),
    ("SELECT __twinhub_gcj02_step({'lon': 1.0, 'lat': 2.0}, {'lon': 1.0, 'lat': 2.0})", "is not allowed"),
    ("SELECT gcj02_to_wgs84(x, y) FROM read_csv('/etc/passwd')", "reading files is not allowed"),
    ("SELECT gcj02_to_wgs84(ST_Point(1, 2)) FROM water.p; DROP TABLE water.p", "only one statement"),
    ("SELECT gcj02_to_wgs84(load_file('/etc/passwd'), 1)", "not allowed"),
    ("SELECT x.gcj02_to_wgs84(1, 2) FROM water.p AS x", "not allowed"),
])
def test_the_guard_allows_the_functions_and_nothing_more(sql, message):
    with pytest.raises(QueryRefused, match=message):
        prepare_query(sql, tables={"water.p"})


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "mysql", "tsql", "sqlite", "oracle", "bigquery",
                                     "snowflake", "spark", "trino", "clickhouse"])
def test_every_dialect_passes_the_call_through_unchanged(dialect):
    prepared = prepare_query("SELECT bd09_to_wgs84(121.5, 31.2) AS p, gcj02_to_bd09(geometry) AS g FROM water.p",
                             dialect=dialect, tables={"water.p"})
    assert "bd09_to_wgs84(121.5, 31.2)" in prepared.sql.lower() and "gcj02_to_bd09(" in prepared.sql.lower()


def test_nested_calls_stay_linear_not_exponential(city):
    """An attack on the query service's time: each call uses its argument once, so 15 nested conversions bind
    and run well inside the time limit (with an argument pasted 4 times per call they would be 4**15 copies);
    the result is the numpy function applied 15 times."""
    sql = "ST_Point(121.5, 31.2)"
    for _ in range(15):
        sql = f"gcj02_to_wgs84({sql})"
    rows = run_query(city.lake, f"SELECT {sql} AS g", timeout_s=30).rows
    lon, lat = 121.5, 31.2
    for _ in range(15):
        lon, lat = chinese_crs.gcj02_to_wgs84(lon, lat)
    point = shapely.from_wkt(rows[0][0])
    assert abs(point.x - lon) < 1e-9 and abs(point.y - lat) < 1e-9
