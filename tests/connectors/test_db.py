"""Database sources against the real servers on this machine: PostgreSQL 15 + PostGIS and MariaDB.

Each test module run creates its own uniquely named tables (dropped at the end), loaded
with the New Taipei Banqiao car parks (tw_newtaipei_banqiao_parking, EPSG:3826) from
shared/data/realworld; attribution in that folder's SOURCE.txt.
"""

from __future__ import annotations

import csv
import pathlib
import uuid

import numpy as np
import psycopg
import pymysql
import pyproj
import pytest
import yaml
from sqlglot import exp

from twinhub.connectors import ConfigProblem, NetworkPolicy, SourceError
from twinhub.connectors import open_source as _open_source
from twinhub.connectors.db.drivers import MySQL
from twinhub.standards.crs import transform_geometries

REALWORLD = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data" / "realworld"
BANQIAO_CSV = REALWORLD / "tw_newtaipei_banqiao_parking" / "BanqiaoPublicParkingSpaceInfo.csv"
GEOD = pyproj.Geod(ellps="WGS84")
PASSWORD = "Pw-7q!x9Zr2-distinctive"  # must never show up anywhere
CHUNK = 7

READER = "twinhub_reader"  # a user that can only read: the hub refuses superusers and FILE/SUPER accounts
BASE = {
    "postgres": {"format": "postgres", "host": "127.0.0.1", "port": 5432, "database": "test", "user": READER},
    "mysql": {"format": "mysql", "host": "127.0.0.1", "port": 3306, "database": "test", "user": READER},
}
LOCAL = NetworkPolicy(allow_hosts=("127.0.0.1",))  # database hosts fall under the network policy


def open_source(spec: dict, base_dir=None, policy=LOCAL):
    """The servers run on loopback, which the hub allows only when told to (as twinhub.yaml would)."""
    return _open_source(spec, base_dir, policy)


