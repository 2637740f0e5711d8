"""The unified catalog: a DuckLake with DuckDB spatial.

Metadata lives in SQLite under the hub home by default (several local
processes can read and write it), data as Parquet files beside it. A hub
that serves several machines keeps the metadata in PostgreSQL and the data
on shared storage, by configuration alone (see :meth:`Lake.from_config`).
Each department is a schema, each dataset a table: ``<department>.<dataset>``.
The hub's own records live in the ``catalog`` schema.
"""

from __future__ import annotations

import datetime as dt
import pathlib
import random
import re
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

import duckdb

from twinhub.catalog.extensions import connect
from twinhub.errors import TransientError, UserError

ALIAS = "lake"
META_SCHEMA = "catalog"
T = TypeVar("T")

META_TABLES = {
    "datasets": """
        dataset VARCHAR, department VARCHAR, name VARCHAR, title VARCHAR, description VARCHAR,
        standard VARCHAR, standard_version VARCHAR, classification VARCHAR, target_crs VARCHAR,
        table_name VARCHAR, updated_at TIMESTAMPTZ""",
    "runs": """
        run_id VARCHAR, dataset VARCHAR, status VARCHAR, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
        rows_read BIGINT, rows_published BIGINT, rows_quarantined BIGINT,
        rows_added BIGINT, rows_updated BIGINT, rows_unchanged BIGINT, rows_deleted BIGINT,
        source_fingerprint VARCHAR, config_fingerprint VARCHAR,
        standard VARCHAR, standard_version VARCHAR, source_crs VARCHAR, target_crs VARCHAR,
        extent VARCHAR, error VARCHAR, details VARCHAR,
        rows_filtered BIGINT""",  # left out by the manifest's filter (NULL: a run from before filters)
    "quarantine": """
        dataset VARCHAR, run_id VARCHAR, source_row BIGINT, checks VARCHAR, reasons VARCHAR, record VARCHAR""",
    # the served version's columns, in order; is_label marks columns holding vocabulary codes;
    # classification (the column's effective tier), protection (mask | pseudonymize | none: how a
    # consumer below that tier reads it) and personal_data (kinds, comma-separated): docs/governance.md
    "columns": """
        dataset VARCHAR, position INTEGER, name VARCHAR, type VARCHAR,
        is_key BOOLEAN, is_label BOOLEAN, is_geometry BOOLEAN,
        classification VARCHAR, protection VARCHAR, personal_data VARCHAR""",
    # each published row's source row number and key (its value; JSON for several columns), replaced at each
    # publish (twinhub/ledger.py)
    "row_sources": "dataset VARCHAR, run_id VARCHAR, source_row BIGINT, key VARCHAR",
    # one row per version: what changed against the version served before it (catalog/notes.py)
    "release_notes": """
        dataset VARCHAR, run_id VARCHAR, previous_run_id VARCHAR, created_at TIMESTAMPTZ,
        summary VARCHAR, notes VARCHAR""",
}

# Every query, lookup and export, refused or not (catalog/audit.py). Kept in the metadata
# database beside DuckLake's own tables rather than in the lake, so that reading the
# catalog never makes a new version; shown as the view catalog.audit.
AUDIT_TABLE = "twinhub_audit"
AUDIT_COLUMNS = (
    ("happened_at", "TIMESTAMPTZ"), ("actor", "VARCHAR"), ("department", "VARCHAR"), ("action", "VARCHAR"),
    ("dialect", "VARCHAR"), ("statement", "VARCHAR"), ("as_of", "VARCHAR"), ("tables", "VARCHAR"),
    ("columns", "VARCHAR"), ("rows_returned", "BIGINT"), ("truncated", "BOOLEAN"), ("status", "VARCHAR"),
    ("message", "VARCHAR"), ("duration_ms", "DOUBLE"),
    ("consumer", "VARCHAR"),  # `twinhub query --as`: whose grants applied (actor is who asked)
    ("query_id", "VARCHAR"),  # one query's 'started' record and its completion (catalog/audit.py)
    ("statement_sha256", "VARCHAR"),  # of the full statement, kept whole beside it
)

