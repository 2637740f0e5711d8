"""The unified catalog: a DuckLake with DuckDB spatial.

Metadata lives in SQLite under the hub home by default (several local
processes can read and write it), data as Parquet files beside it. Each
department is a schema, each dataset a table: ``<department>.<dataset>``.
The hub's own records live in the ``catalog`` schema.
"""

from __future__ import annotations

import pathlib
import random
import time
from collections.abc import Callable
from typing import TypeVar

import duckdb

from catalog.extensions import connect

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
        extent VARCHAR, error VARCHAR, details VARCHAR""",
    "quarantine": """
        dataset VARCHAR, run_id VARCHAR, source_row BIGINT, checks VARCHAR, reasons VARCHAR, record VARCHAR""",
}


class CatalogBusy(RuntimeError):
    """Another process kept the catalog busy through every retry."""


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


class Lake:
    """Paths of one hub's catalog and connections to it."""

    def __init__(self, root: pathlib.Path):
        self.root = pathlib.Path(root)
        self.metadata = self.root / "metadata.sqlite"
        self.data = self.root / "data"

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with the catalog attached as ``lake`` and in use."""
        if read_only and not self.metadata.exists():
            raise FileNotFoundError(f"no catalog at {self.root}: run `twinhub run` or `twinhub demo` first")
        self.data.mkdir(parents=True, exist_ok=True)
        con = connect()
        options = "READ_ONLY" if read_only else f"DATA_PATH '{self.data}/'"
        with_retry(lambda: con.execute(f"ATTACH 'ducklake:sqlite:{self.metadata}' AS {ALIAS} ({options})"))
        con.execute(f"USE {ALIAS}")
        return con

    def ensure(self) -> None:
        """Create the catalog and its ``catalog.*`` tables if they do not exist."""
        con = self.connect()
        try:
            def create() -> None:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {META_SCHEMA}")
                for name, columns in META_TABLES.items():
                    con.execute(f"CREATE TABLE IF NOT EXISTS {META_SCHEMA}.{name} ({columns})")

            with_retry(create)
        finally:
            con.close()

    @staticmethod
    def tables(con: duckdb.DuckDBPyConnection, include_meta: bool = True) -> list[str]:
        """``schema.table`` for every table in the catalog."""
        rows = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY 1, 2", [ALIAS]
        ).fetchall()
        return [f"{s}.{t}" for s, t in rows if include_meta or s != META_SCHEMA]
