"""Finding 7 (database sources), against the real PostgreSQL and MariaDB of this machine.

Database sources ignored the network policy; their queries could call server-side file functions
(``pg_read_file``, ``LOAD_FILE``) and read system catalogues (``pg_authid``, ``mysql.global_priv``)
when the account was privileged. Now hosts fall under ``http.allow_hosts``, privileged accounts
are refused, and such functions and catalogues are refused in the query's syntax tree.
"""

from __future__ import annotations

import psycopg
import pymysql
import pytest

from twinhub.connectors import NetworkPolicy, SourceError, open_source
from twinhub.hub.manifest import ManifestError
from twinhub.hub.registration import register
from twinhub.hub.registry import registered

from .source_support import hub_with, write_manifest

LOCAL = NetworkPolicy(allow_hosts=("127.0.0.1",))
PG = {"format": "postgres", "host": "127.0.0.1", "port": 5432, "database": "test"}
MARIA = {"format": "mysql", "host": "127.0.0.1", "port": 3306, "database": "test"}
READER, FILE_READER, SUPER_MEMBER = "twinhub_reader", "twinhub_file_reader", "twinhub_super_member"


@pytest.fixture(scope="module")
def accounts():
    """A table of shelters on both servers; a read-only user and one that may read the server's files."""
    table = "twinhub_sec_shelters"
    with psycopg.connect(host="127.0.0.1", dbname="test", user="postgres", autocommit=True) as pg:
        pg.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        pg.execute(f"DROP TABLE IF EXISTS {table}")
        pg.execute(f"CREATE TABLE {table} (shelter_id text, name text, type text, geom geometry(Point, 4326))")
        pg.execute(f"INSERT INTO {table} VALUES ('S1', 'Square', 'shelter', 'SRID=4326;POINT(121.47 31.23)')")
        for role in (READER, FILE_READER):
            if not pg.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                pg.execute(f"CREATE ROLE {role} LOGIN")
            pg.execute(f"GRANT SELECT ON {table} TO {role}")
        pg.execute(f"GRANT pg_read_server_files TO {FILE_READER}")
        if not pg.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (SUPER_MEMBER,)).fetchone():
            pg.execute(f"CREATE ROLE {SUPER_MEMBER} LOGIN NOINHERIT")
        pg.execute(f"GRANT SELECT ON {table} TO {SUPER_MEMBER}")
        pg.execute(f"GRANT postgres TO {SUPER_MEMBER}")  # not a superuser itself, but SET ROLE postgres away
    maria = pymysql.connect(host="127.0.0.1", user="root", password="", database="test", autocommit=True)
    with maria.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"CREATE TABLE {table} (shelter_id VARCHAR(9), name VARCHAR(99), type VARCHAR(20), "
                    "geom POINT REF_SYSTEM_ID=4326)")
        cur.execute(f"INSERT INTO {table} VALUES ('S1', 'Square', 'shelter', ST_GeomFromText('POINT(121.47 31.23)', 4326))")
        for user in (READER, FILE_READER):
            cur.execute(f"CREATE USER IF NOT EXISTS '{user}'@'%'")
            cur.execute(f"GRANT SELECT ON test.* TO '{user}'@'%'")
        cur.execute(f"GRANT FILE ON *.* TO '{FILE_READER}'@'%'")
    yield table
    with psycopg.connect(host="127.0.0.1", dbname="test", user="postgres", autocommit=True) as pg:
        pg.execute(f"DROP TABLE IF EXISTS {table}")
        pg.execute(f"REVOKE pg_read_server_files FROM {FILE_READER}")
        pg.execute(f"REVOKE postgres FROM {SUPER_MEMBER}")
    with maria.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"REVOKE FILE ON *.* FROM '{FILE_READER}'@'%'")
    maria.close()


@pytest.mark.parametrize("base", [PG, MARIA], ids=["postgres", "mariadb"])
def test_a_database_on_loopback_is_refused_unless_the_hub_allows_it(accounts, base):
    source = base | {"user": READER, "table": accounts, "geometry": "geom"}
    with pytest.raises(SourceError, match="refused source.host 127.0.0.1: 127.0.0.1 is a loopback address.*http.allow_hosts"):
        open_source(source).check()  # the default policy: public hosts only
    open_source(source, policy=LOCAL).check()


# (id, server, user, what the refusal says about the account)
PRIVILEGED = [
    ("postgres-superuser", PG, "postgres", "is a superuser"),
    ("postgres-read-server-files", PG, FILE_READER, "is a member of pg_read_server_files"),
    ("postgres-member-of-a-superuser", PG, SUPER_MEMBER, "is a member of the superuser role postgres"),
    ("mariadb-root", MARIA, "root", "holds"),
    ("mariadb-file-privilege", MARIA, FILE_READER, "holds FILE on *.*"),
]


