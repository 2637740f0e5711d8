"""Issue 15, findings 1, 9, 11, 12 and 14 (DATEADD units, unsigned extensions), performed for real.

Each attack below succeeded on the query service as it was (a geometry wrapper pasted from column names,
run on a connection with the catalog attached; a deadline DuckDB could not enforce; an audit written
after the fact, cut at 20,000 characters, with the actor from TWINHUB_USER). Each must now be harmless.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import duckdb
import pytest

from twinhub.catalog import worker
from twinhub.catalog.enforce import AsConsumer
from twinhub.catalog.grants import Consumer, Grant, save_grant
from twinhub.catalog.guard import QueryRefused, prepare_query
from twinhub.catalog.query import QueryFailed, QueryKilled, QueryTimeout, run_query
from twinhub.catalog.sandbox import Limits, SandboxTable, table_select

from .query_city import CARE, CONTACTS, PUMPS, build_city

KEY = "5a" * 32
TODAY = dt.date(2027, 3, 1)
OS_USER = pwd.getpwuid(os.getuid()).pw_name
MALLORY = AsConsumer(Consumer("user:mallory"), TODAY)  # an internal grant on city.facility, nothing else


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TWINHUB_PSEUDONYM_KEY", KEY)
        hub = build_city(tmp_path_factory.mktemp("attacks"))
        save_grant(hub.lake, Grant("user:mallory", "city.facility", "internal", dt.date(2027, 6, 30), "steward",
                                   "2027-01-01"))
        yield hub


def steward(hub, sql: str) -> list[tuple]:
    return run_query(hub.lake, sql).rows


def audit_of(hub, statement: str) -> list[dict]:
    """The raw audit records of ``statement`` (the metadata table: statement_sha256 and query_id too)."""
    con = hub.lake.connect(read_only=True)
    try:
        cursor = con.execute(f"SELECT * FROM {hub.lake.audit_table} WHERE statement_sha256 = ? ORDER BY happened_at",
                             [hashlib.sha256(statement.encode()).hexdigest()])
        return [dict(zip([d[0] for d in cursor.description], row)) for row in cursor.fetchall()]
    finally:
        con.close()


# --------------------------------------------------------------------------- finding 1: the "-alias breakout

def breakout(rest: str) -> str:
    """A query whose geometry column's alias closes the old wrapper and appends ``rest`` to its SQL."""
    name = f'a") AS "a") FROM (SELECT ST_Point(1,2) AS "a"){rest} --'
    return 'SELECT ST_Point(1, 2) AS "' + name.replace('"', '""') + '"'


READS = {
    "restricted rows": f", (SELECT name, capacity FROM {CONTACTS})",
    "other users' statements": ", (SELECT actor, statement FROM catalog.audit)",
    "grants": ", (SELECT * FROM __ducklake_metadata_lake.main.twinhub_grants)",
    "catalog metadata": ", (SELECT path FROM __ducklake_metadata_lake.main.ducklake_data_file)",
    "settings": ", (SELECT name, value FROM duckdb_settings())",
}


@pytest.mark.parametrize("what", sorted(READS))
def test_a_quote_in_an_alias_reads_nothing_but_its_own_column(city, what):
    sql = breakout(READS[what] + ")")
    result = run_query(city.lake, sql, consumer=MALLORY)
    alias = sql.split(" AS ", 1)[1][1:-1].replace('""', '"')
    assert result.columns == [alias]  # one column, named as written: the alias is an identifier, not SQL
    assert result.rows == [("POINT (1 2)",)]
    [record] = audit_of(city, sql)
    assert record["status"] == "ok" and record["consumer"] == "user:mallory" and record["tables"] == "[]"


def _published_files(hub) -> list[pathlib.Path]:
    return sorted(hub.lake.data.rglob("*.parquet"))


