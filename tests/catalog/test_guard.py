"""twinhub.catalog.guard: allow-listed user SQL, translated to DuckDB and run on real DuckDB spatial."""

from __future__ import annotations

import itertools
import math

import duckdb
import pyproj
import pytest

from twinhub.catalog.extensions import connect
from twinhub.catalog.guard import ALLOWED_FUNCTIONS, PreparedQuery, QueryRefused, prepare_query

# ---------------------------------------------------------------------------- test data
# Points around Shanghai, x = longitude, y = latitude (EPSG:4490 axis order as stored).
CARE = {  # civil_affairs.elderly_care: id -> (name, district, lon, lat)
    1: ("Jing'an Home", "jingan", 121.4000, 31.2000),
    2: ("Xuhui Home", "xuhui", 121.4100, 31.2050),
    3: ("Pudong Home", "pudong", 121.4300, 31.2200),
    4: ("Minhang Home", "xuhui", 121.3900, 31.1950),
}
SHELTERS = {  # emergency.shelters: id -> (name, capacity, lon, lat)
    1: ("School gym", 300, 121.4030, 31.2010),
    2: ("Stadium", 5000, 121.4120, 31.2080),
    3: ("Park", 800, 121.4500, 31.2500),
    4: ("Library", 120, 121.3850, 31.1900),
    5: ("Hall", 60, 121.4270, 31.2195),
}
SITES = {  # planning.sites, a projected CRS in metres: id -> (x, y)
    1: (500000.0, 3450000.0),
    2: (500300.0, 3450000.0),
    3: (501000.0, 3450400.0),
}

GEOD = pyproj.Geod(ellps="WGS84")


def _geodesic(a: tuple, b: tuple) -> float:
    return GEOD.inv(a[-2], a[-1], b[-2], b[-1])[2]


def _pairs(predicate) -> list[tuple[str, str]]:
    return sorted(
        (care[0], shelter[0])
        for care, shelter in itertools.product(CARE.values(), SHELTERS.values())
        if predicate(care, shelter)
    )


# Expected neighbours computed independently of DuckDB; every pair is far from
# the 500 m / 0.01 degree thresholds so sphere vs spheroid cannot flip a result.
for _c, _s in itertools.product(CARE.values(), SHELTERS.values()):
    assert abs(_geodesic(_c, _s) - 500) > 80
    assert abs(math.dist(_c[-2:], _s[-2:]) - 0.01) > 0.001
WITHIN_500_M = _pairs(lambda c, s: _geodesic(c, s) <= 500)
WITHIN_001_DEG = _pairs(lambda c, s: math.dist(c[-2:], s[-2:]) < 0.01)
assert len(WITHIN_500_M) == 3 and len(WITHIN_001_DEG) == 5  # the data is interesting
NEAREST_PLANAR = sorted(
    (care[0], min(SHELTERS.values(), key=lambda s, c=care: math.dist(c[-2:], s[-2:]))[0])
    for care in CARE.values()
)

ALLOWED = {"civil_affairs.elderly_care", "emergency.shelters"}
HIDDEN_TABLES = ("civil_affairs.secret_registry", "catalog.runs", "planning.sites")


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    con = connect(extensions=("spatial",))
    # as in production: the catalog is attached as `lake` and is the default database
    con.execute("ATTACH ':memory:' AS lake; USE lake")
    con.execute("CREATE SCHEMA civil_affairs; CREATE SCHEMA emergency; CREATE SCHEMA catalog; CREATE SCHEMA planning")
    con.execute(
        "CREATE TABLE civil_affairs.elderly_care (id INTEGER, name VARCHAR, district VARCHAR,"
        " opened DATE, props VARCHAR, geometry GEOMETRY)"
    )
    for i, (name, district, lon, lat) in CARE.items():
        con.execute(
            "INSERT INTO civil_affairs.elderly_care VALUES (?, ?, ?, ?, ?, ST_Point(?, ?))",
            [i, name, district, f"20{10 + i}-0{i}-15", f'{{"beds": {10 * i}}}', lon, lat],
        )
    con.execute("CREATE TABLE emergency.shelters (id INTEGER, name VARCHAR, capacity INTEGER, geometry GEOMETRY)")
    for i, (name, capacity, lon, lat) in SHELTERS.items():
        con.execute("INSERT INTO emergency.shelters VALUES (?, ?, ?, ST_Point(?, ?))", [i, name, capacity, lon, lat])
    con.execute("CREATE TABLE civil_affairs.secret_registry AS SELECT 1 AS id, 'hidden' AS name")
    con.execute("CREATE TABLE catalog.runs AS SELECT 1 AS id, 'hidden' AS name")
    con.execute("CREATE TABLE planning.sites (id INTEGER, geometry GEOMETRY)")
    for i, (x, y) in SITES.items():
        con.execute("INSERT INTO planning.sites VALUES (?, ST_Point(?, ?))", [i, x, y])
    con.execute("SET enable_external_access = false")  # as the query service does
    yield con
    con.close()