@pytest.mark.parametrize(("base", "user", "says"), [pytest.param(*c[1:], id=c[0]) for c in PRIVILEGED])
def test_a_privileged_account_is_refused_and_a_reader_is_not(accounts, base, user, says):
    with pytest.raises(SourceError) as info:
        open_source(base | {"user": user, "table": accounts, "geometry": "geom"}, policy=LOCAL).check()
    assert f"refused, user '{user}' {says}" in str(info.value) and "source.user" in str(info.value)
    reader = open_source(base | {"user": READER, "table": accounts, "geometry": "geom"}, policy=LOCAL)
    assert sum(len(c.frame) for c in reader.chunks()) == 1


POINT_PG = "ST_SetSRID(ST_MakePoint(121.47, 31.23), 4326)"
POINT_MARIA = "ST_GeomFromText('POINT(121.47 31.23)', 4326)"
# (id, server, source keys, the refusal's key, what it names): every one registered on the old code
REACHES = [
    ("pg-read-file", PG, {"query": f"SELECT 'F1' AS shelter_id, pg_read_file('/etc/hostname') AS name, "
                                   f"'shelter' AS type, {POINT_PG} AS geom"}, "source.query", "pg_read_file()"),
    ("pg-read-file-qualified", PG, {"query": f"SELECT 'F1' AS shelter_id, pg_catalog.pg_read_binary_file('/etc/hostname')::text "
                                             f"AS name, 'shelter' AS type, {POINT_PG} AS geom"}, "source.query", "pg_read_binary_file()"),
    ("pg-ls-dir", PG, {"query": f"SELECT d AS shelter_id, d AS name, 'shelter' AS type, {POINT_PG} AS geom "
                                "FROM pg_ls_dir('/etc') AS d"}, "source.query", "pg_ls_dir()"),
    ("pg-lo-import", PG, {"query": f"SELECT lo_import('/etc/hostname')::text AS shelter_id, 'x' AS name, 'shelter' AS type, "
                                   f"{POINT_PG} AS geom"}, "source.query", "lo_import()"),
    ("pg-sql-as-text", PG, {"query": f"SELECT 'F1' AS shelter_id, query_to_xml('select * from pg_authid', true, true, '')::text "
                                     f"AS name, 'shelter' AS type, {POINT_PG} AS geom"}, "source.query", "query_to_xml()"),
    ("pg-authid", PG, {"query": f"SELECT rolname::text AS shelter_id, rolpassword AS name, 'shelter' AS type, {POINT_PG} AS geom "
                                "FROM pg_authid"}, "source.query", "pg_authid"),
    ("pg-shadow-qualified", PG, {"query": f"SELECT usename::text AS shelter_id, passwd AS name, 'shelter' AS type, "
                                          f"{POINT_PG} AS geom FROM pg_catalog.pg_shadow"}, "source.query", "pg_shadow"),
    ("pg-authid-as-table", PG, {"table": "pg_catalog.pg_authid"}, "source.table", "pg_authid"),
    ("maria-load-file", MARIA, {"query": f"SELECT 'F1' AS shelter_id, LOAD_FILE('/etc/hostname') AS name, 'shelter' AS type, "
                                         f"{POINT_MARIA} AS geom"}, "source.query", "load_file()"),
    ("maria-global-priv", MARIA, {"query": f"SELECT User AS shelter_id, Priv AS name, 'shelter' AS type, {POINT_MARIA} AS geom "
                                           "FROM mysql.global_priv"}, "source.query", "mysql.global_priv"),
    ("maria-user-privileges", MARIA, {"query": f"SELECT GRANTEE AS shelter_id, PRIVILEGE_TYPE AS name, 'shelter' AS type, "
                                               f"{POINT_MARIA} AS geom FROM information_schema.user_privileges"},
     "source.query", "information_schema.user_privileges"),
    ("maria-into-outfile", MARIA, {"query": f"SELECT 'F1' AS shelter_id, 'x' AS name, 'shelter' AS type, {POINT_MARIA} AS geom "
                                            "INTO OUTFILE '/tmp/twinhub-outfile'"}, "source.query", "not valid mysql SQL"),
]


@pytest.mark.parametrize(("base", "keys", "key", "names"), [pytest.param(*c[1:], id=c[0]) for c in REACHES])
def test_server_side_functions_and_catalogues_are_refused_at_register(tmp_path, accounts, base, keys, key, names):
    """As the servers' own superusers (which the old code accepted): refused by the query's tree first."""
    hub = hub_with(tmp_path / "home", http={"allow_hosts": ["127.0.0.1"]})
    user = "postgres" if base is PG else "root"
    source = base | {"user": user, "geometry": "geom"} | keys
    with pytest.raises(ManifestError) as info:
        register(hub, write_manifest(tmp_path / "m", "reach", source))
    assert names in info.value.problems.get(key, ""), info.value.problems
    assert registered(hub) == []
