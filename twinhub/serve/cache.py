"""What one worker keeps between requests: the catalog opened once, and per catalog version and reader
the decisions every request would otherwise make again.

Opening the catalog (~0.3 s), loading tiers and grants, listing tables, building each collection's
view and reading its metadata cost far more than a page of features. A worker therefore:

- opens the catalog read-only once and lends each request a cursor of a pool (a connection to the
  same database: its own transaction, and an interrupt that stops only its own statement);
- runs each request in one transaction, so every statement of it reads the same catalog snapshot;
- checks the bearer token and reads the consumer's grants on every request (a revoked token is
  refused, a changed grant applies, on the very next request);
- keeps a :class:`Context` per (snapshot, consumer, grants, day, derived tables' SQL files): the access
  decisions, the views, the collections' metadata and extents. A new snapshot, another grant or a
  changed derived SQL file is another key, so nothing is ever served from a decision made on other
  facts; old keys fall out of a small LRU;
- reads large tables from an in-memory copy with an R-tree on their geometry, once one is built for the
  snapshot (serve/copies.py);
- writes its audit records on one writable connection of its own (opening one per request was most
  of an items request's time).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

import duckdb
from sqlglot import exp

from twinhub.catalog import audit, features
from twinhub.catalog.access import Access, Tiers, load_tiers
from twinhub.catalog.grants import Consumer, Grant
from twinhub.hub.consumers import derived_inputs
from twinhub.hub.home import Hub
from twinhub.serve.collections import Meta, catalog_meta, extent
from twinhub.serve.copies import Copies

T = TypeVar("T")
MAX_CONTEXTS = 256  # readers x versions kept per worker
MAX_IDLE = 64  # idle cursors kept per worker
_UNREADABLE = object()


def _masking():
    from twinhub.catalog import masking

    return masking


class Context:
    """One catalog snapshot as one reader may read it; everything in it is built on first use."""

    def __init__(self, hub: Hub, snapshot: int, consumer: Consumer, access: Access, tables: list[str]):
        self.hub, self.snapshot, self.consumer, self.access, self.tables = hub, snapshot, consumer, access, tables
        self.protect = _masking().protect_sql
        self._memo: dict[tuple[str, str], object] = {}

    def _once(self, kind: str, table: str, build: Callable[[], T]) -> T:
        key = (kind, table)
        if key not in self._memo:  # two threads may both build it: the same value, no lock needed
            self._memo[key] = build()
        return self._memo[key]  # type: ignore[return-value]

    def view(self, con: duckdb.DuckDBPyConnection, table: str) -> features.View:
        """The reader's view of ``table``; UnknownCollection when nothing of it is readable."""
        def build():
            try:
                return features.view(con, self.access, table, self.protect)
            except features.UnknownCollection:
                return _UNREADABLE

        found = self._once("view", table, build)
        if found is _UNREADABLE:
            raise features.UnknownCollection(f"no collection {table!r}")
        return found  # type: ignore[return-value]

    def meta(self, con: duckdb.DuckDBPyConnection, table: str) -> Meta:
        return self._once("meta", table, lambda: catalog_meta(con, self.hub, self.access, table))

    def table_crs(self, con: duckdb.DuckDBPyConnection, table: str) -> str:
        def build():
            row = con.execute("SELECT target_crs FROM catalog.datasets WHERE dataset = ?", [table]).fetchone()
            return (row[0] if row and row[0] else None) or self.hub.target_crs

        return self._once("crs", table, build)

    def id_column(self, con: duckdb.DuckDBPyConnection, table: str, view: features.View) -> str | None:
        """The dataset's key when it is one readable, unprotected column (city layers: none)."""
        def build():
            try:
                keys = [c for c, in con.execute("SELECT name FROM catalog.columns WHERE dataset = ? AND is_key",
                                                [table]).fetchall()]
            except duckdb.Error:  # an older catalog without the is_key column
                keys = []
            return keys[0] if len(keys) == 1 and keys[0] in view.columns and keys[0] not in view.protected else None

        return self._once("id", table, build)

    def extent(self, con: duckdb.DuckDBPyConnection, table: str, view: features.View) -> list[float] | None:
        return self._once("extent", table, lambda: extent(con, view, self.table_crs(con, table)))


