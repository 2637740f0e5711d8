"""Run a user's read-only SQL on the catalog.

Two locks, so that one mistake is not enough: the sqlglot guard allows only a
single SELECT over catalog tables with allow-listed functions, and the
connection itself is read-only with file access switched off (only the
catalog's own data folder is readable) and its configuration locked. A time
limit cancels long queries, a row limit caps what comes back, and every
attempt, refused or not, is written to the audit log (catalog/audit.py).

``as_of`` (a version number or a time) attaches the catalog as it was then:
every table, ``catalog.*`` included, reads that snapshot. The guard is not
involved, so time travel cannot be used to reach anything else.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

import duckdb

from twinhub.catalog import audit
from twinhub.catalog.enforce import AsConsumer, restrict_query
from twinhub.catalog.guard import PreparedQuery, QueryRefused, prepare_query
from twinhub.catalog.lake import Lake, UnknownVersion
from twinhub.errors import UserError

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_ROWS = 100_000


class QueryTimeout(UserError, RuntimeError):
    pass


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    prepared: PreparedQuery
    truncated: bool = False  # more rows matched than max_rows; only the first max_rows are here
    max_rows: int = DEFAULT_MAX_ROWS
    as_of: int | dt.datetime | None = None


def locked_connection(lake: Lake, as_of: int | dt.datetime | None = None) -> duckdb.DuckDBPyConnection:
    con = lake.connect(read_only=True, snapshot=as_of)
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
    lake: Lake,
    sql: str,
    dialect: str = "duckdb",
    timeout_s: float = DEFAULT_TIMEOUT_S,
    geographic: bool = True,
    as_of: int | dt.datetime | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    department: str | None = None,
    action: str = "query",
    consumer: AsConsumer | None = None,
) -> QueryResult:
    """Guard, translate and run ``sql``; raise QueryRefused, QueryTimeout or UnknownVersion.

    With ``consumer``, only what the consumer's grants allow is read (catalog/enforce.py).
    Every call is audited, whatever its outcome, with the consumer's name.
    """
    if max_rows < 1:
        raise QueryRefused(f"--max-rows must be at least 1, got {max_rows}")
    entry = audit.AuditEntry(action=action, statement=sql, dialect=dialect, department=department,
                             as_of=_shown(as_of))
    if consumer is not None:  # who asked stays the actor; whose grants applied is the consumer
        entry.department = consumer.consumer.department or department
        entry.consumer = consumer.consumer.name
    outcomes = {QueryRefused: "refused", UnknownVersion: "refused", QueryTimeout: "timeout", QueryFailed: "error"}
    with audit.audited(lake, entry, outcomes):
        result = _run(lake, sql, dialect, timeout_s, geographic, as_of, max_rows, entry, consumer)
    return result


def _run(lake: Lake, sql: str, dialect: str, timeout_s: float, geographic: bool,
         as_of: int | dt.datetime | None, max_rows: int, entry: audit.AuditEntry,
         consumer: AsConsumer | None = None) -> QueryResult:
    con = locked_connection(lake, as_of)
    try:
        prepared = prepare_query(sql, dialect=dialect, tables=Lake.tables(con), geographic=geographic)
        entry.tables = list(prepared.tables)
        schemas = audit.table_schemas(con, prepared.tables)
        entry.columns = audit.touched_columns(prepared.sql, schemas)
        if consumer is not None:
            prepared = restrict_query(con, lake, prepared, consumer, schemas, time_travel=as_of is not None)
        timer = threading.Timer(timeout_s, con.interrupt)
        timer.start()
        try:
            cursor = con.execute(f"SELECT * FROM ({_display_sql(con, prepared.sql)}) LIMIT {int(max_rows) + 1}")
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        except duckdb.InterruptException as exc:
            raise QueryTimeout(f"the query ran longer than {timeout_s:g} s and was cancelled") from exc
        except USER_SQL_ERRORS as exc:  # e.g. a misspelt column: DuckDB's message without its echo of the SQL
            raise QueryFailed(_first_lines(str(exc))) from None
        finally:
            timer.cancel()
        truncated = len(rows) > max_rows
        rows = rows[:max_rows]
        entry.rows_returned, entry.truncated = len(rows), truncated
        return QueryResult(columns=columns, rows=rows, prepared=prepared, truncated=truncated,
                           max_rows=max_rows, as_of=as_of)
    finally:
        con.close()


class QueryFailed(UserError, ValueError):
    """DuckDB could not run the (guarded) query as written: a column or type that does not fit."""


USER_SQL_ERRORS = (duckdb.BinderException, duckdb.CatalogException, duckdb.ConversionException,
                   duckdb.InvalidInputException, duckdb.OutOfRangeException)


def _first_lines(message: str) -> str:
    """DuckDB's message up to its ``LINE 1: <sql>`` echo (which shows the hub's wrapping, not the user's SQL)."""
    kept = []
    for line in message.splitlines():
        if line.startswith("LINE "):
            break
        kept.append(line.strip())
    return "the query failed: " + " ".join(k for k in kept if k)


def _shown(as_of: int | dt.datetime | None) -> str | None:
    if as_of is None:
        return None
    return as_of.isoformat() if isinstance(as_of, dt.datetime) else str(as_of)


__all__ = ["DEFAULT_MAX_ROWS", "QueryFailed", "QueryRefused", "QueryResult", "QueryTimeout", "UnknownVersion", "run_query"]