def _run(con, prepared: PreparedQuery) -> list[tuple]:
    return sorted(con.execute(prepared.sql).fetchall())


def _counts(con) -> dict[str, int]:
    names = sorted(ALLOWED) + list(HIDDEN_TABLES)
    return {name: con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in names}


# ---------------------------------------------------------------------------- allowed

CARE_TABLE = ("civil_affairs.elderly_care",)
BOTH = ("civil_affairs.elderly_care", "emergency.shelters")

ALLOWED_CASES = [
    pytest.param(
        "postgres",
        "SELECT a.name, b.name FROM civil_affairs.elderly_care a JOIN emergency.shelters b"
        " ON ST_DWithin(a.geometry::geography, b.geometry::geography, 500)",
        WITHIN_500_M, BOTH, id="postgis-dwithin-geography",
    ),
    pytest.param(
        "postgres",
        "SELECT a.name, b.name FROM civil_affairs.elderly_care AS a, emergency.shelters AS b"
        " WHERE ST_DWithin(CAST(a.geometry AS geography), CAST(b.geometry AS geography), 500)",
        WITHIN_500_M, BOTH, id="postgis-dwithin-cast-as-geography",
    ),
    pytest.param(
        "postgres",
        "SELECT a.name, b.name FROM civil_affairs.elderly_care a, emergency.shelters b"
        " WHERE ST_Distance(a.geometry::geography, b.geometry::geography) <= 500",
        WITHIN_500_M, BOTH, id="postgis-distance-geography",
    ),
    pytest.param(
        "mysql",
        "SELECT a.name, b.name FROM civil_affairs.elderly_care a JOIN emergency.shelters b"
        " ON ST_Distance_Sphere(a.geometry, b.geometry) <= 500",
        WITHIN_500_M, BOTH, id="mysql-distance-sphere",
    ),
    pytest.param(
        "mysql",
        "SELECT `a`.`name`, `b`.`name` FROM `civil_affairs`.`elderly_care` AS `a`"
        " CROSS JOIN `emergency`.`shelters` AS `b` WHERE ST_Distance_Sphere(`a`.`geometry`, `b`.`geometry`) < 500",
        WITHIN_500_M, BOTH, id="mysql-backticks",
    ),
    pytest.param(
        "duckdb",
        "SELECT a.name, b.name FROM civil_affairs.elderly_care a JOIN emergency.shelters b"
        " ON ST_Intersects(a.geometry, ST_Buffer(b.geometry, 0.01))",
        WITHIN_001_DEG, BOTH, id="duckdb-intersects-buffer",
    ),
    pytest.param(
        "postgres",
        "SELECT name FROM civil_affairs.elderly_care WHERE ST_DWithin(geometry::geography,"
        " ST_SetSRID(ST_MakePoint(121.4035, 31.2005), 4490)::geography, 500)",
        [("Jing'an Home",)], CARE_TABLE, id="postgis-setsrid-makepoint",
    ),
    pytest.param(
        "postgres",
        "SELECT name FROM civil_affairs.elderly_care"
        " WHERE ST_Intersects(geometry, ST_GeomFromText('POLYGON((121.395 31.19, 121.415 31.19,"
        " 121.415 31.21, 121.395 31.21, 121.395 31.19))', 4490))",
        [("Jing'an Home",), ("Xuhui Home",)], CARE_TABLE, id="postgis-geomfromtext-srid",
    ),
    pytest.param(
        "mysql",
        "SELECT name FROM civil_affairs.elderly_care WHERE ST_Distance_Sphere(geometry, POINT(121.4035, 31.2005)) < 500",
        [("Jing'an Home",)], CARE_TABLE, id="mysql-point",
    ),
    pytest.param(
        "duckdb",
        "WITH near AS (SELECT a.id FROM civil_affairs.elderly_care a JOIN emergency.shelters b"
        " ON ST_Intersects(a.geometry, ST_Buffer(b.geometry, 0.01))) SELECT count(DISTINCT id) FROM near",
        [(4,)], BOTH, id="cte",
    ),
    pytest.param(
        "duckdb",
        "SELECT name FROM civil_affairs.elderly_care WHERE id = 1"
        " UNION ALL SELECT name FROM emergency.shelters WHERE id = 1",
        [("Jing'an Home",), ("School gym",)], BOTH, id="union",
    ),
    pytest.param(
        "postgres",
        "SELECT name, row_number() OVER (ORDER BY capacity DESC) AS rn,"
        " rank() OVER (ORDER BY capacity DESC) FROM emergency.shelters ORDER BY rn LIMIT 2",
        [("Park", 2, 2), ("Stadium", 1, 1)], ("emergency.shelters",), id="window-functions",
    ),
    pytest.param(
        "postgres",
        "SELECT district, count(*) AS n FROM civil_affairs.elderly_care GROUP BY district HAVING count(*) >= 1",
        [("jingan", 1), ("pudong", 1), ("xuhui", 2)], CARE_TABLE, id="group-by-count",
    ),
    pytest.param(
        "duckdb",
        "SELECT count(*) FROM lake.civil_affairs.elderly_care",
        [(4,)], CARE_TABLE, id="lake-qualified",
    ),
    pytest.param(
        "duckdb",
        "WITH elderly_care AS (SELECT * FROM civil_affairs.elderly_care WHERE id <= 2)"
        " SELECT count(*) FROM elderly_care",
        [(2,)], CARE_TABLE, id="cte-named-like-a-table",
    ),
    pytest.param(
        "duckdb",
        "WITH shelters AS (SELECT 1 AS id) SELECT count(*) FROM emergency.shelters",
        [(5,)], ("emergency.shelters",), id="qualified-name-is-the-table-not-the-cte",
    ),
    pytest.param(
        "postgres",
        'SELECT "name" FROM "civil_affairs"."Elderly_Care" WHERE "id" = 3',
        [("Pudong Home",)], CARE_TABLE, id="quoted-identifiers",
    ),
    pytest.param(
        "sqlite",
        "SELECT upper(substr(name, 1, 5)), ifnull(NULL, id) FROM civil_affairs.elderly_care WHERE id = 2",
        [("XUHUI", 2)], CARE_TABLE, id="sqlite-select",
    ),
    pytest.param(
        "tsql",
        "SELECT TOP 2 [name] FROM [civil_affairs].[elderly_care] ORDER BY [id]",
        [("Jing'an Home",), ("Xuhui Home",)], CARE_TABLE, id="tsql-top",
    ),
    pytest.param(
        "duckdb",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3)"
        " SELECT sum(n) FROM t",
        [(6,)], (), id="recursive-cte",
    ),
    pytest.param(
        "duckdb",
        "SELECT name FROM civil_affairs.elderly_care WHERE id IN"
        " (SELECT id FROM emergency.shelters WHERE capacity > 250)",
        [("Jing'an Home",), ("Pudong Home",), ("Xuhui Home",)], BOTH, id="in-subquery",
    ),
    pytest.param(
        "duckdb",
        "SELECT id, props::JSON ->> 'beds', json_extract_string(props, '$.beds') FROM civil_affairs.elderly_care WHERE id = 4",
        [(4, "40", "40")], CARE_TABLE, id="json",
    ),
    pytest.param(
        "postgres",
        "SELECT count(*) FROM civil_affairs.elderly_care WHERE EXTRACT(year FROM opened) >= 2013"
        " AND date_trunc('month', opened) < CURRENT_DATE",
        [(2,)], CARE_TABLE, id="dates",
    ),
    pytest.param(
        "snowflake",
        "SELECT name FROM emergency.shelters QUALIFY ROW_NUMBER() OVER (ORDER BY capacity) = 1",
        [("Hall",)], ("emergency.shelters",), id="snowflake-qualify",
    ),
    pytest.param(
        "duckdb",
        "SELECT round(ST_X(geometry), 3), round(ST_Y(geometry), 3), ST_AsText(geometry) FROM emergency.shelters WHERE id = 4",
        [(121.385, 31.19, "POINT (121.385 31.19)")], ("emergency.shelters",), id="spatial-accessors",
    ),
    pytest.param(
        "duckdb",
        "SELECT 1 -- */ ; DROP TABLE civil_affairs.elderly_care\n",
        [(1,)], (), id="line-comment-with-block-end-is-dropped",
    ),
    pytest.param(
        "duckdb",
        "SELECT count(*) FROM civil_affairs.elderly_care;",
        [(4,)], CARE_TABLE, id="trailing-semicolon",
    ),
    pytest.param(
        "duckdb",
        "SELECT count(*) FROM civil_affairs.elderly_care; -- that's all\n",
        [(4,)], CARE_TABLE, id="comment-after-trailing-semicolon",
    ),
    pytest.param(
        "postgres",
        "SELECT c.name, s.name FROM civil_affairs.elderly_care c CROSS JOIN LATERAL"
        " (SELECT name FROM emergency.shelters ORDER BY geometry <-> c.geometry LIMIT 1) s",
        NEAREST_PLANAR, BOTH, id="postgis-knn-operator-lateral",
    ),
]


