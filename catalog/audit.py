"""The audit log: every query, lookup and export, refused or not, shown as ``catalog.audit``.

Who (the OS user, or ``TWINHUB_USER``), for which department (``--department``
or ``TWINHUB_DEPARTMENT``), when, the statement, the tables and columns it
touched (sqlglot lineage over the guarded DuckDB SQL), the rows returned and
the outcome. Written after the query ran, on a separate connection (the
query's own is read-only and cannot touch the log), into the catalog's
metadata database (SQLite or PostgreSQL) beside DuckLake's tables: reading
the catalog never makes a new version, and the log travels with the catalog.

    >>> touched_columns("SELECT name FROM water.pumping_stations WHERE category = 'x'",
    ...                 {"water.pumping_stations": {"name": "VARCHAR", "category": "VARCHAR"}})
    ['water.pumping_stations.category', 'water.pumping_stations.name']
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import traverse_scope

from twinhub.catalog.lake import ALIAS, Lake, with_retry

ENV_USER = "TWINHUB_USER"
ENV_DEPARTMENT = "TWINHUB_DEPARTMENT"
MAX_STATEMENT = 20_000  # characters of a statement kept in the log


@dataclass
class AuditEntry:
    action: str  # query | near | export | export-catalog | rollback
    statement: str
    status: str = "ok"  # ok | refused | timeout | error
    dialect: str | None = None
    as_of: str | None = None
    tables: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows_returned: int | None = None
    truncated: bool = False
    message: str | None = None
    duration_ms: float | None = None
    actor: str | None = None
    department: str | None = None
    consumer: str | None = None  # `--as`: the consumer whose grants applied


def current_actor() -> str:
    """Who is asking: ``TWINHUB_USER`` if set, else the operating-system user."""
    name = os.environ.get(ENV_USER)
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def current_department(given: str | None = None) -> str | None:
    return given or os.environ.get(ENV_DEPARTMENT) or None


def record(lake: Lake, entry: AuditEntry) -> None:
    """Append ``entry`` to ``catalog.audit`` (retried while another writer holds the catalog)."""
    values = [
        dt.datetime.now(dt.timezone.utc), entry.actor or current_actor(), current_department(entry.department),
        entry.action, entry.dialect, entry.statement[:MAX_STATEMENT], entry.as_of,
        json.dumps(sorted(set(entry.tables))), json.dumps(sorted(set(entry.columns))), entry.rows_returned,
        entry.truncated, entry.status, (entry.message or "")[:2000] or None, entry.duration_ms, entry.consumer,
    ]
    con = lake.connect()
    try:
        marks = ", ".join("?" * len(values))
        with_retry(lambda: con.execute(f"INSERT INTO {lake.audit_table} VALUES ({marks})", values),
                   what="the audit log")
    finally:
        con.close()


@contextlib.contextmanager
def audited(lake: Lake, entry: AuditEntry, outcomes: dict[type, str] | None = None) -> Iterator[AuditEntry]:
    """Record ``entry`` when the block ends, however it ends: an exception of a type in ``outcomes``
    sets that status (e.g. ``refused``) and its message; any other is an ``error``."""
    clock = time.monotonic()
    try:
        yield entry
    except Exception as exc:
        status = next((s for kind, s in (outcomes or {}).items() if isinstance(exc, kind)), None)
        entry.status = status or "error"
        entry.message = str(exc) if status else f"{type(exc).__name__}: {str(exc)[:500]}"
        raise
    finally:
        entry.duration_ms = round((time.monotonic() - clock) * 1000, 1)
        record(lake, entry)


def table_schemas(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...] | list[str]) -> dict[str, dict[str, str]]:
    """{"schema.table": {column: type}} for ``tables``, read from the attached catalog."""
    out: dict[str, dict[str, str]] = {}
    for name in tables:
        schema, table = name.split(".", 1)
        rows = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? "
            "AND table_name = ? ORDER BY column_index",
            [ALIAS, schema, table],
        ).fetchall()
        out[name] = dict(rows)
    return out


def touched_columns(sql: str, schemas: dict[str, dict[str, str]]) -> list[str]:
    """``schema.table.column`` for every catalog column ``sql`` (DuckDB) reads; [] if lineage fails."""
    nested: dict[str, dict[str, dict[str, str]]] = {}
    for name, columns in schemas.items():
        schema, table = name.split(".", 1)
        nested.setdefault(schema, {})[table] = columns
    try:
        tree = qualify(sqlglot.parse_one(sql, read="duckdb"), schema=nested, dialect="duckdb",
                       validate_qualify_columns=False, quote_identifiers=False)
        found = set()
        for scope in traverse_scope(tree):
            for column in scope.columns:
                source = scope.sources.get(column.table)
                if isinstance(source, exp.Table) and source.db and column.name:
                    found.add(f"{source.db}.{source.name}.{column.name}")
        return sorted(found)
    except (SqlglotError, RecursionError, KeyError, ValueError):
        return []