@pytest.mark.parametrize("target", ["new file", "published file"])
def test_a_second_statement_cannot_write_into_the_catalog(city, target):
    files = _published_files(city)
    before = {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    path = city.lake.data / "health" / "care_contacts" / "planted.parquet" if target == "new file" else files[0]
    # on the old wrapper: ...FROM (SELECT ST_Point(1,2) AS "a")); COPY ... TO '<path>'; SELECT 1 AS a --...
    sql = breakout(f"); COPY (SELECT 1 AS x) TO '{path}' (FORMAT parquet); SELECT 1 AS a")
    result = run_query(city.lake, sql, consumer=MALLORY)
    assert len(result.columns) == 1 and result.rows == [("POINT (1 2)",)]  # one column, nothing run after it
    assert _published_files(city) == files
    assert {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in files} == before


# --------------------------------------------------------------------------- the sandbox, guard bypassed

@pytest.fixture
def sandbox(city):
    """The sandbox user:mallory's ``SELECT name FROM water.pumping_stations`` runs in, built for real, with
    raw SQL (no guard) run on it: a future guard bypass."""
    plan = worker.Plan(city.lake, None, [SandboxTable(PUMPS, table_select(PUMPS, _columns("name")))],
                       f"SELECT name FROM {PUMPS}", 10, Limits(memory="256MB", threads=1, temp="64MB"))
    temp = tempfile.mkdtemp(prefix="twinhub-test-")
    con = worker._build(plan, temp)
    yield con
    con.close()
    shutil.rmtree(temp, ignore_errors=True)


def _columns(*names: str):
    from sqlglot import exp

    return [exp.column(exp.to_identifier(n, quoted=True)) for n in names]


def _bypasses(hub) -> dict[str, str]:
    data, metadata = hub.lake.data, hub.lake.root / "metadata.sqlite"
    return {
        "catalog table": f"SELECT * FROM {CONTACTS}",
        "catalog prefix": f"SELECT * FROM lake.{CONTACTS}",
        "audit": "SELECT * FROM catalog.audit",
        "grants": "SELECT * FROM __ducklake_metadata_lake.main.twinhub_grants",
        "parquet of the catalog": f"SELECT * FROM read_parquet('{data}/**/*.parquet')",
        "a published file by name": f"SELECT * FROM '{_published_files(hub)[0]}'",
        "passwd": "SELECT * FROM read_csv('/etc/passwd')",
        "attach the metadata": f"ATTACH '{metadata}' AS m (TYPE sqlite)",
        "attach the lake": f"ATTACH 'ducklake:sqlite:{metadata}' AS l",
        "copy out": f"COPY (SELECT 1) TO '{data}/planted.csv'",
        "export": f"EXPORT DATABASE '{data}/dump'",
        "install": "INSTALL httpfs",
        "load": "LOAD httpfs",
        "load a file": f"LOAD '{data}/evil.duckdb_extension'",
        "set": "SET enable_external_access = true",
        "reset": "RESET lock_configuration",
        "unsigned": "SET allow_unsigned_extensions = true",
        "memory": "SET memory_limit = '100GB'",
        "python variable": "SELECT * FROM plan",
        "glob": "SELECT * FROM glob('/*')",
        "url": "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')",
    }


BYPASSES = ["catalog table", "catalog prefix", "audit", "grants", "parquet of the catalog", "a published file by name",
            "passwd", "attach the metadata", "attach the lake", "copy out", "export", "install", "load",
            "load a file", "set", "reset", "unsigned", "memory", "python variable", "glob", "url"]


@pytest.mark.parametrize("attack", BYPASSES)
def test_a_guard_bypass_finds_nothing_in_the_sandbox(city, sandbox, attack):
    sql = _bypasses(city)[attack]
    with pytest.raises(duckdb.Error):
        sandbox.execute(sql).fetchall()
    assert not (city.lake.data / "planted.csv").exists() and not (city.lake.data / "dump").exists()


def test_the_sandbox_holds_the_granted_table_and_its_settings_are_locked(city, sandbox):
    assert sandbox.execute("SELECT database_name, schema_name, table_name FROM duckdb_tables()").fetchall() == \
        [("memory", "water", "pumping_stations")]
    assert sandbox.execute("SELECT * FROM water.pumping_stations").description[0][0] == "name"
    assert len(sandbox.execute("SELECT * FROM water.pumping_stations").description) == 1  # only the column read
    assert {d for (d,) in sandbox.execute("SELECT database_name FROM duckdb_databases()").fetchall()} == \
        {"memory", "system", "temp"}
    settings = dict(sandbox.execute("SELECT name, value FROM duckdb_settings()").fetchall())
    assert (settings["enable_external_access"], settings["lock_configuration"]) == ("false", "true")
    assert (settings["allow_unsigned_extensions"], settings["autoload_known_extensions"],
            settings["autoinstall_known_extensions"]) == ("false", "false", "false")
    assert settings["threads"] == "1" and settings["memory_limit"].startswith("244.1 MiB")
    assert settings["max_temp_directory_size"].startswith("61.0 MiB")
    assert str(city.lake.root) not in json.dumps(settings)  # no path of the catalog in the sandbox


# --------------------------------------------------------------------------- finding 11: the deadline

LEVENSHTEIN = ("SELECT max(levenshtein(repeat('a', 4000) || a.name, repeat('b', 4000) || b.name)) "
               f"FROM {PUMPS} a, {PUMPS} b")


def test_a_function_duckdb_cannot_interrupt_is_stopped_at_the_deadline(city):
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="longer than 1 s"):
        run_query(city.lake, LEVENSHTEIN, timeout_s=1)
    assert time.monotonic() - started < 1 + 4  # the worker is killed; setup and audit take the rest
    assert [r["status"] for r in audit_of(city, LEVENSHTEIN)] == ["timeout"]
    assert not [p for p in multiprocessing.active_children() if p.name == "twinhub-query"]


