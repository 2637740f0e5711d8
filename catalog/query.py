"""Run a user's read-only SQL on the catalog, in a sandbox that holds only what the query may read.

1. The sqlglot guard (catalog/guard.py) allows one SELECT over catalog tables
   with allow-listed functions and translates it to DuckDB SQL.
2. catalog/lineage.py resolves every column it reads (a query it cannot
   resolve is refused); for a consumer (``--as``) catalog/enforce.py refuses
   a blocked column by name and decides each column's form.
3. The audit record is written *before* anything runs, with the full
   statement (catalog/audit.py), and completed however the query ends.
4. A worker process (catalog/worker.py) builds a fresh in-memory DuckDB with
   only those tables and columns, in the form the consumer may read them
   (catalog/sandbox.py), locks it (no files, no network, no settings), runs
   the query wrapped to print geometries as text (a syntax tree, never text
   pasted together) and is killed at the deadline.

A guard bypass, whatever it is, runs in a sandbox without the catalog, its
metadata, grants, audit log or files: it reads at most what the consumer was
given for this query.

``as_of`` (a version number or a time) reads the catalog as it was then: the
sandbox's tables are copied from that snapshot.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
from sqlglot import exp

from twinhub.catalog import audit, enforce, worker
from twinhub.catalog.enforce import AsConsumer
from twinhub.catalog.guard import PreparedQuery, QueryRefused, prepare_query
from twinhub.catalog.lake import Lake, UnknownVersion
from twinhub.catalog.lineage import columns_read
from twinhub.catalog.sandbox import Limits, extensions_for
from twinhub.catalog.worker import QueryFailed, QueryKilled, QueryTimeout

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_ROWS = 100_000
USER_SQL_ERRORS = worker.USER_SQL_ERRORS
OUTCOMES = {QueryRefused: "refused", UnknownVersion: "refused", QueryTimeout: "timeout", QueryFailed: "error",
            QueryKilled: "killed"}


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    prepared: PreparedQuery
    truncated: bool = False  # more rows matched than max_rows; only the first max_rows are here
    max_rows: int = DEFAULT_MAX_ROWS
    as_of: int | dt.datetime | None = None


def locked_connection(lake: Lake, as_of: int | dt.datetime | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only catalog connection with file access off (for the hub's own fixed SQL, e.g. catalog/near.py;
    users' SQL runs in the sandbox instead)."""
    con = lake.connect(read_only=True, snapshot=as_of)
    folder = exp.Array(expressions=[exp.Literal.string(f"{lake.data}/")]).sql(dialect="duckdb")
    con.execute(f"SET allowed_directories = {folder}")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


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
    limits: Limits | None = None,
) -> QueryResult:
    """Guard, translate and run ``sql``; raise QueryRefused, QueryTimeout, QueryFailed, QueryKilled or
    UnknownVersion.

    With ``consumer``, only what the consumer's grants allow is read (catalog/enforce.py); without, the
    local steward reads everything, through the same sandbox. ``limits`` caps the query's memory,
    threads and temporary disk (default :class:`~catalog.sandbox.Limits`). Every call is audited before
    it runs and completed after, whatever its outcome.
    """
    if max_rows < 1:
        raise QueryRefused(f"--max-rows must be at least 1, got {max_rows}")
    entry = audit.AuditEntry(action=action, statement=sql, dialect=dialect, department=department,
                             as_of=_shown(as_of))
    if consumer is not None:  # who asked stays the actor; whose grants applied is the consumer
        entry.department = consumer.consumer.department or department
        entry.consumer = consumer.consumer.name
    con = lake.connect()  # writable: the audit's records; and, without as_of, the catalog to plan on
    try:
        with audit.audited(lake, entry, OUTCOMES, deferred=True, con=con) as run:
            plan, prepared = _plan(lake, sql, dialect, geographic, as_of, max_rows, entry, consumer,
                                   limits or Limits(), None if as_of is not None else con)
            answer = worker.execute(plan, timeout_s, on_ready=run.start)  # recorded before the query runs
            truncated = len(answer.rows) > max_rows
            rows = answer.rows[:max_rows]
            entry.rows_returned, entry.truncated = len(rows), truncated
    finally:
        con.close()
    return QueryResult(columns=answer.columns, rows=rows, prepared=prepared, truncated=truncated,
                       max_rows=max_rows, as_of=as_of)


def _plan(lake: Lake, sql: str, dialect: str, geographic: bool, as_of: int | dt.datetime | None, max_rows: int,
          entry: audit.AuditEntry, consumer: AsConsumer | None, limits: Limits,
          current: duckdb.DuckDBPyConnection | None = None) -> tuple[worker.Plan, PreparedQuery]:
    """What the worker runs: the guarded SQL and the sandbox's tables, read on ``current`` (the catalog
    now) or a connection to the ``as_of`` snapshot closed here. The worker never uses either."""
    con = current or lake.connect(read_only=True, snapshot=as_of)
    try:
        prepared = prepare_query(sql, dialect=dialect, tables=Lake.tables(con), geographic=geographic)
        entry.tables = list(prepared.tables)
        schemas = audit.table_schemas(con, prepared.tables)
        reads = columns_read(prepared.sql, schemas)
        entry.columns = [f"{t}.{c}" for t, columns in reads.items() for c in columns]
        decisions, rows, protect = None, None, None
        if consumer is not None:
            access = consumer.access(con, lake, time_travel=as_of is not None)
            masking = enforce._masking()
            protect = masking.protect_sql if masking else None
            decisions = enforce.check(prepared.sql, schemas, access.decide, protect)
            rows = access.readable_inputs
    finally:
        if con is not current:
            con.close()
    tables = enforce.sandbox_tables(reads, decisions, rows, protect)
    pseudonymize = any(d.protection == "pseudonymize" for t in (decisions or {}).values() for d in t.values()
                       if d.kind == "protected")
    return worker.Plan(lake, as_of, tables, prepared.sql, max_rows, limits, pseudonymize,
                       extensions_for(prepared.sql)), prepared


def _shown(as_of: int | dt.datetime | None) -> str | None:
    if as_of is None:
        return None
    return as_of.isoformat() if isinstance(as_of, dt.datetime) else str(as_of)


__all__ = ["DEFAULT_MAX_ROWS", "Limits", "QueryFailed", "QueryKilled", "QueryRefused", "QueryResult", "QueryTimeout",
           "UnknownVersion", "run_query"]
