"""In-memory copies of a worker's large tables, with an R-tree on their geometry, per catalog snapshot.

A bbox or a tile on a layer of a million rows otherwise scans every row of its Parquet files
(~0.1-0.3 s). The first request for such a table at a snapshot starts a copy in the background
(the same rows, read in one transaction at that very snapshot) and is answered from the lake as
before; once the copy is ready, requests reading that snapshot read the copy, whose R-tree answers a
bbox in milliseconds (rows in Hilbert order of their geometry, so the matches of a bbox lie together). Views (the reader's columns, protections and row filter) are applied to the
copy exactly as to the lake table: only the table they read is swapped (catalog/features.py
``source_select``). A new snapshot is a new key: its requests read the lake until their own copy is
ready; copies of older snapshots are dropped a minute after a newer one replaced them.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time

import duckdb
from sqlglot import exp

MIN_ROWS = 100_000  # smaller tables are scanned fast enough
MAX_ROWS = 2_000_000  # rows copied per worker in all (~300 MB per million rows of ten columns, R-tree included)
GRACE_S = 60.0  # a replaced copy lives on this long for the requests still reading it

log = logging.getLogger("twinhub.serve")


class Copies:
    """The worker's copies; ``cursor`` makes a cursor on the worker's read-only catalog."""

    def __init__(self, cursor, min_rows: int = MIN_ROWS, max_rows: int = MAX_ROWS):
        self._cursor, self.min_rows, self.max_rows = cursor, min_rows, max_rows
        self._ready: dict[tuple, tuple[exp.Table, int]] = {}  # (snapshot, table, geometry) -> (copy, rows)
        self._building: set[tuple] = set()
        self._retired: list[tuple[float, exp.Table]] = []
        self._lock = threading.Lock()
        self._names = itertools.count(1)

    def source(self, snapshot: int, table: str, geometry: str, rows: int) -> exp.Table | None:
        """The copy of ``table`` at ``snapshot`` when it is ready (``memory.main.copy_N``); otherwise None,
        and a copy is started if the table is large enough and fits."""
        key = (snapshot, table, geometry)
        with self._lock:
            if key in self._ready:
                return self._ready[key][0].copy()
            copied = sum(r for _, r in self._ready.values())
            if rows < self.min_rows or key in self._building or copied + rows > self.max_rows + self._older(table):
                return None
            self._building.add(key)
        threading.Thread(target=self._build, args=(key, rows), name="twinhub-copy", daemon=True).start()
        return None

    def wait(self, timeout_s: float = 120.0) -> None:
        """Until no copy is being built (benchmarks and tests)."""
        deadline = time.monotonic() + timeout_s
        while self._building and time.monotonic() < deadline:
            time.sleep(0.05)

    def _older(self, table: str) -> int:
        return sum(r for (_, t, _), (_, r) in self._ready.items() if t == table)

    def _build(self, key: tuple, rows: int) -> None:
        snapshot, table, geometry = key
        name = f"copy_{next(self._names)}"
        target = exp.table_(name, db="main", catalog="memory", quoted=True)
        schema, table_name = table.split(".", 1)
        source = exp.table_(table_name, db=schema, catalog="lake", quoted=True)
        g = exp.column(exp.to_identifier(geometry, quoted=True))
        extent = exp.Subquery(this=exp.select(exp.Anonymous(this="ST_Extent_Agg", expressions=[g.copy()])).from_(
            source.copy()))
        hilbert = exp.Anonymous(this="ST_Hilbert", expressions=[g.copy(), exp.Anonymous(this="ST_Extent",
                                                                                         expressions=[extent])])
        # rows near each other on the map near each other in memory: the R-tree's matches are then read from a
        # few row groups, not one each (a z14 tile of 8,700 points: ~60 ms instead of ~1.7 s on a busy machine)
        create = exp.Create(this=target.copy(), kind="TABLE",
                            expression=exp.select(exp.Star()).from_(source).order_by(hilbert))
        index = exp.Create(kind="INDEX", this=exp.Index(
            this=exp.to_identifier(f"{name}_rtree", quoted=True), table=target.copy(),
            params=exp.IndexParameters(using=exp.var("RTREE"), columns=[
                exp.Ordered(this=exp.column(exp.to_identifier(geometry, quoted=True)), nulls_first=False)])))
        cursor = None
        try:
            self._drop_retired()
            cursor = self._cursor()
            cursor.execute("BEGIN TRANSACTION")
            if cursor.execute("SELECT id FROM lake.current_snapshot()").fetchone()[0] != snapshot:
                cursor.execute("ROLLBACK")  # a newer snapshot: its own requests will ask for its copy
                return
            cursor.execute(create.sql(dialect="duckdb"))
            cursor.execute(index.sql(dialect="duckdb"))
            cursor.execute("COMMIT")
        except duckdb.Error as exc:  # the lake keeps answering: a copy only makes it faster
            log.warning("no in-memory copy of %s: %s", table, str(exc)[:200])
            return
        finally:
            if cursor is not None:
                cursor.close()
            with self._lock:
                self._building.discard(key)
        with self._lock:
            for old in [k for k in self._ready if k[1] == table and k[2] == geometry and k[0] < snapshot]:
                self._retired.append((time.monotonic() + GRACE_S, self._ready.pop(old)[0]))
            self._ready[key] = (target, rows)

    def _drop_retired(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [n for at, n in self._retired if at <= now]
            self._retired = [(at, n) for at, n in self._retired if at > now]
        if not due:
            return
        cursor = self._cursor()
        try:
            for table in due:
                cursor.execute(exp.Drop(this=table, kind="TABLE", exists=True).sql(dialect="duckdb"))
        finally:
            cursor.close()
