"""The query service on a real catalog: dialects, row limit, time limit, audit log, catalog.* as data."""

from __future__ import annotations

import itertools
import json
import time
import uuid

import pytest
import shapely
from pyproj import Geod

from twinhub.catalog.query import QueryRefused, QueryTimeout, run_query

GEOD = Geod(ellps="GRS80")
FIRST_THREE = "SELECT facility_id FROM water.pumping_stations ORDER BY facility_id"


def _audit(hub, department: str) -> list[dict]:
    result = run_query(hub.lake, f"SELECT * FROM catalog.audit WHERE department = '{department}' ORDER BY happened_at")
    return [dict(zip(result.columns, row)) for row in result.rows]


@pytest.mark.parametrize("dialect, sql", [
    ("duckdb", FIRST_THREE + " LIMIT 3"),
    ("postgres", FIRST_THREE + " LIMIT 3"),
    ("mysql", "SELECT `facility_id` FROM `water`.`pumping_stations` ORDER BY `facility_id` LIMIT 3"),
    ("tsql", "SELECT TOP 3 [facility_id] FROM [water].[pumping_stations] ORDER BY [facility_id]"),
    ("oracle", FIRST_THREE + " FETCH FIRST 3 ROWS ONLY"),
    ("sqlite", FIRST_THREE + " LIMIT 3"),
    ("hive", FIRST_THREE + " LIMIT 3"),
    ("spark", "SELECT `facility_id` FROM water.pumping_stations ORDER BY facility_id LIMIT 3"),
])
def test_each_dialect_reads_the_same_rows(city, dialect, sql):
    assert run_query(city.lake, sql, dialect=dialect).rows == [("PS001",), ("PS003",), ("PS005",)]


def test_cross_department_spatial_join_in_postgres_and_mysql_gives_the_same_rows(city):
    metres = 1500
    points = {
        name: {r[0]: shapely.from_wkt(r[1]) for r in run_query(city.lake, f"SELECT facility_id, geometry FROM {name}").rows}
        for name in ("emergency.shelters", "civil_affairs.elderly_care")
    }
    distances = {
        (s, e): GEOD.inv(ps.x, ps.y, pe.x, pe.y)[2]
        for (s, ps), (e, pe) in itertools.product(points["emergency.shelters"].items(),
                                                  points["civil_affairs.elderly_care"].items())
    }
    assert all(abs(d - metres) > 10 for d in distances.values())  # sphere vs spheroid cannot flip a pair
    expected = sorted(pair for pair, d in distances.items() if d <= metres)
    assert len(expected) >= 3
    postgres = run_query(city.lake, f"""
        SELECT s.facility_id AS shelter, e.facility_id AS care_home
        FROM emergency.shelters s JOIN civil_affairs.elderly_care e
          ON ST_DWithin(s.geometry::geography, e.geometry::geography, {metres})
        ORDER BY 1, 2""", dialect="postgres")
    mysql = run_query(city.lake, f"""
        SELECT s.`facility_id` AS shelter, e.`facility_id` AS care_home
        FROM `emergency`.`shelters` AS s INNER JOIN `civil_affairs`.`elderly_care` AS e
          ON ST_Distance_Sphere(s.`geometry`, e.`geometry`) <= {metres}
        ORDER BY 1, 2""", dialect="mysql")
    assert postgres.rows == mysql.rows == expected


@pytest.mark.parametrize("max_rows, truncated", [(5, True), (15, False), (100_000, False)])
def test_row_limit_caps_the_result_and_says_so(city, max_rows, truncated):
    total = run_query(city.lake, "SELECT count(*) FROM emergency.shelters").rows[0][0]
    result = run_query(city.lake, "SELECT facility_id FROM emergency.shelters ORDER BY 1", max_rows=max_rows)
    assert result.truncated is truncated
    assert len(result.rows) == min(total, max_rows)
    assert result.rows == sorted(result.rows)  # the limit keeps the query's order