@pytest.mark.parametrize("dialect, sql, expected, tables", ALLOWED_CASES)
def test_allowed_query_runs_on_duckdb(con, dialect, sql, expected, tables):
    prepared = prepare_query(sql, dialect=dialect, tables=ALLOWED)
    assert prepared.tables == tables
    assert _run(con, prepared) == sorted(expected), prepared.sql


def test_geography_is_translated_to_spheroid_on_flipped_coordinates():
    prepared = prepare_query(
        "SELECT ST_DWithin(a.geometry::geography, b.geometry::geography, 500)"
        " FROM civil_affairs.elderly_care a, emergency.shelters b",
        dialect="postgres",
        tables=ALLOWED,
    )
    assert "ST_DWITHIN_SPHEROID(ST_FLIPCOORDINATES(a.geometry), ST_FLIPCOORDINATES(b.geometry), 500)" in prepared.sql
    assert "GEOGRAPHY" not in prepared.sql.upper()


def test_geography_distances_match_pyproj(con):
    prepared = prepare_query(
        "SELECT a.id, b.id, ST_Distance(a.geometry::geography, b.geometry::geography),"
        " ST_Distance_Sphere(a.geometry, b.geometry)"
        " FROM civil_affairs.elderly_care a, emergency.shelters b",
        dialect="postgres",
        tables=ALLOWED,
    )
    rows = con.execute(prepared.sql).fetchall()
    assert len(rows) == len(CARE) * len(SHELTERS)
    for care_id, shelter_id, spheroid, sphere in rows:
        expected = _geodesic(CARE[care_id], SHELTERS[shelter_id])
        assert spheroid == pytest.approx(expected, abs=0.01)
        assert sphere == pytest.approx(expected, rel=0.005)