# Views over the tables above, for stewards asking questions in SQL. Bump the
# revision when a view changes: ensure() replaces views of an older revision.
VIEWS_REVISION = "twinhub views 5"
META_VIEWS = {
    # every version of every dataset: a run that published (or rolled back) and its snapshot
    "versions": f"""
        SELECT s.snapshot_id AS version, r.dataset, r.run_id, r.status, s.snapshot_time AS published_at,
               r.rows_read, r.rows_published, r.rows_quarantined, r.source_fingerprint, r.standard_version,
               coalesce(r.rows_filtered, 0) AS rows_filtered
        FROM {META_SCHEMA}.runs r
        JOIN ducklake_snapshots('{ALIAS}') s
          ON json_extract_string(s.commit_extra_info, '$.run_id') = r.run_id
         AND json_extract_string(s.commit_extra_info, '$.dataset') = r.dataset""",
    # the run behind the version each dataset serves now, with its quarantined share
    "quality": f"""
        SELECT d.dataset, d.department, r.run_id, r.status, r.finished_at, r.rows_read, r.rows_published,
               r.rows_quarantined,
               CASE WHEN r.rows_read > 0 THEN r.rows_quarantined / r.rows_read END AS quarantined_share,
               coalesce(r.rows_filtered, 0) AS rows_filtered
        FROM {META_SCHEMA}.datasets d
        JOIN {META_SCHEMA}.runs r ON r.dataset = d.dataset AND r.status IN ('published', 'rollback')
        QUALIFY row_number() OVER (PARTITION BY d.dataset ORDER BY r.finished_at DESC) = 1""",
}


class CatalogBusy(TransientError, RuntimeError):
    """Another process kept the catalog busy through every retry."""

    user_error = True  # one line, exit 2: run it again; Dagster retries it


class CatalogConfigError(UserError, ValueError):
    """The hub configuration's ``catalog:`` section cannot be used."""


class UnknownVersion(UserError, LookupError):
    """An ``--as-of`` version or time the catalog has no snapshot for."""


def is_retryable(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("database is locked", "conflict", "failed to commit ducklake", "busy"))