def test_a_query_that_runs_too_long_is_cancelled_cleanly(city):
    department = f"probe_{uuid.uuid4().hex[:8]}"
    before = run_query(city.lake, "SELECT count(*) FROM catalog.runs").rows
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="longer than 0.5 s and was cancelled"):
        run_query(city.lake, "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000000) "
                             "SELECT count(*) FROM r", timeout_s=0.5, department=department)
    assert time.monotonic() - started < 10
    assert run_query(city.lake, "SELECT count(*) FROM catalog.runs").rows == before  # nothing changed
    assert run_query(city.lake, "SELECT 1 AS ok").rows == [(1,)]  # the service still answers
    assert [(a["status"], a["rows_returned"]) for a in _audit(city, department)] == [("timeout", None)]


def test_every_query_is_audited_with_its_tables_and_columns(city):
    department = f"probe_{uuid.uuid4().hex[:8]}"
    run_query(city.lake, "SELECT s.name, count(*) AS n FROM emergency.shelters s JOIN water.pumping_stations p "
                         "ON ST_DWithin(s.geometry, p.geometry, 0.01) GROUP BY 1", department=department)
    with pytest.raises(QueryRefused):
        run_query(city.lake, "SELECT * FROM read_csv('/etc/passwd')", department=department)
    with pytest.raises(QueryRefused):
        run_query(city.lake, "DELETE FROM water.pumping_stations", dialect="postgres", department=department)
    ok, file_read, delete = _audit(city, department)
    assert ok["status"] == "ok" and ok["action"] == "query" and ok["actor"]
    assert json.loads(ok["tables"]) == ["emergency.shelters", "water.pumping_stations"]
    assert json.loads(ok["columns"]) == ["emergency.shelters.geometry", "emergency.shelters.name",
                                         "water.pumping_stations.geometry"]
    assert ok["rows_returned"] >= 1 and ok["duration_ms"] > 0
    assert file_read["status"] == "refused" and "reading files" in file_read["message"]
    assert delete["status"] == "refused" and delete["dialect"] == "postgres"
    assert "DELETE" in delete["statement"]


def test_time_travel_syntax_stays_refused_by_the_guard(city):
    with pytest.raises(QueryRefused, match="time travel"):
        run_query(city.lake, "SELECT * FROM water.pumping_stations AT (VERSION => 1)")


@pytest.mark.parametrize("sql, expected", [
    # which departments published nothing since a time? (none since the year 2999, all since 2000)
    ("""SELECT d.department FROM catalog.datasets d LEFT JOIN catalog.runs r ON r.dataset = d.dataset
          AND r.status = 'published' AND r.finished_at >= TIMESTAMPTZ '2999-01-01'
        GROUP BY 1 HAVING count(r.run_id) = 0 ORDER BY 1""",
     [("civil_affairs",), ("emergency",), ("water",)]),
    ("""SELECT d.department FROM catalog.datasets d LEFT JOIN catalog.runs r ON r.dataset = d.dataset
          AND r.status = 'published' AND r.finished_at >= now() - INTERVAL 7 DAY
        GROUP BY 1 HAVING count(r.run_id) = 0""", []),
    ("SELECT dataset, status FROM catalog.versions ORDER BY version",
     [("water.pumping_stations", "published"), ("emergency.shelters", "published"),
      ("civil_affairs.elderly_care", "published")]),
    ("SELECT name FROM catalog.columns WHERE dataset = 'water.pumping_stations' AND is_label ORDER BY 1",
     [("category",)]),
    ("SELECT count(*) FROM catalog.release_notes WHERE summary LIKE 'first version:%'", [(3,)]),
    ("SELECT dataset, round(quarantined_share, 3) FROM catalog.quality ORDER BY 1",
     [("civil_affairs.elderly_care", 0.25), ("emergency.shelters", 0.25), ("water.pumping_stations", 0.278)]),
])
def test_the_catalog_itself_is_queryable(city, sql, expected):
    assert run_query(city.lake, sql, dialect="postgres").rows == expected