def test_geography_length_and_area_match_pyproj(con):
    line = "LINESTRING(121.4 31.2, 121.41 31.2)"
    square = "POLYGON((121.4 31.2, 121.41 31.2, 121.41 31.21, 121.4 31.21, 121.4 31.2))"
    prepared = prepare_query(
        f"SELECT ST_Length(ST_GeomFromText('{line}', 4490)::geography),"
        f" ST_Area(ST_GeogFromText('{square}'))",
        dialect="postgres",
        tables=ALLOWED,
    )
    length, area = con.execute(prepared.sql).fetchone()
    assert length == pytest.approx(GEOD.inv(121.4, 31.2, 121.41, 31.2)[2], abs=0.01)
    expected_area, _ = GEOD.polygon_area_perimeter([121.4, 121.41, 121.41, 121.4], [31.2, 31.2, 31.21, 31.21])
    assert area == pytest.approx(abs(expected_area), rel=1e-6)


def test_projected_crs_drops_geography_casts(con):
    prepared = prepare_query(
        "SELECT a.id, b.id FROM planning.sites a JOIN planning.sites b"
        " ON a.id < b.id AND ST_DWithin(a.geometry::geography, b.geometry::geography, 500)",
        dialect="postgres",
        tables={"planning.sites"},
        geographic=False,
    )
    assert "FLIP" not in prepared.sql.upper() and "SPHEROID" not in prepared.sql.upper()
    assert con.execute(prepared.sql).fetchall() == [(1, 2)]