def create_readers() -> None:
    """The read-only users the tests connect as (the servers' own accounts are superusers)."""
    with psycopg.connect(host="127.0.0.1", dbname="test", user="postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER,)).fetchone():
            conn.execute(f"CREATE ROLE {READER} LOGIN")
        conn.execute(f"GRANT pg_read_all_data TO {READER}")
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE USER IF NOT EXISTS '{READER}'@'%'")
            cur.execute(f"GRANT SELECT ON test.* TO '{READER}'@'%'")
    finally:
        conn.close()


def parking_rows() -> list[dict]:
    with BANQIAO_CSV.open(encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


class Database:
    """A connection to one server, for the tests' own tables."""

    def __init__(self, dialect: str):
        self.dialect = dialect
        if dialect == "postgres":
            self.conn = psycopg.connect(host="127.0.0.1", dbname="test", user="postgres", autocommit=True)
            self.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        else:
            self.conn = pymysql.connect(host="127.0.0.1", user="root", password="", database="test", autocommit=True, charset="utf8mb4")
        self.tables: list[str] = []

    def execute(self, sql: str, params=None) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)

    def executemany(self, sql: str, rows: list) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(sql, rows)

    def new_table(self, prefix: str) -> str:
        name = f"twinhub_{prefix}_{uuid.uuid4().hex[:8]}"
        self.tables.append(name)
        return name

    def parking(self) -> str:
        """A table of the 113 car parks: attributes, TW97 x/y numbers and a point geometry with SRID 3826."""
        name = self.new_table("parking")
        geom = "geometry(Point, 3826)" if self.dialect == "postgres" else "POINT REF_SYSTEM_ID=3826"
        self.execute(
            f"CREATE TABLE {name} (id INT, name VARCHAR(100), address VARCHAR(200), total_car INT, "
            f"tw97x DOUBLE PRECISION, tw97y DOUBLE PRECISION, price NUMERIC(6, 2), updated_at TIMESTAMP, geom {geom})"
            + (" CHARSET utf8mb4" if self.dialect == "mysql" else "")
        )
        mark = "%s"
        self.executemany(
            f"INSERT INTO {name} VALUES ({mark}, {mark}, {mark}, {mark}, {mark}, {mark}, {mark}, '2024-05-01 08:00:00', "
            f"ST_GeomFromText({mark}, 3826))",
            [(int(r["ID"]), r["NAME"], r["ADDRESS"], int(r["TOTALCAR"] or 0), float(r["TW97X"]), float(r["TW97Y"]), 1.5,
              f"POINT({r['TW97X']} {r['TW97Y']})") for r in parking_rows()],
        )
        return name

    def drop(self) -> None:
        for name in self.tables:
            kind = "SEQUENCE" if "_seq_" in name else "TABLE"
            self.execute(f"DROP {kind} IF EXISTS {name}")
        self.conn.close()


@pytest.fixture(scope="module")
def databases():
    create_readers()
    opened = {d: Database(d) for d in BASE}
    tables = {d: db.parking() for d, db in opened.items()}
    yield opened, tables
    for db in opened.values():
        db.drop()


def spec(dialect: str, tables: dict, how: str) -> dict:
    table = tables[dialect]
    return {
        "table-geometry": {"table": table, "geometry": "geom"},
        "query-geometry": {"query": f"SELECT id, name, address, total_car, price, geom FROM {table} WHERE id > 0", "geometry": "GEOM"},
        "query-xy": {"query": f"SELECT id, name, tw97x, tw97y FROM {table}", "x": "tw97x", "y": "tw97y", "crs": "EPSG:3826"},
    }[how] | BASE[dialect]


CASES = [(d, how) for d in BASE for how in ("table-geometry", "query-geometry", "query-xy")]


@pytest.mark.parametrize(("dialect", "how"), CASES, ids=[f"{d}-{h}" for d, h in CASES])
def test_every_row_is_streamed_in_chunks_and_the_station_car_park_lands_at_banqiao_station(databases, dialect, how):
    _, tables = databases
    connector = open_source(spec(dialect, tables, how))
    connector.check()
    chunks = list(connector.chunks(CHUNK))
    assert [len(c.frame) for c in chunks] == [CHUNK] * 16 + [1]
    assert np.concatenate([c.source_rows for c in chunks]).tolist() == list(range(1, 114))
    frame = np.concatenate([c.frame.to_dict("records") for c in chunks])
    geometry = np.concatenate([c.geometry for c in chunks])
    assert "geom" not in connector.columns() and set(connector.columns()) == set(chunks[0].frame.columns)
    crs = connector.config.crs or connector.crs()
    assert crs == "EPSG:3826"
    # Banqiao station (25°00'51"N 121°27'49"E); its car park is under the ~300 m station complex
    (row,) = [i for i, r in enumerate(frame) if r["name"] == "板橋車站地下停車場"]
    point = transform_geometries(geometry[[row]], crs, "EPSG:4326")[0]
    assert GEOD.inv(point.x, point.y, 121.4636, 25.0142)[2] < 300


@pytest.mark.parametrize("dialect", list(BASE))
def test_values_arrive_as_numbers_and_text(databases, dialect):
    _, tables = databases
    frame = next(open_source(spec(dialect, tables, "table-geometry")).chunks(5)).frame
    assert frame["id"].dtype.kind == "i" and frame["tw97x"].dtype.kind == "f"
    assert frame["price"].iloc[0] == "1.50" and frame["updated_at"].iloc[0] == "2024-05-01 08:00:00"


# --------------------------------------------------------------------------- only read-only SELECTs

# (id, dialect, query, problem)
REFUSED_QUERIES = [
    ("delete", "postgres", "DELETE FROM parks", "not DELETE"),
    ("two-statements", "postgres", "SELECT 1; DROP TABLE parks", "exactly one SELECT"),
    ("delete-in-a-cte", "postgres", "WITH gone AS (DELETE FROM parks RETURNING *) SELECT * FROM gone", "contains DELETE"),
    ("select-into", "postgres", "SELECT * INTO copy_of_parks FROM parks", "SELECT ... INTO"),
    ("for-update", "postgres", "SELECT * FROM parks FOR UPDATE", "FOR UPDATE"),
    ("set", "postgres", "SET search_path = evil", "only a read-only SELECT"),
    ("mysql-backticks-are-not-postgres", "postgres", "SELECT `name` FROM parks", "not valid postgres SQL"),
    ("update", "mysql", "UPDATE parks SET name = 'x'", "not UPDATE"),
    ("insert-select", "mysql", "INSERT INTO parks SELECT * FROM parks", "INSERT"),
    ("drop", "mysql", "DROP TABLE parks", "only a read-only SELECT"),
    ("select-into-outfile", "mysql", "SELECT * FROM parks INTO OUTFILE '/tmp/x'", "not valid mysql SQL"),
    ("call", "mysql", "CALL purge_parks()", "only a read-only SELECT"),
]


@pytest.mark.parametrize(("dialect", "query", "problem"), [pytest.param(*c[1:], id=c[0]) for c in REFUSED_QUERIES])
def test_anything_but_a_read_only_select_is_refused(dialect, query, problem):
    with pytest.raises(ConfigProblem) as info:
        open_source(BASE[dialect] | {"query": query})
    assert problem in info.value.problems["source.query"], info.value.problems


@pytest.mark.parametrize(
    ("dialect", "query"),
    [
        ("postgres", "WITH big AS (SELECT * FROM t WHERE total_car > 100) SELECT * FROM big"),
        ("postgres", "SELECT id FROM a UNION ALL SELECT id FROM b"),
        ("postgres", "SELECT id, geom::geometry FROM t -- a comment"),
        ("mysql", "SELECT `id`, `name` FROM t LIMIT 10"),
    ],
)
def test_read_only_selects_in_the_departments_dialect_are_accepted(dialect, query):
    assert open_source(BASE[dialect] | {"query": query}).config.query == query


@pytest.mark.parametrize(
    ("changes", "key", "says"),
    [
        ({"password": PASSWORD}, "source.password", "password_env"),
        ({"password_env": "my password"}, "source.password_env", "not the name of an environment variable"),
        ({}, "source.table", "either source.table or source.query"),
        ({"table": "t", "query": "SELECT 1"}, "source.table", "not both"),
        ({"table": "t; DROP TABLE x"}, "source.table", "not a postgres table name"),
        ({"table": "t WHERE 1=1"}, "source.table", "write a query in source.query"),
        ({"table": "t", "path": "x.csv"}, "source.path", "not a key of postgres sources"),
    ],
)
def test_bad_database_config_names_the_key_and_never_echoes_a_password(changes, key, says):
    with pytest.raises(ConfigProblem) as info:
        open_source(BASE["postgres"] | changes)
    assert says in info.value.problems[key], info.value.problems
    assert PASSWORD not in str(info.value) and "password," not in info.value.problems.get("source.path", "")


# --------------------------------------------------------------------------- failures, without the password

# (id, dialect, changes, texts the error must contain)
CONNECTION_FAILURES = [
    ("postgres-nothing-listening", "postgres", {"port": 5999}, ["127.0.0.1:5999", "database 'test'", "user 'twinhub_reader'", "Connection refused", "$PARKING_DB_PASSWORD"]),
    ("mysql-nothing-listening", "mysql", {"port": 3999}, ["127.0.0.1:3999", "cannot connect to mysql", "server is running"]),
    ("mysql-wrong-password", "mysql", {}, ["Access denied for user 'twinhub_reader'", "127.0.0.1:3306", "$PARKING_DB_PASSWORD"]),
    ("postgres-unknown-database", "postgres", {"database": "no_such_db"}, ["database 'no_such_db'", "does not exist"]),
    ("postgres-unknown-table", "postgres", {"table": "no_such_table"}, ["the query failed", "no_such_table", "source.table"]),
    ("postgres-unknown-geometry", "postgres", {"geometry": "the_geom"}, ["source.geometry names column 'the_geom'", "geom"]),
]


@pytest.mark.parametrize(("dialect", "changes", "says"), [pytest.param(*c[1:], id=c[0]) for c in CONNECTION_FAILURES])
def test_connection_failures_name_the_server_not_the_password(databases, monkeypatch, dialect, changes, says):
    _, tables = databases
    monkeypatch.setenv("PARKING_DB_PASSWORD", PASSWORD)
    source = spec(dialect, tables, "table-geometry") | {"password_env": "PARKING_DB_PASSWORD"} | changes
    with pytest.raises(SourceError) as info:
        connector = open_source(source)
        connector.check()
        list(connector.chunks())
    for text in says:
        assert text in str(info.value)
    assert PASSWORD not in str(info.value)
    # the driver's error is not carried along (Dagster would record it with the message)
    assert info.value.__cause__ is None and (info.value.__context__ is None or info.value.__suppress_context__)


def test_an_unset_password_variable_is_named(databases, monkeypatch):
    _, tables = databases
    monkeypatch.delenv("PARKING_UNSET_PASSWORD", raising=False)
    with pytest.raises(SourceError, match="PARKING_UNSET_PASSWORD \\(source.password_env\\) is not set"):
        open_source(spec("postgres", tables, "table-geometry") | {"password_env": "PARKING_UNSET_PASSWORD"}).check()


def test_rows_with_another_srid_are_an_error_naming_the_row(databases):
    opened, _ = databases
    db = opened["postgres"]
    name = db.new_table("mixed")
    db.execute(f"CREATE TABLE {name} (id INT, geom geometry)")
    db.execute(f"INSERT INTO {name} VALUES (1, 'SRID=3826;POINT(296882 2767068)'), (2, 'SRID=4326;POINT(121.46 25.01)')")
    connector = open_source(BASE["postgres"] | {"query": f"SELECT * FROM {name} ORDER BY id", "geometry": "geom"})
    with pytest.raises(SourceError, match="row 2 has SRID 4326 but the first geometry has EPSG:3826.*ST_Transform"):
        list(connector.chunks())


def test_a_declared_crs_contradicting_the_srid_is_an_error(databases):
    _, tables = databases
    with pytest.raises(SourceError, match="source.crs says EPSG:4326 but the geometries carry SRID 3826"):
        open_source(spec("postgres", tables, "table-geometry") | {"crs": "EPSG:4326"}).check()


def test_geographic_points_from_mariadb_arrive_longitude_first(databases):
    """SRID 4326 in MariaDB (this machine's server): read as stored, x = longitude."""
    opened, _ = databases
    db = opened["mysql"]
    name = db.new_table("lonlat")
    db.execute(f"CREATE TABLE {name} (id INT, geom POINT REF_SYSTEM_ID=4326)")
    db.execute(f"INSERT INTO {name} VALUES (1, ST_GeomFromText('POINT(121.4636 25.0142)', 4326))")
    connector = open_source(BASE["mysql"] | {"table": name, "geometry": "geom"})
    (chunk,) = list(connector.chunks())
    assert (chunk.geometry[0].x, chunk.geometry[0].y) == (121.4636, 25.0142)
    assert MySQL.wkb(db.conn, exp.column("geom")).sql(dialect="mysql") == "ST_ASBINARY(geom)"  # no axis-order


@pytest.mark.parametrize(("server", "asks_long_lat"), [
    ("5.5.5-10.11.6-MariaDB-0+deb12u1", False), ("10.11.6-MariaDB", False), ("5.7.44", False),
    ("8.0.36", True), ("9.1.0", True),
])
def test_mysql_8_and_later_are_asked_for_longitude_first(server, asks_long_lat):
    """MySQL 8 writes geographic SRIDs latitude first unless asked: only its SQL carries 'axis-order=long-lat'.
    (No MySQL 8 runs here: the choice depends only on the server's version string.)"""
    class Server:
        def get_server_info(self) -> str:
            return server

    sql = MySQL.wkb(Server(), exp.column("geom")).sql(dialect="mysql")
    assert sql == ("ST_ASBINARY(geom, 'axis-order=long-lat')" if asks_long_lat else "ST_ASBINARY(geom)")


def test_the_server_session_is_read_only_too(databases):
    """A SELECT that writes (advancing a sequence) passes the SQL check but not the server."""
    opened, _ = databases
    sequence = opened["postgres"].new_table("seq")
    opened["postgres"].execute(f"CREATE SEQUENCE {sequence}")
    opened["postgres"].execute(f"GRANT USAGE, UPDATE ON SEQUENCE {sequence} TO {READER}")  # only read-only stops it
    connector = open_source(BASE["postgres"] | {"query": f"SELECT nextval('{sequence}') AS n"})
    with pytest.raises(SourceError, match="read-only transaction"):
        list(connector.chunks())


def test_an_empty_result_is_an_error_not_an_empty_dataset(databases):
    _, tables = databases
    source = BASE["mysql"] | {"query": f"SELECT * FROM {tables['mysql']} WHERE id < 0", "geometry": "geom"}
    with pytest.raises(SourceError, match="the result has no rows"):
        list(open_source(source).chunks())


# --------------------------------------------------------------------------- fingerprints


@pytest.mark.parametrize("dialect", list(BASE))
@pytest.mark.parametrize("watermark", [None, "updated_at"], ids=["row-hash", "watermark"])
def test_fingerprint_changes_with_the_rows_and_only_then(databases, dialect, watermark):
    opened, _ = databases
    db = opened[dialect]
    name = db.parking()
    source = BASE[dialect] | {"table": name, "geometry": "geom"} | ({"watermark": watermark} if watermark else {})
    before = open_source(source).fingerprint()
    # the same rows stored in another order (an update rewrites the row elsewhere): same fingerprint
    db.execute(f"UPDATE {name} SET name = name WHERE id = 10056")
    assert open_source(source).fingerprint() == before
    if watermark:
        db.execute(f"UPDATE {name} SET total_car = 1, updated_at = '2024-06-01 00:00:00' WHERE id = 10056")
    else:
        db.execute(f"UPDATE {name} SET total_car = total_car + 1 WHERE id = 10056")
    changed = open_source(source).fingerprint()
    assert changed != before
    db.execute(f"DELETE FROM {name} WHERE id = 10008")
    assert open_source(source).fingerprint() not in (before, changed)


# --------------------------------------------------------------------------- through the hub: no password anywhere


def allow_loopback(hub):
    """The hub, its twinhub.yaml allowing the loopback servers (http.allow_hosts)."""
    from twinhub.hub.home import Hub

    config = hub.home / "twinhub.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("\nhttp:\n", "\nhttp: {allow_hosts: [127.0.0.1]}\n"),
                      encoding="utf-8")
    return Hub.open(hub.home)


