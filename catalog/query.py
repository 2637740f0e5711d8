"""Run a user's read-only SQL on the catalog.

Two locks, so that one mistake is not enough: the sqlglot guard allows only a
single SELECT over catalog tables with allow-listed functions, and the
connection itself is read-only with file access switched off (only the
catalog's own data folder is readable) and its configuration locked.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import duckdb

from catalog.guard import PreparedQuery, QueryRefused, prepare_query
from catalog.lake import Lake

DEFAULT_TIMEOUT_S = 60.0


class QueryTimeout(RuntimeError):
    pass


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    prepared: PreparedQuery


def locked_connection(lake: Lake) -> duckdb.DuckDBPyConnection:
    con = lake.connect(read_only=True)
    con.execute(f"SET allowed_directories = ['{lake.data}/']")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _display_sql(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """Wrap ``sql`` so geometry columns come back as WKT text."""
    described = con.execute(f"DESCRIBE ({sql})").fetchall()
    geometry = [name for name, kind, *_ in described if str(kind).upper().startswith("GEOMETRY")]
    if not geometry:
        return sql
    replace = ", ".join(f'ST_AsText("{c}") AS "{c}"' for c in geometry)
    return f"SELECT * REPLACE ({replace}) FROM ({sql})"


def run_query(
    lake: Lake, sql: str, dialect: str = "duckdb", timeout_s: float = DEFAULT_TIMEOUT_S, geographic: bool = True
) -> QueryResult:
    """Guard, translate and run ``sql``; raise QueryRefused or QueryTimeout."""
    con = locked_connection(lake)
    try:
        prepared = prepare_query(sql, dialect=dialect, tables=Lake.tables(con), geographic=geographic)
        timer = threading.Timer(timeout_s, con.interrupt)
        timer.start()
        try:
            cursor = con.execute(_display_sql(con, prepared.sql))
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        except duckdb.InterruptException as exc:
            raise QueryTimeout(f"the query ran longer than {timeout_s:g} s and was cancelled") from exc
        finally:
            timer.cancel()
        return QueryResult(columns=columns, rows=rows, prepared=prepared)
    finally:
        con.close()


__all__ = ["QueryRefused", "QueryResult", "QueryTimeout", "run_query"]