def with_retry(action: Callable[[], T], attempts: int = 40, what: str = "the catalog") -> T:
    """Run ``action``, retrying with jittered backoff while another writer holds the catalog."""
    for attempt in range(attempts):
        try:
            return action()
        except duckdb.Error as exc:
            if not is_retryable(exc) or attempt == attempts - 1:
                if is_retryable(exc):
                    raise CatalogBusy(f"{what} stayed busy after {attempts} attempts: {exc}") from exc
                raise
            time.sleep(min(2.0, 0.05 * (1.5**attempt)) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if a failed COMMIT has not already ended it."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


def commit(con: duckdb.DuckDBPyConnection, action: Callable[[], T], message: str | None = None,
           extra_info: str | None = None) -> T:
    """Run ``action`` in one transaction: one DuckLake snapshot, with ``message`` (and ``extra_info``,
    which maps the snapshot to a run); roll back on failure."""
    con.execute("BEGIN")
    try:
        result = action()
        if message:
            con.execute(f"CALL {ALIAS}.set_commit_message('twinhub', ?, extra_info => ?)", [message, extra_info])
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    return result


class Lake:
    """Where one hub's catalog lives, and connections to it.

    ``metadata`` is ``None`` for SQLite under ``root`` (the default), or a
    ``postgres:`` libpq connection string (no password: libpq reads
    ``PGPASSWORD`` or ``~/.pgpass``); ``schema`` then names the PostgreSQL
    schema holding DuckLake's tables. ``data`` defaults to ``root/data``;
    ``extent`` (minx, miny, maxx, maxy in the target CRS, or a function giving
    it) frames map previews.
    """

    def __init__(
        self,
        root: pathlib.Path,
        metadata: str | None = None,
        data: pathlib.Path | str | None = None,
        schema: str | None = None,
        extent: tuple[float, float, float, float] | Callable[[], tuple] | None = None,
        previews: pathlib.Path | str | None = None,
    ):
        self.root = pathlib.Path(root)
        self.postgres = _postgres_dsn(metadata)
        self.metadata = None if self.postgres else self.root / "metadata.sqlite"
        self.schema = _identifier(schema, "catalog.schema") if schema else None
        self.data = pathlib.Path(data) if data else self.root / "data"
        self.previews = pathlib.Path(previews) if previews else self.root / "previews"
        self._extent = extent
        self._current = False  # the catalog's own tables and views are this twinhub's (checked once)

    @property
    def extent(self) -> tuple[float, float, float, float] | None:
        """The city's extent in the target CRS (given directly, or by a function called when first needed)."""
        if callable(self._extent):
            self._extent = self._extent()
        return tuple(self._extent) if self._extent else None

    @classmethod
    def from_config(cls, root: pathlib.Path, config: dict | None, **kwargs) -> Lake:
        """A lake from the ``catalog:`` section of twinhub.yaml (paths relative to ``root``'s parent)."""
        config = config or {}
        if not isinstance(config, dict):
            raise CatalogConfigError("catalog: expected a mapping with keys metadata, schema, data, previews")
        unknown = sorted(set(config) - {"metadata", "schema", "data", "previews"})
        if unknown:
            raise CatalogConfigError(f"catalog.{unknown[0]}: unknown key (use metadata, schema, data, previews)")
        home = pathlib.Path(root).parent
        paths = {k: (home / str(config[k])).resolve() for k in ("data", "previews") if config.get(k)}
        return cls(root, metadata=config.get("metadata"), schema=config.get("schema"), **paths, **kwargs)

    @property
    def audit_table(self) -> str:
        """The audit log's table in the metadata database (SQLite file or PostgreSQL schema)."""
        return f"{self.metadata_schema}.{AUDIT_TABLE}"

    @property
    def metadata_schema(self) -> str:
        """DuckLake's own metadata tables, as attached beside the catalog."""
        return f"__ducklake_metadata_{ALIAS}.{self.schema or ('public' if self.postgres else 'main')}"

    def table_versions(self, con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, tuple | None]:
        """{"schema.table": (table id, last snapshot that changed its rows)}; None for a missing table.

        Any write to a table (rows inserted, deleted, or the table replaced) changes its entry,
        which is how a table built from others knows whether it is out of date.
        """
        rows = con.execute(f"""
            WITH live AS (
                SELECT s.schema_name || '.' || t.table_name AS name, CAST(t.table_id AS VARCHAR) AS id
                FROM {self.metadata_schema}.ducklake_table t
                JOIN {self.metadata_schema}.ducklake_schema s USING (schema_id)
                WHERE t.end_snapshot IS NULL AND s.end_snapshot IS NULL)
            SELECT live.name, live.id,
                   (SELECT max(snapshot_id) FROM ducklake_snapshots('{ALIAS}')
                    WHERE list_contains(flatten(map_values(changes)), live.id)) AS changed
            FROM live WHERE list_contains(?, live.name)""", [list(tables)]).fetchall()
        found = {name: (table_id, changed) for name, table_id, changed in rows}
        return {t: found.get(t) for t in tables}

    @property
    def uri(self) -> str:
        """The DuckLake connection string (no secrets: passwords never appear in configuration)."""
        return f"ducklake:postgres:{self.postgres}" if self.postgres else f"ducklake:sqlite:{self.metadata}"

    def exists(self) -> bool:
        """Whether the catalog has been created (SQLite: its file; PostgreSQL: its tables)."""
        if self.metadata is not None:
            return self.metadata.exists()
        try:
            self.connect(read_only=True).close()
        except (duckdb.Error, FileNotFoundError):
            return False
        return True

    def _extensions(self) -> tuple[str, ...]:
        return ("spatial", "postgres_scanner" if self.postgres else "sqlite_scanner", "ducklake")

    def connect(self, read_only: bool = False, snapshot: int | dt.datetime | None = None) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with the catalog attached as ``lake`` and in use.

        ``snapshot`` (a version number or a time) attaches the catalog as it was
        then, read-only: every table, ``catalog.*`` included, reads that snapshot.
        """
        if read_only and self.metadata is not None and not self.metadata.exists():
            raise FileNotFoundError(f"no catalog at {self.root}: run `twinhub run` or `twinhub demo` first")
        self.data.mkdir(parents=True, exist_ok=True)
        if not read_only and snapshot is None and self.metadata is not None:
            use_wal(self.metadata)
        con = connect(extensions=self._extensions())
        options = ["READ_ONLY"] if read_only or snapshot is not None else [f"DATA_PATH {_literal(str(self.data) + '/')}"]
        if self.schema:
            options.append(f"METADATA_SCHEMA {_literal(self.schema)}")
        if isinstance(snapshot, dt.datetime):
            options.append(f"SNAPSHOT_TIME {_literal(snapshot.isoformat())}")
        elif snapshot is not None:
            options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
        try:
            with_retry(lambda: con.execute(f"ATTACH {_literal(self.uri)} AS {ALIAS} ({', '.join(options)})"))
        except duckdb.Error as exc:
            con.close()
            if snapshot is not None and "snapshot" in str(exc).lower():
                raise UnknownVersion(_no_snapshot(snapshot)) from exc
            raise
        con.execute(f"USE {ALIAS}")
        if not read_only and snapshot is None:
            self._upgrade(con)
        return con

    def _upgrade(self, con: duckdb.DuckDBPyConnection) -> None:
        """Migrate a catalog made by an older twinhub before anything writes to it (once per Lake): the
        ``catalog.*`` columns added since (NULL in old rows) and views of an older revision."""
        if self._current:
            return
        if _outdated(con):
            with_retry(lambda: _add_missing_audit_columns(con, self.audit_table))
            with_retry(lambda: commit(con, lambda: _create_meta(con, self.audit_table)), what="upgrading the catalog")
        self._current = True

    def ensure(self) -> None:
        """Create the catalog and its ``catalog.*`` tables and views if they do not exist."""
        con = self.connect()
        if self.metadata is not None:
            use_wal(self.metadata)  # the file exists now
        try:
            columns = ", ".join(f"{name} {kind}" for name, kind in AUDIT_COLUMNS)
            with_retry(lambda: con.execute(f"CREATE TABLE IF NOT EXISTS {self.audit_table} ({columns})"))
            with_retry(lambda: _add_missing_audit_columns(con, self.audit_table))
            with_retry(lambda: commit(con, lambda: _create_meta(con, self.audit_table)))
        finally:
            con.close()

    @staticmethod
    def tables(con: duckdb.DuckDBPyConnection, include_meta: bool = True) -> list[str]:
        """``schema.table`` for every table (and ``catalog.*`` view) in the catalog."""
        rows = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? "
            "UNION SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = ? AND NOT internal "
            "ORDER BY 1, 2",
            [ALIAS, ALIAS],
        ).fetchall()
        return [f"{s}.{t}" for s, t in rows if include_meta or s != META_SCHEMA]


def _create_meta(con: duckdb.DuckDBPyConnection, audit_table: str) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {META_SCHEMA}")
    for name, columns in META_TABLES.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS {META_SCHEMA}.{name} ({columns})")
        _add_missing_columns(con, name, columns)
    views = dict(con.execute(
        "SELECT view_name, comment FROM duckdb_views() WHERE database_name = ? AND schema_name = ?",
        [ALIAS, META_SCHEMA],
    ).fetchall())
    audit = ", ".join(f"CAST({name} AS {kind}) AS {name}" for name, kind in AUDIT_COLUMNS)
    for name, sql in {**META_VIEWS, "audit": f"SELECT {audit} FROM {audit_table}"}.items():
        if views.get(name) != VIEWS_REVISION:  # missing, or written by an older twinhub
            con.execute(f"CREATE OR REPLACE VIEW {META_SCHEMA}.{name} AS {sql}")
            con.execute(f"COMMENT ON VIEW {META_SCHEMA}.{name} IS {_literal(VIEWS_REVISION)}")


def _outdated(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the catalog lacks a column of META_TABLES or holds a view of another revision (False
    when it has no ``catalog`` schema yet: ensure() makes it)."""
    have = {f"{t}.{c}" for t, c in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = ?",
        [ALIAS, META_SCHEMA]).fetchall()}
    if not have:
        return False
    want = {f"{table}.{column.split()[0]}" for table, columns in META_TABLES.items() for column in columns.split(",")}
    views = dict(con.execute("SELECT view_name, comment FROM duckdb_views() WHERE database_name = ? AND schema_name = ?",
                             [ALIAS, META_SCHEMA]).fetchall())
    return bool(want - have) or any(views.get(name) != VIEWS_REVISION for name in META_VIEWS)


