"""The audit log: every query, lookup and export, refused or not, shown as ``catalog.audit``.

Who (the operating-system user of the process: ``TWINHUB_USER`` is not an
identity, anyone can set it), for which department (``--department`` or
``TWINHUB_DEPARTMENT``), when, the full statement (never cut) and its
SHA-256, the tables and columns it read (catalog/lineage.py over the guarded
DuckDB SQL), the rows returned and the outcome. A query's record is written
*before* it runs (status ``started``) and completed after (``ok``,
``refused``, ``error``, ``timeout``, ``killed``): a query whose process is
killed keeps its ``started`` record. Records go on a separate connection (the
query itself runs in a sandbox that has no catalog, catalog/sandbox.py) into
the catalog's metadata database (SQLite or PostgreSQL) beside DuckLake's
tables: reading the catalog never makes a new version, and the log travels
with the catalog.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb
from sqlglot import exp

from twinhub.catalog.lake import ALIAS, AUDIT_COLUMNS, Lake, with_retry
from twinhub.catalog.lineage import columns_read

ENV_USER = "TWINHUB_USER"  # not an identity: shown nowhere as the actor (anyone can set it)
ENV_DEPARTMENT = "TWINHUB_DEPARTMENT"
# columns this module adds to the log when missing (catalog/lake.py's AUDIT_COLUMNS has the others)
EXTRA_COLUMNS = tuple(c for c in AUDIT_COLUMNS if c[0] in ("query_id", "statement_sha256"))  # added since v3
RECORD_COLUMNS = ("happened_at", "actor", "department", "action", "dialect", "statement", "as_of", "tables",
                  "columns", "rows_returned", "truncated", "status", "message", "duration_ms", "consumer",
                  "query_id", "statement_sha256")
OUTCOME_COLUMNS = ("tables", "columns", "rows_returned", "truncated", "status", "message", "duration_ms")
_migrated: set[tuple[str, str]] = set()


@dataclass
class AuditEntry:
    action: str  # query | near | export | export-catalog | rollback
    statement: str
    status: str = "ok"  # started | ok | refused | timeout | killed | error
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
    query_id: str = field(default_factory=lambda: uuid.uuid4().hex)


def current_actor() -> str:
    """Who is asking: the operating-system account of this process (its uid's passwd entry).

    Not ``TWINHUB_USER`` nor ``USER``/``LOGNAME``: environment variables are whatever the caller says.
    """
    uid = os.getuid() if hasattr(os, "getuid") else None
    if uid is None:
        import getpass

        return getpass.getuser()
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):  # no passwd entry (some containers)
        return f"uid:{uid}"


def current_department(given: str | None = None) -> str | None:
    return given or os.environ.get(ENV_DEPARTMENT) or None


def statement_sha256(statement: str) -> str:
    return hashlib.sha256(statement.encode("utf-8", "surrogatepass")).hexdigest()


def _outcome(entry: AuditEntry) -> dict:
    return {"tables": json.dumps(sorted(set(entry.tables))), "columns": json.dumps(sorted(set(entry.columns))),
            "rows_returned": entry.rows_returned, "truncated": entry.truncated, "status": entry.status,
            "message": (entry.message or "")[:2000] or None, "duration_ms": entry.duration_ms}


def _values(entry: AuditEntry) -> dict:
    return {"happened_at": dt.datetime.now(dt.timezone.utc), "actor": entry.actor or current_actor(),
            "department": current_department(entry.department), "action": entry.action, "dialect": entry.dialect,
            "statement": entry.statement, "as_of": entry.as_of, **_outcome(entry), "consumer": entry.consumer,
            "query_id": entry.query_id, "statement_sha256": statement_sha256(entry.statement)}


def _migrate(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    """Add :data:`EXTRA_COLUMNS` to a log made before them (once per process and catalog)."""
    if (lake.uri, lake.audit_table) in _migrated:
        return
    have = {d[0] for d in con.execute(exp.select(exp.Star()).from_(exp.to_table(lake.audit_table)).limit(0)
                                      .sql(dialect="duckdb")).description}
    for name, kind in EXTRA_COLUMNS:
        if name not in have:
            alter = exp.Alter(this=exp.to_table(lake.audit_table), kind="TABLE", actions=[
                exp.ColumnDef(this=exp.to_identifier(name), kind=exp.DataType.build(kind))])
            con.execute(alter.sql(dialect="duckdb"))
    _migrated.add((lake.uri, lake.audit_table))


def _insert(con: duckdb.DuckDBPyConnection, lake: Lake, entry: AuditEntry) -> None:
    values = _values(entry)
    insert = exp.insert(exp.Values(expressions=[exp.Tuple(expressions=[exp.Placeholder() for _ in RECORD_COLUMNS])]),
                        exp.to_table(lake.audit_table), columns=list(RECORD_COLUMNS))
    with_retry(lambda: (_migrate(con, lake), con.execute(insert.sql(dialect="duckdb"),
                                                          [values[c] for c in RECORD_COLUMNS])),
               what="the audit log")


def record(lake: Lake, entry: AuditEntry, con: duckdb.DuckDBPyConnection | None = None) -> None:
    """Append ``entry`` to ``catalog.audit`` (retried while another writer holds the catalog)."""
    own = con is None
    con = con or lake.connect()
    try:
        _insert(con, lake, entry)
    finally:
        if own:
            con.close()


def start(lake: Lake, entry: AuditEntry, con: duckdb.DuckDBPyConnection | None = None) -> None:
    """Write ``entry`` as ``started`` before anything runs; :func:`finish` completes the same record."""
    status, entry.status = entry.status, "started"
    try:
        record(lake, entry, con)
    finally:
        entry.status = status


def finish(lake: Lake, entry: AuditEntry, con: duckdb.DuckDBPyConnection | None = None) -> None:
    """Complete the record :func:`start` wrote with ``entry``'s outcome."""
    outcome = _outcome(entry)
    update = exp.update(exp.to_table(lake.audit_table), {c: exp.Placeholder() for c in OUTCOME_COLUMNS},
                        where=exp.column("query_id").eq(exp.Placeholder()))
    own = con is None
    con = con or lake.connect()
    try:
        with_retry(lambda: con.execute(update.sql(dialect="duckdb"),
                                       [outcome[c] for c in OUTCOME_COLUMNS] + [entry.query_id]),
                   what="the audit log")
    finally:
        if own:
            con.close()


class Run:
    """One audited action: :meth:`start` writes the ``started`` record (once); the end completes it.
    ``con``: a writable catalog connection to write on (default: one per write)."""

    def __init__(self, lake: Lake, entry: AuditEntry, con: duckdb.DuckDBPyConnection | None = None):
        self.lake, self.entry, self.con, self.started = lake, entry, con, False

    def start(self) -> None:
        if not self.started:
            start(self.lake, self.entry, self.con)
            self.started = True

    def end(self) -> None:
        (finish if self.started else record)(self.lake, self.entry, self.con)


@contextlib.contextmanager
def audited(lake: Lake, entry: AuditEntry, outcomes: dict[type, str] | None = None,
            deferred: bool = False, con: duckdb.DuckDBPyConnection | None = None) -> Iterator[Run]:
    """Record ``entry`` as started, run the block, complete the record however the block ends: an
    exception of a type in ``outcomes`` sets that status (e.g. ``refused``) and its message; any other
    is an ``error``. ``deferred``: the block calls ``run.start()`` itself, just before it executes
    anything (a refusal before that is recorded once, complete)."""
    run = Run(lake, entry, con)
    if not deferred:
        run.start()
    clock = time.monotonic()
    try:
        yield run
    except BaseException as exc:
        status = next((s for kind, s in (outcomes or {}).items() if isinstance(exc, kind)), None)
        entry.status = status or ("killed" if isinstance(exc, KeyboardInterrupt) else "error")
        entry.message = str(exc) if status else f"{type(exc).__name__}: {str(exc)[:500]}"
        raise
    finally:
        entry.duration_ms = round((time.monotonic() - clock) * 1000, 1)
        run.end()


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
    """``schema.table.column`` for every catalog column ``sql`` (DuckDB) reads (catalog/lineage.py).

        >>> touched_columns("SELECT name FROM water.pumping_stations WHERE category = 'x'",
        ...                 {"water.pumping_stations": {"name": "VARCHAR", "category": "VARCHAR"}})
        ['water.pumping_stations.category', 'water.pumping_stations.name']
    """
    return sorted(f"{t}.{c}" for t, columns in columns_read(sql, schemas).items() for c in columns)
