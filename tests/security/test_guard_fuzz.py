"""Differential fuzz of the query guard against DuckDB's own parser (bounded: a few seconds).

Statements are assembled from pieces an attacker would use (quoted identifiers with quotes inside,
comments, string literals holding SQL, system tables, table functions, file names, CTEs shadowing
catalog tables, date units). Whatever the guard accepts must parse in DuckDB (json_serialize_sql) to
the same catalog tables the guard reported, with no table function: the guard and the engine agree on
what a query reads. DuckDB's own reading of the user's SQL (when it can read it) must agree too.
"""

from __future__ import annotations

import json
import string

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twinhub.catalog.guard import QueryRefused, prepare_query

ALLOWED = {"water.p", "health.c"}
TABLES = ["water.p", "lake.water.p", '"Water"."P"', "health.c", "HEALTH.C", "catalog.audit", "main.p", "p",
          "information_schema.tables", "pg_catalog.pg_class", "duckdb_settings()", "read_csv('/etc/passwd')",
          "'/etc/passwd'", "glob('*')", "range(3)", "q", "__ducklake_metadata_lake.main.twinhub_grants",
          "(SELECT * FROM health.c)", "(VALUES (1), (2))", "unnest([1, 2])"]
NAMES = ["a", "name", '"a""b"', '"x"") FROM health.c --"', "t.a", "*", "COLUMNS(*)", "t", "q.a"]
LITERALS = ["1", "'x'", "'; SELECT * FROM health.c --'", "'it''s'", "NULL", "'/*'", "$$x$$"]
FUNCTIONS = ["count(*)", "lower({e})", "levenshtein({e}, {e})", "DATEADD(day, 1, {e})", "date_trunc('month', {e})",
             "ST_AsText({e})", "getenv('HOME')", "current_setting('threads')", "{e} + INTERVAL 1 DAY",
             "(SELECT max(a) FROM health.c)", "EXISTS (SELECT 1 FROM water.p)"]
COMMENTS = ["", " /* ; DROP TABLE x */ ", " -- c\n", " /* nested /* */ */ "]

_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


@st.composite
def expressions(draw, depth: int = 0):
    kind = draw(st.sampled_from(["name", "literal", "function"] if depth < 2 else ["name", "literal"]))
    if kind == "name":
        return draw(st.sampled_from(NAMES))
    if kind == "literal":
        return draw(st.sampled_from(LITERALS))
    return draw(st.sampled_from(FUNCTIONS)).replace("{e}", draw(expressions(depth + 1)))


@st.composite
def statements(draw):
    items = draw(st.lists(expressions(), min_size=1, max_size=3))
    alias = draw(st.sampled_from(["", " AS x", ' AS "y""z"', ' AS "a"") FROM (SELECT 1) --"']))
    source = draw(st.sampled_from(TABLES))
    sql = f"SELECT {', '.join(items)}{alias} FROM {source} t"
    if draw(st.booleans()):
        sql += f" JOIN {draw(st.sampled_from(TABLES))} u ON true"
    if draw(st.booleans()):
        sql += f" WHERE {draw(expressions())} IS NOT NULL"
    if draw(st.booleans()):
        cte = draw(st.sampled_from(TABLES))
        sql = f"WITH q AS (SELECT * FROM {cte}) {sql}"
    if draw(st.booleans()):
        sql += f" UNION ALL SELECT {draw(expressions())} FROM {draw(st.sampled_from(TABLES))}"
    return draw(st.sampled_from(COMMENTS)) + sql + draw(st.sampled_from(["", ";", "; SELECT 1", " --"]))


def duckdb_reads(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[set[str], set[str]] | None:
    """(catalog tables, table functions) DuckDB's parser sees in ``sql``; None if it cannot parse it."""
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    if tree.get("error"):
        return None
    tables, functions, ctes = set(), set(), set()
    _walk(tree, tables, functions, ctes)
    return {t for t in tables if "." in t or t not in ctes}, functions


def _walk(node, tables: set, functions: set, ctes: set) -> None:
    if isinstance(node, dict):
        if node.get("type") == "BASE_TABLE":
            parts = [node.get("schema_name") or "", node.get("table_name") or ""]
            tables.add(".".join(p for p in parts if p).translate(_ASCII_FOLD))
        if node.get("type") == "TABLE_FUNCTION":
            functions.add(str((node.get("function") or {}).get("function_name")))
        for entry in (node.get("cte_map") or {}).get("map", []) if isinstance(node.get("cte_map"), dict) else []:
            ctes.add(str(entry.get("key", "")).translate(_ASCII_FOLD))
        for value in node.values():
            _walk(value, tables, functions, ctes)
    elif isinstance(node, list):
        for value in node:
            _walk(value, tables, functions, ctes)


@pytest.fixture(scope="module")
def parser():
    con = duckdb.connect()
    yield con
    con.close()


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sql=statements())
def test_what_the_guard_accepts_duckdb_reads_the_same_way(parser, sql):
    try:
        prepared = prepare_query(sql, tables=ALLOWED)
    except QueryRefused:
        return
    out = duckdb_reads(parser, prepared.sql)
    assert out is not None, f"the guard's SQL does not parse in DuckDB: {prepared.sql!r}"
    tables, functions = out
    assert tables == set(prepared.tables), (sql, prepared.sql)
    assert functions <= {"unnest"}, (sql, functions)
    original = duckdb_reads(parser, sql)
    if original is not None:  # DuckDB reads the user's own SQL as touching the same tables
        assert original[0] == set(prepared.tables), (sql, original)
        assert original[1] <= {"unnest"}, (sql, original)