def test_kelvin_sign_cte_does_not_shadow_in_duckdb(con):
    """Why the guard folds ASCII only: DuckDB does not treat U+212A as 'k'."""
    sql = 'WITH "duc\u212adb_tables" AS (SELECT 1 AS x) SELECT count(*) FROM duckdb_tables'
    assert con.execute(sql).fetchone()[0] > 1  # the system view, not the CTE
    with pytest.raises(QueryRefused, match="system table duckdb_tables"):
        prepare_query(sql, tables=ALLOWED)


def test_spatial_allow_list_names_exist_and_exclude_file_readers(con):
    rewritten = {"st_setsrid", "st_distancesphere", "st_geogfromtext", "st_geographyfromtext", "st_geogpoint"}
    spatial = {name for name in ALLOWED_FUNCTIONS if name.startswith("st_")} - rewritten
    known = {row[0].lower() for row in con.execute("SELECT DISTINCT function_name FROM duckdb_functions()").fetchall()}
    assert spatial <= known, sorted(spatial - known)
    assert not {"st_read", "st_readosm", "st_readshp", "st_read_meta", "st_drivers"} & ALLOWED_FUNCTIONS


# ---------------------------------------------------------------------------- refused

REFUSED_CASES = [
    ("duckdb", "DROP TABLE civil_affairs.elderly_care", "DROP TABLE statements are not allowed"),
    ("duckdb", "DELETE FROM civil_affairs.elderly_care", "DELETE statements are not allowed"),
    ("postgres", "UPDATE civil_affairs.elderly_care SET name = 'x'", "UPDATE statements are not allowed"),
    ("mysql", "INSERT INTO civil_affairs.elderly_care (id) VALUES (9)", "INSERT statements are not allowed"),
    ("duckdb", "CREATE TABLE emergency.copy AS SELECT * FROM emergency.shelters", "CREATE TABLE AS statements"),
    ("duckdb", "CREATE VIEW v AS SELECT 1", "CREATE VIEW statements"),
    ("duckdb", "ALTER TABLE civil_affairs.elderly_care ADD COLUMN x INT", "ALTER"),
    ("duckdb", "TRUNCATE civil_affairs.elderly_care", "TRUNCATE statements"),
    ("postgres", "MERGE INTO civil_affairs.elderly_care t USING emergency.shelters s ON t.id = s.id"
     " WHEN MATCHED THEN DELETE", "MERGE statements"),
    ("duckdb", "SELECT 1; DROP TABLE civil_affairs.elderly_care", "only one statement per query"),
    ("duckdb", "SELECT 1 /* ; */ ; DROP TABLE civil_affairs.elderly_care", "only one statement per query"),
    ("duckdb", "SELECT 1; EXPORT DATABASE '/tmp/dump'", "only one statement per query"),
    ("tsql", "DECLARE @x INT = 1; SELECT @x", "only one statement per query"),
    ("duckdb", "SELECT * FROM read_csv('/etc/passwd')", "reading files is not allowed"),
    ("duckdb", "SELECT * FROM read_csv_auto('/etc/passwd')", "reading files is not allowed"),
    ("duckdb", "SELECT * FROM '/etc/passwd'", "reading files is not allowed"),
    ("duckdb", "SELECT * FROM 'https://example.com/data.parquet'", "reading files is not allowed"),
    ("duckdb", "SELECT * FROM 'data.csv'", "reading files is not allowed"),
    ("duckdb", "SELECT * FROM read_parquet('s3://bucket/*.parquet')", "reading files is not allowed"),
    ("duckdb", "SELECT * FROM read_text('/etc/passwd')", "reading files is not allowed"),
    ("duckdb", "SELECT content FROM read_blob('/etc/passwd')", "reading files is not allowed"),
    ("duckdb", "SELECT * FROM glob('/home/*')", "reading files is not allowed"),
    ("duckdb", "SELECT * FROM st_read('/data/parcels.shp')", "reading files is not allowed"),
    ("duckdb", "SELECT * FROM ST_ReadOSM('/data/city.osm.pbf')", "reading files is not allowed"),
    ("duckdb", "SELECT * FROM sqlite_scan('/data/x.db', 't')", "reading files is not allowed"),
    ("duckdb", "SELECT (SELECT count(*) FROM read_csv('/etc/passwd'))", "reading files is not allowed"),
    ("duckdb", "SELECT * FROM query_table('civil_affairs.secret_registry')", "table function query_table() is not allowed"),
    ("duckdb", "SELECT * FROM range(1000000000)", "is not allowed: only catalog tables"),
    ("mysql", "SELECT LOAD_FILE('/etc/passwd')", "function load_file is not allowed in catalog queries"),
    ("postgres", "SELECT pg_read_file('/etc/passwd')", "function pg_read_file is not allowed in catalog queries"),
    ("duckdb", "COPY civil_affairs.elderly_care TO '/tmp/out.csv'", "COPY statements are not allowed"),
    ("duckdb", "COPY (SELECT 1) TO '/tmp/out.csv'", "COPY statements are not allowed"),
    ("duckdb", "ATTACH '/tmp/other.db' AS other", "ATTACH statements are not allowed"),
    ("duckdb", "DETACH lake", "DETACH statements are not allowed"),
    ("duckdb", "INSTALL httpfs", "INSTALL statements are not allowed"),
    ("duckdb", "LOAD httpfs", "LOAD statements are not allowed"),
    ("duckdb", "PRAGMA database_list", "PRAGMA statements are not allowed"),
    ("duckdb", "SET enable_external_access = true", "SET statements are not allowed"),
    ("duckdb", "CALL duckdb_tables()", "CALL statements are not allowed"),
    ("duckdb", "EXPORT DATABASE '/tmp/dump'", "EXPORT statements are not allowed"),
    ("duckdb", "IMPORT DATABASE '/tmp/dump'", "IMPORT statements are not allowed"),
    ("duckdb", "CREATE SECRET s3 (TYPE s3, KEY_ID 'x', SECRET 'y')", "CREATE SECRET statements are not allowed"),
    ("duckdb", "USE memory", "USE statements are not allowed"),
    ("duckdb", "VACUUM", "VACUUM statements are not allowed"),
    ("duckdb", "CHECKPOINT", "CHECKPOINT statements are not allowed"),
    ("duckdb", "BEGIN TRANSACTION", "BEGIN statements are not allowed"),
    ("duckdb", "COMMIT", "COMMIT statements are not allowed"),
    ("duckdb", "DESCRIBE civil_affairs.elderly_care", "DESCRIBE statements are not allowed"),
    ("duckdb", "SHOW TABLES", "SHOW statements are not allowed"),
    ("duckdb", "SUMMARIZE civil_affairs.elderly_care", "SUMMARIZE statements are not allowed"),
    ("duckdb", "SELECT * FROM (DESCRIBE civil_affairs.secret_registry)", "DESCRIBE is not allowed inside a query"),
    ("mysql", "LOAD DATA INFILE '/etc/passwd' INTO TABLE civil_affairs.elderly_care", "LOAD statements are not allowed"),
    ("duckdb", "SELECT * FROM emergency.shelters WHERE id = ?", "variables and parameters (?) are not allowed"),
    ("mysql", "SELECT @@version", "variables and parameters (@@version) are not allowed"),
    ("spark", "SELECT * FROM csv.`/etc/passwd`", "reading files is not allowed"),
    ("tsql", "EXEC xp_cmdshell 'dir'", "statements are not allowed"),
    ("postgres", "WITH gone AS (DELETE FROM civil_affairs.elderly_care RETURNING *) SELECT * FROM gone",
     "DELETE is not allowed inside a query"),
    ("postgres", "SELECT * INTO emergency.copy FROM emergency.shelters", "SELECT ... INTO is not allowed"),
    ("duckdb", "SELECT * FROM emergency.shelters FOR UPDATE", "FOR UPDATE/SHARE is not allowed"),
    ("duckdb", "SELECT * FROM emergency.nope", "table emergency.nope is not in the catalog"),
    ("duckdb", "SELECT * FROM emergency.shelter", "did you mean emergency.shelters?"),
    ("duckdb", "SELECT * FROM information_schema.tables", "system table information_schema.tables is not available"),
    ("postgres", "SELECT * FROM pg_catalog.pg_tables", "system table pg_catalog.pg_tables is not available"),
    ("sqlite", "SELECT * FROM sqlite_master", "system table sqlite_master is not available"),
    ("duckdb", "SELECT * FROM duckdb_settings", "system table duckdb_settings is not available"),
    ("duckdb", "SELECT * FROM duckdb_tables()", "table function duckdb_tables() is not allowed"),
    ("duckdb", "SELECT * FROM elderly_care", "name tables as <department>.<dataset>, e.g. civil_affairs.elderly_care"),
    ("duckdb", "SELECT * FROM memory.civil_affairs.elderly_care", "database 'memory' is not available"),
    ("duckdb", "SELECT * FROM lake.civil_affairs.elderly_care.extra", "is not a catalog table"),
    ("duckdb", "SELECT name FROM emergency.shelters UNION SELECT name FROM civil_affairs.secret_registry",
     "table civil_affairs.secret_registry is not in the catalog"),
    ("duckdb", "SELECT * FROM emergency.shelters WHERE id IN (SELECT id FROM (SELECT id FROM catalog.runs))",
     "table catalog.runs is not in the catalog"),
    ("duckdb", "SELECT (SELECT max(name) FROM civil_affairs.secret_registry) FROM emergency.shelters",
     "table civil_affairs.secret_registry is not in the catalog"),
    ("duckdb", "WITH x AS (SELECT * FROM catalog.runs) SELECT * FROM x", "table catalog.runs is not in the catalog"),
    ("duckdb", "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", "unknown table 'b'"),
    ("duckdb", "SELECT * FROM (WITH t AS (SELECT 1) SELECT * FROM t) s, t", "unknown table 't'"),
    ("duckdb", "SELECT getenv('HOME')", "function getenv is not allowed in catalog queries"),
    ("postgres", "SELECT current_setting('threads')", "function current_setting is not allowed in catalog queries"),
    ("duckdb", "SELECT name FROM emergency.shelters WHERE name = getvariable('x')", "function getvariable is not allowed"),
    ("duckdb", "SELECT main.getenv('HOME')", "method-style call .getenv() is not allowed"),
    ("duckdb", "SELECT version()", "function current_version is not allowed in catalog queries"),
    ("duckdb", "SELECT * FROM civil_aff\u0430irs.elderly_care", "is not in the catalog"),  # Cyrillic а
    ("duckdb", 'WITH "duc\u212adb_tables" AS (SELECT 1) SELECT * FROM duckdb_tables', "system table duckdb_tables"),
    ("duckdb", "SELECT * FROM civil_affairs.elderly_care AT (VERSION => 1)", "time travel"),
    ("duckdb", "", "the query is empty"),
    ("duckdb", "  ;  ", "the query is empty"),
    ("duckdb", "-- just a comment", "the query is empty"),
    ("duckdb", "SELEC name FROM emergency.shelters", "could not parse the query as duckdb SQL"),
    ("klingon", "SELECT 1", "supported dialects: duckdb, postgres, mysql, sqlite, tsql, oracle, hive, spark"),
    ("duckdb", "PIVOT emergency.shelters ON name USING sum(capacity)", "PIVOT statements are not allowed"),
]