class Served:
    """One worker's catalog and caches (see the module's docstring)."""

    def __init__(self, hub: Hub, max_contexts: int = MAX_CONTEXTS):
        self.hub, self.max_contexts = hub, max_contexts
        self._db: duckdb.DuckDBPyConnection | None = None
        self._idle: queue.Queue[duckdb.DuckDBPyConnection] = queue.Queue()
        self._lock = threading.Lock()
        self._contexts: OrderedDict[tuple, Context] = OrderedDict()
        self._shared: dict[tuple, object] = {}  # per snapshot: tables, tiers, derived inputs
        self._audit_con: duckdb.DuckDBPyConnection | None = None
        self._audit_lock = threading.Lock()
        self.copies = Copies(self._new_cursor)

    def take(self) -> duckdb.DuckDBPyConnection:
        """An idle cursor on the worker's read-only catalog (a new one when none is idle); :meth:`give` it back."""
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        cursor = self._new_cursor()
        _masking().register_functions(cursor)
        return cursor

    def _new_cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._db is None:
                self._db = self.hub.lake.connect(read_only=True)
            cursor = self._db.cursor()
        cursor.execute("USE lake")
        return cursor

    def source(self, con: duckdb.DuckDBPyConnection, snapshot: int, table: str, view: features.View) -> exp.Table | None:
        """The in-memory indexed copy of ``table`` at ``snapshot`` to read instead of the lake, if ready
        (serve/copies.py); the table's row count is read once per snapshot (DuckLake keeps it)."""
        if view.geometry is None:
            return None
        key = ("rows", snapshot, table)
        rows = self._shared.get(key)
        if rows is None:
            schema, name = table.split(".", 1)
            rows = con.execute(exp.select(exp.Count(this=exp.Star())).from_(
                exp.table_(name, db=schema, catalog="lake", quoted=True)).sql(dialect="duckdb")).fetchone()[0]
            self._shared[key] = rows
        return self.copies.source(snapshot, table, view.geometry, rows)

    def give(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Return a cursor whose transaction has ended; kept for the next request, up to MAX_IDLE of them."""
        if self._idle.qsize() < MAX_IDLE:
            self._idle.put(cursor)
        else:
            cursor.close()

    @staticmethod
    def snapshot(con: duckdb.DuckDBPyConnection) -> int:
        """The catalog snapshot ``con``'s open transaction reads."""
        return con.execute("SELECT id FROM lake.current_snapshot()").fetchone()[0]

    def context(self, con: duckdb.DuckDBPyConnection, snapshot: int, consumer: Consumer, grants: list[Grant],
                today: dt.date) -> Context:
        """The reader's context at ``snapshot``; ``con`` reads that snapshot (its transaction is open).
        ``grants`` are the consumer's, read by this request (the key holds them)."""
        derived_files = self._derived_files()
        key = (snapshot, consumer.name, tuple(dataclasses.astuple(g) for g in grants), today, derived_files)
        with self._lock:
            found = self._contexts.get(key)
            if found is not None:
                self._contexts.move_to_end(key)
                return found
        tables, tiers = self._catalog(con, snapshot, derived_files)
        context = Context(self.hub, snapshot, consumer, Access(consumer, tiers, grants, today), tables)
        with self._lock:
            self._contexts[key] = context
            while len(self._contexts) > self.max_contexts:
                self._contexts.popitem(last=False)
        return context

    def _derived_files(self) -> tuple:
        from twinhub.hub.layers import derived_dir

        return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(derived_dir(self.hub).glob("*.sql")))

    def _catalog(self, con: duckdb.DuckDBPyConnection, snapshot: int, derived_files: tuple) -> tuple[list[str], Tiers]:
        """The catalog's tables and tiers at ``snapshot`` (shared by every reader)."""
        key = (snapshot, derived_files)
        found = self._shared.get(key)
        if found is None:
            tables = features.tables(con)
            found = (tables, load_tiers(con, derived_inputs(self.hub, tables)))
            with self._lock:
                if len(self._shared) >= 256:
                    self._shared.clear()
                self._shared[key] = found
        return found  # type: ignore[return-value]

    def audit(self, entry: audit.AuditEntry) -> None:
        """Append ``entry`` to the audit log on the worker's writable connection (reopened once if it broke)."""
        with self._audit_lock:
            for attempt in (1, 2):
                if self._audit_con is None:
                    self._audit_con = self.hub.lake.connect()
                try:
                    audit.record(self.hub.lake, entry, self._audit_con)
                    return
                except duckdb.Error:
                    self._audit_con.close()
                    self._audit_con = None
                    if attempt == 2:
                        raise

    def close(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().close()
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
        with self._audit_lock:
            if self._audit_con is not None:
                self._audit_con.close()
                self._audit_con = None