def test_a_query_over_its_memory_cap_fails_without_taking_the_machine(city):
    sql = ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 20000) "
           "SELECT length(string_agg(repeat('x', 10000), '')) FROM r")  # 200 MB of text
    with pytest.raises(QueryFailed, match="Out of Memory"):
        run_query(city.lake, sql, limits=Limits(memory="64MB", threads=1, temp="16MB"))
    assert run_query(city.lake, sql, limits=Limits(memory="1GB")).rows == [(200_000_000,)]


# --------------------------------------------------------------------------- finding 12: the audit

def test_a_padded_comment_is_audited_in_full(city):
    sql = "/*" + "x" * 30_000 + f"*/ SELECT name, district FROM {CARE} WHERE name LIKE '%a%'"
    run_query(city.lake, sql, consumer=AsConsumer(Consumer("civil_affairs"), TODAY))
    [record] = audit_of(city, sql)
    assert record["statement"] == sql and len(record["statement"]) > 30_000
    assert record["status"] == "ok" and json.loads(record["columns"]) == [f"{CARE}.district", f"{CARE}.name"]


def test_the_actor_is_the_os_user_whatever_twinhub_user_says(city, monkeypatch):
    monkeypatch.setenv("TWINHUB_USER", "someone_else")
    sql = f"SELECT count(*) FROM {PUMPS} WHERE 'actor-probe' <> ''"
    run_query(city.lake, sql)
    assert [r["actor"] for r in audit_of(city, sql)] == [OS_USER]


def test_a_killed_worker_is_audited_as_killed(city):
    sql = LEVENSHTEIN.replace("4000", "4100")
    outcome: list[BaseException] = []
    thread = threading.Thread(target=lambda: _catch(outcome, run_query, city.lake, sql, timeout_s=60))
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if [r for r in audit_of(city, sql) if r["status"] == "started"]:
            break
        time.sleep(0.05)
    [child] = [p for p in multiprocessing.active_children() if p.name == "twinhub-query"]
    os.kill(child.pid, signal.SIGKILL)
    thread.join(30)
    assert outcome and isinstance(outcome[0], QueryKilled)
    [record] = audit_of(city, sql)
    assert record["status"] == "killed" and record["duration_ms"] is not None