@pytest.mark.parametrize(
    "dialect, sql, message",
    [pytest.param(*case, id=f"{i:02d}-{case[1][:40]}") for i, case in enumerate(REFUSED_CASES)],
)
def test_refused(dialect, sql, message):
    with pytest.raises(QueryRefused) as info:
        prepare_query(sql, dialect=dialect, tables=ALLOWED)
    assert message in str(info.value)
    assert len(str(info.value)) < 400


def test_refused_statements_leave_the_catalog_unchanged(con):
    before = _counts(con)
    refused = 0
    for dialect, sql, _ in REFUSED_CASES:
        try:
            prepare_query(sql, dialect=dialect, tables=ALLOWED)
        except QueryRefused:
            refused += 1
    assert refused == len(REFUSED_CASES)
    assert _counts(con) == before
    assert before["civil_affairs.elderly_care"] == len(CARE)
    assert before["emergency.shelters"] == len(SHELTERS)


def test_refusal_is_a_value_error_and_tables_are_normalised():
    assert issubclass(QueryRefused, ValueError)
    prepared = prepare_query(
        "SELECT * FROM Emergency.Shelters s JOIN LAKE.civil_affairs.elderly_care c ON s.id = c.id"
        " JOIN emergency.shelters t ON t.id = s.id",
        tables=["EMERGENCY.SHELTERS", "lake.civil_affairs.elderly_care"],
    )
    assert prepared.tables == ("civil_affairs.elderly_care", "emergency.shelters")