def _add_missing_columns(con: duckdb.DuckDBPyConnection, table: str, columns: str) -> None:
    """Migrate a catalog made by an older twinhub: columns added since are added (NULL in old rows)."""
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? AND table_name = ?",
        [ALIAS, META_SCHEMA, table],
    ).fetchall()}
    for column in (c.strip() for c in columns.split(",")):
        name, kind = column.split(None, 1)
        if name not in have:
            con.execute(f"ALTER TABLE {META_SCHEMA}.{table} ADD COLUMN {name} {kind}")


def use_wal(metadata: pathlib.Path) -> None:
    """Put the SQLite metadata in WAL mode (kept in the file): a reader's open transaction then keeps
    its snapshot without blocking a publish's COMMIT (in the default rollback-journal mode it blocks
    it until the reader ends: docs/reliability.md)."""
    if not metadata.exists():
        return
    try:
        db = sqlite3.connect(metadata, timeout=5)
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
        finally:
            db.close()
    except sqlite3.Error:
        pass  # busy now: a later writable connection tries again


def _add_missing_audit_columns(con: duckdb.DuckDBPyConnection, audit_table: str) -> None:
    """Migrate the audit log of an older twinhub (records are appended positionally: new columns go last)."""
    have = {d[0] for d in con.execute(f"SELECT * FROM {audit_table} LIMIT 0").description}
    for name, kind in AUDIT_COLUMNS:
        if name not in have:
            con.execute(f"ALTER TABLE {audit_table} ADD COLUMN {name} {kind}")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _no_snapshot(snapshot: int | dt.datetime) -> str:
    if isinstance(snapshot, dt.datetime):
        return f"the catalog has no version at or before {snapshot.isoformat()}: it did not exist yet"
    return f"the catalog has no version {snapshot}: `twinhub catalog show DATASET` lists each dataset's versions"


def _identifier(value: str, key: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", str(value)):
        raise CatalogConfigError(f"{key}: {value!r} is not a lower-case SQL name (letters, digits, _)")
    return str(value)


def _postgres_dsn(metadata: str | None) -> str | None:
    """The libpq connection string of a ``postgres:`` metadata setting; None for SQLite."""
    if metadata in (None, "", "sqlite"):
        return None
    text = str(metadata).strip()
    if not text.startswith(("postgres:", "postgresql:")):
        raise CatalogConfigError(
            f"catalog.metadata: {text[:40]!r} is not supported: leave it empty for SQLite under the hub home, "
            "or write postgres:dbname=<db> host=<host> user=<user>"
        )
    dsn = text.split(":", 1)[1].strip()
    if re.search(r"(^|\s)password\s*=", dsn, re.IGNORECASE) or re.search(r"//[^/@\s]*:[^/@\s]*@", dsn):
        raise CatalogConfigError(
            "catalog.metadata: a password must not be written in twinhub.yaml; "
            "set the PGPASSWORD environment variable (or use ~/.pgpass) instead"
        )
    return dsn