def _manifest(tmp: pathlib.Path, dataset: str, source: dict) -> pathlib.Path:
    path = tmp / f"{dataset}.yaml"
    path.write_text(yaml.safe_dump({
        "department": "emergency", "dataset": dataset, "title": "Shelters from a database", "standard": "facility",
        "source": source, "fields": {"facility_id": "code", "name": "name", "category": "kind"},
    }, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.slow
def test_a_database_password_never_reaches_the_registry_catalog_or_dagster(hub, tmp_path, databases, monkeypatch):
    """PostGIS publishes through Dagster with the password in the environment; MariaDB, with a wrong
    one, fails the run. Neither the registered manifests, the catalog nor Dagster's storage hold it.
    (The department also publishes its sample shelters file, as departments mix sources.)"""
    from twinhub import sample
    from twinhub.hub.registration import register
    from twinhub.pipelines.runner import run_datasets

    hub = allow_loopback(hub)

    opened, _ = databases
    pg, maria = opened["postgres"], opened["mysql"]
    shelters = pg.new_table("shelters")
    pg.execute(f"CREATE TABLE {shelters} (code TEXT, name TEXT, kind TEXT, geom geometry(Point, 4326))")
    pg.execute(f"INSERT INTO {shelters} VALUES ('S1', 'People''s Square', 'shelter', 'SRID=4326;POINT(121.4737 31.2304)'),"
               " ('S2', 'Century Park', 'shelter', 'SRID=4326;POINT(121.5512 31.2196)')")
    points = maria.new_table("points")
    maria.execute(f"CREATE TABLE {points} (code VARCHAR(9), name VARCHAR(99), kind VARCHAR(20), geom POINT REF_SYSTEM_ID=4326)")
    maria.execute(f"INSERT INTO {points} VALUES ('P1', 'Bund', 'assembly point', ST_GeomFromText('POINT(121.4903 31.2400)', 4326))")

    monkeypatch.setenv("EMERGENCY_PG_PASSWORD", PASSWORD)  # trust authentication ignores it, but it is sent
    monkeypatch.setenv("EMERGENCY_MARIA_PASSWORD", "")  # root's real (empty) password, for registering
    register(hub, _manifest(tmp_path, "db_shelters", BASE["postgres"] | {"table": shelters, "geometry": "geom", "password_env": "EMERGENCY_PG_PASSWORD"}))
    register(hub, _manifest(tmp_path, "db_points", BASE["mysql"] | {"table": points, "geometry": "geom", "password_env": "EMERGENCY_MARIA_PASSWORD"}))
    register(hub, sample.CITY / "emergency" / "shelters.yaml")
    monkeypatch.setenv("EMERGENCY_MARIA_PASSWORD", PASSWORD)  # now wrong: the run must fail

    summary = run_datasets(hub)
    outcomes = {o.dataset: o for o in summary.outcomes}
    assert outcomes["emergency.db_shelters"].ok and outcomes["emergency.db_shelters"].rows_published == 2
    failed = outcomes["emergency.db_points"]
    assert not failed.ok and "Access denied" in failed.error and "127.0.0.1:3306" in failed.error
    assert PASSWORD not in failed.error

    con = hub.lake.connect(read_only=True)
    try:
        runs = con.execute("SELECT * FROM catalog.runs").fetchall()
        (lon, lat), = con.execute("SELECT ST_X(geometry), ST_Y(geometry) FROM emergency.db_shelters WHERE facility_id = 'S1'").fetchall()
    finally:
        con.close()
    assert runs and PASSWORD not in repr(runs)
    assert GEOD.inv(lon, lat, 121.4737, 31.2304)[2] < 10  # WGS 84 -> CGCS2000: the same place within metres
    for path in [*hub.registry_dir.rglob("*"), *hub.dagster_home.rglob("*"), *hub.catalog_dir.rglob("*")]:
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