def _catch(into: list, fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - the test looks at it
        into.append(exc)


def test_a_killed_cli_leaves_its_started_record_and_no_query_running(city, processes):
    sql = LEVENSHTEIN.replace("4000", "4200")
    cli = subprocess.Popen([sys.executable, "-m", "twinhub", "--home", str(city.home), "query", sql],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not audit_of(city, sql):
        time.sleep(0.1)
    workers = processes.children(cli.pid)
    cli.send_signal(signal.SIGKILL)
    cli.wait(10)
    [record] = audit_of(city, sql)
    assert record["status"] == "started" and record["actor"] == OS_USER
    time.sleep(0.5)
    assert workers and not [w for w in workers if processes.alive(w)]  # the worker died with its parent


@pytest.mark.parametrize("sql, expected", [
    (f"SELECT t FROM {CARE} t LIMIT 1", "every"),
    (f"SELECT COLUMNS('name') FROM {CARE}", "every"),
    (f"SELECT * FROM {CARE}", "every"),
    (f"SELECT count(*) FROM {CARE}", "none"),
    (f"SELECT name FROM {CARE} WHERE capacity > 0", ["capacity", "name"]),
])
def test_columns_read_through_a_row_columns_or_star_are_recorded(city, sql, expected):
    run_query(city.lake, sql)
    every = [c for (c,) in steward(city, f"SELECT name FROM catalog.columns WHERE dataset = '{CARE}'")]
    want = {"every": every, "none": []}.get(expected, expected) if isinstance(expected, str) else expected
    [record] = audit_of(city, sql)[-1:]
    assert json.loads(record["columns"]) == sorted(f"{CARE}.{c}" for c in want)
    assert json.loads(record["tables"]) == [CARE]


def test_a_row_struct_holds_only_what_the_consumer_may_read(city):
    save_grant(city.lake, Grant("civil_affairs", CONTACTS, "internal", dt.date(2027, 6, 30), "steward", "x"))
    [(row,)] = run_query(city.lake, f"SELECT t FROM {CONTACTS} t LIMIT 1",
                         consumer=AsConsumer(Consumer("civil_affairs"), TODAY)).rows
    assert "capacity" not in row and row["facility_id"].startswith("p_") and "*" in row["address"]


# --------------------------------------------------------------------------- finding 9: city layers

def test_a_grant_on_the_city_layer_does_not_open_the_rows_of_a_restricted_input(city):
    seen = dict(run_query(city.lake, "SELECT department, count(*) FROM city.facility GROUP BY 1",
                          consumer=MALLORY).rows)
    everything = dict(steward(city, "SELECT department, count(*) FROM city.facility GROUP BY 1"))
    assert "health" in everything  # the restricted input is in the layer
    assert seen == {d: n for d, n in everything.items() if d != "health"}
    ids = {i for (i,) in run_query(city.lake, "SELECT name FROM city.facility", consumer=MALLORY).rows}
    restricted = {i for (i,) in steward(city, "SELECT name FROM city.facility WHERE department = 'health'")}
    public = {i for (i,) in steward(city, "SELECT name FROM city.facility WHERE department <> 'health'")}
    assert ids == public and not restricted - public & ids


def test_a_grant_on_the_restricted_input_opens_its_rows_in_the_layer(city):
    save_grant(city.lake, Grant("user:trent", "city.facility", "internal", dt.date(2027, 6, 30), "steward", "x"))
    save_grant(city.lake, Grant("user:trent", CONTACTS, "internal", dt.date(2027, 6, 30), "steward", "x"))
    seen = dict(run_query(city.lake, "SELECT department, count(*) FROM city.facility GROUP BY 1",
                          consumer=AsConsumer(Consumer("user:trent"), TODAY)).rows)
    assert seen == dict(steward(city, "SELECT department, count(*) FROM city.facility GROUP BY 1"))


# --------------------------------------------------------------------------- finding 14: DATEADD units

@pytest.mark.parametrize("dialect, sql", [
    ("tsql", "SELECT DATEADD('da''y) x', 1, opened) FROM w.t"),
    ("tsql", 'SELECT DATEADD("minute; DROP TABLE x", 1, opened) FROM w.t'),
    ("mysql", "SELECT TIMESTAMPADD(`day) FROM read_csv('/etc/passwd') --`, 1, opened) FROM w.t"),
    ("postgres", "SELECT EXTRACT(\"epoch) FROM x\" FROM opened) FROM w.t"),
])
def test_a_date_unit_must_be_a_unit(dialect, sql):
    with pytest.raises(QueryRefused, match="is not a date or time unit"):
        prepare_query(sql, dialect=dialect, tables={"w.t"})


@pytest.mark.parametrize("dialect, sql, out", [
    ("tsql", "SELECT DATEADD(dd, 1, opened) FROM w.t", "SELECT opened + INTERVAL 1 DAY FROM w.t"),
    ("tsql", "SELECT DATEDIFF(mi, a, b) FROM w.t",
     "SELECT DATE_DIFF('MINUTE', CAST(a AS TIMESTAMP), CAST(b AS TIMESTAMP)) FROM w.t"),
    ("mysql", "SELECT DATE_SUB(d, INTERVAL 2 WEEK) FROM w.t", "SELECT d - INTERVAL '2' WEEK FROM w.t"),
])
def test_date_units_translate_as_before(dialect, sql, out):
    assert prepare_query(sql, dialect=dialect, tables={"w.t"}).sql == out


def _environment_after_scrub(send) -> None:
    worker._scrub_environment()
    send.send(dict(os.environ))


def test_the_worker_keeps_no_secret_of_the_hubs_environment(monkeypatch):
    monkeypatch.setenv("TWINHUB_PSEUDONYM_KEY", KEY)
    monkeypatch.setenv("PGPASSWORD", "hunter2")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_environment_after_scrub, args=(send,))
    child.start()
    kept = receive.recv()
    child.join(10)
    assert set(kept) <= set(worker.KEPT_ENVIRONMENT) | {k for k in kept if k.startswith("LC_")}
    assert "PATH" in kept and os.environ["PGPASSWORD"] == "hunter2"  # the parent's own is untouched


def test_a_query_whose_columns_cannot_be_resolved_is_refused_and_audited(city):
    sql = f"SELECT q.* FROM {CARE} AS t WHERE 'unresolved' <> ''"
    with pytest.raises(QueryRefused, match="could not be resolved column by column"):
        run_query(city.lake, sql)
    [record] = audit_of(city, sql)
    assert record["status"] == "refused" and record["statement"] == sql
