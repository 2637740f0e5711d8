"""Staging: conformed chunks are written to Parquet before anything is published.

A run writes every chunk here first, so a source that fails half-way never
touches the catalog. ``finalize`` then applies the cross-row rules over the
whole staged dataset (a key value carried by more than one conforming row
quarantines every row that carries it: the hub cannot know which is right)
and writes ``stage.json``, so the audit step and the publish step, possibly
in other processes, can reopen the stage. The folder is removed after
publishing, whatever happened. Rows a manifest's filter left out
(twinhub/hub/derive.py) are counted here per reason, not staged: rows read =
conforming + quarantined + filtered.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely

from twinhub.errors import TerminalError
from twinhub.standards.conform import SOURCE_ROW

SUMMARY = "stage.json"
DUCKDB_MEMORY = "192MB"  # per DuckDB instance over a stage; more spills to disk (streaming: flat memory)
QUARANTINE_COLUMNS = [SOURCE_ROW, "checks", "reasons", "record"]
DICTIONARY_SAMPLE = 1000  # rows looked at to decide whether a column is worth dictionary-encoding
# Key types whose Arrow order is DuckDB's ORDER BY order (strings: both compare bytes; no floats: NaN)
ORDERED_KEY_TYPES = (pa.types.is_string, pa.types.is_large_string, pa.types.is_integer)
BYTES_TYPES = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)


def _repeats(column: pa.ChunkedArray) -> bool:
    """Whether at most half of the column's first ``DICTIONARY_SAMPLE`` values are distinct."""
    if not len(column) or pa.types.is_binary(column.type) or pa.types.is_null(column.type):
        return False
    head = column.slice(0, DICTIONARY_SAMPLE)
    try:
        return pc.count_distinct(head).as_py() * 2 <= len(head)
    except pa.ArrowNotImplementedError:  # a type without the kernel: written as before
        return True


class StageMissing(TerminalError, FileNotFoundError):
    """The publish step found no finalized stage for this run."""


class Stage:
    def __init__(self, root: pathlib.Path, geometry_column: str | None = "geometry", fresh: bool = True):
        self.root = pathlib.Path(root)
        self.geometry_column = geometry_column
        self.parts = 0
        self.rows_read = 0
        self.rows_conforming = 0
        self.rows_quarantined = 0
        self.rows_filtered = 0  # left out by the manifest's filter, before conforming
        self.filtered: dict[str, int] = {}  # filter reason -> rows
        self.info: dict = {}
        self.sorted_by: list[str] = []  # the key the staged rows are already in order of (hold_duplicates)
        self._held: pd.DataFrame | None = None  # rows with a duplicated key, once found
        if fresh:
            if self.root.exists():
                shutil.rmtree(self.root)
            self.root.mkdir(parents=True)

    @classmethod
    def open(cls, root: pathlib.Path) -> Stage:
        """Reopen a finalized stage (e.g. in the publish step)."""
        summary = pathlib.Path(root) / SUMMARY
        if not summary.is_file():
            raise StageMissing(f"no finalized stage at {root}: run the staging step first")
        data = json.loads(summary.read_text(encoding="utf-8"))
        stage = cls(root, data["geometry_column"], fresh=False)
        for key in ("parts", "rows_read", "rows_conforming", "rows_quarantined", "info"):
            setattr(stage, key, data[key])
        stage.rows_filtered, stage.filtered = data.get("rows_filtered", 0), data.get("filtered", {})  # older stages: none
        stage.sorted_by = list(data.get("sorted_by", []))  # a stage from before this field: publish sorts
        return stage

    @property
    def rows_glob(self) -> str:
        return str(self.root / "rows-*.parquet")

    @property
    def quarantine_glob(self) -> str:
        return str(self.root / "quarantine-*.parquet")

    @property
    def excluded_path(self) -> str:
        return str(self.root / "excluded.parquet")

    def _table(self, frame: pd.DataFrame, binary: tuple[str, ...] = ()) -> pa.Table:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        for name in binary:
            if name in table.column_names:
                i = table.schema.get_field_index(name)
                table = table.set_column(i, name, table.column(name).cast(pa.binary()))
        return table

    @staticmethod
    def _write_parquet(table: pa.Table, path: pathlib.Path) -> None:
        """Dictionary-encode only the columns that repeat values: building the dictionary of a column of
        unique values (WKB points, names, ids) is most of a write's time (0.62 -> 0.28 s per 1e6 rows)
        and saves nothing. Judged on the chunk's first rows. Min/max statistics only for columns other
        than text and binary (0.28 -> 0.22 s): the stage is read whole, by DuckDB; nothing is pruned."""
        names = table.column_names
        repeating = [name for name, column in zip(names, table.columns) if _repeats(column)]
        ranged = [name for name, column in zip(names, table.columns) if not any(t(column.type) for t in BYTES_TYPES)]
        pq.write_table(table, path, use_dictionary=repeating, write_statistics=ranged)

    def _write_quarantine(self, frame: pd.DataFrame, name: str) -> None:
        frame = frame.astype({SOURCE_ROW: "int64", "checks": "string", "reasons": "string", "record": "string"})
        self._write_parquet(self._table(frame), self.root / name)

    @property
    def rows_checked(self) -> int:
        """Rows that reached the checks: read, less those the manifest's filter left out."""
        return self.rows_read - self.rows_filtered

    def write(self, rows: pd.DataFrame, quarantine: pd.DataFrame, filtered: dict[str, int] | None = None) -> None:
        """Write one conformed chunk (both files, even when one side is empty); ``filtered``: rows of the
        chunk the manifest's filter left out, per reason."""
        part = f"{self.parts:06d}"
        geometry = (self.geometry_column,) if self.geometry_column else ()
        self._write_parquet(self._table(rows, geometry), self.root / f"rows-{part}.parquet")
        self._write_quarantine(quarantine, f"quarantine-{part}.parquet")
        self.parts += 1
        self.rows_conforming += len(rows)
        self.rows_quarantined += len(quarantine)
        self.rows_read += len(rows) + len(quarantine)
        for reason, count in (filtered or {}).items():
            self.filtered[reason] = self.filtered.get(reason, 0) + count
            self.rows_filtered += count
            self.rows_read += count

    def hold_duplicates(self, key: tuple[str, ...]) -> int:
        """Find the rows whose key another staged row also has (held back by :meth:`finalize`); how many.

        The run's figures need the count before the summary is written; found once.
        """
        if self._held is None:
            ordered, unique = self._key_order(key)
            self.sorted_by = list(key) if ordered else []
            none = not (key and self.parts) or unique
            self._held = pd.DataFrame(columns=QUARANTINE_COLUMNS) if none else self._duplicates(key)
        return len(self._held)

    def _key_order(self, key: tuple[str, ...]) -> tuple[bool, bool]:
        """Whether the staged rows, in the order publishing reads them (file by file, row by row), are in
        ascending key order, and whether strictly (no key twice: no duplicates to look for).

        Sources often come in key order; then publishing needs no sort of the whole dataset (~0.7 s per
        1e6 rows) and the duplicate query is skipped. A single key column of a type whose order Arrow and
        DuckDB agree on, without NULLs (DuckDB sorts them last, and two NULLs count as a duplicate);
        anything else is (False, False) and takes the general path. One file's keys in memory at a time.
        """
        if len(key) != 1 or not self.parts:
            return False, False
        strictly, previous, kind = True, None, None
        for path in sorted(self.root.glob("rows-*.parquet")):  # DuckDB's glob order
            if key[0] not in pq.read_schema(path).names:
                return False, False
            column = pq.read_table(path, columns=list(key)).column(0).combine_chunks()
            if not len(column):
                continue
            kind = kind or column.type
            if column.null_count or column.type != kind or not any(t(kind) for t in ORDERED_KEY_TYPES):
                return False, False
            if previous is not None:
                column = pa.concat_arrays([pa.array([previous], kind), column])
            before, after = column.slice(0, len(column) - 1), column.slice(1)
            if len(after) and not pc.all(pc.less_equal(before, after)).as_py():
                return False, False
            strictly = strictly and (not len(after) or pc.all(pc.less(before, after)).as_py())
            previous = column[-1].as_py()
        return True, strictly

    def finalize(self, key: tuple[str, ...], info: dict | None = None) -> int:
        """Apply key uniqueness over the whole stage and write the summary; returns rows held back."""
        self.hold_duplicates(key)
        duplicates = self._held
        self._write_quarantine(duplicates, "quarantine-duplicates.parquet")
        pq.write_table(pa.table({SOURCE_ROW: pa.array(duplicates[SOURCE_ROW].astype("int64"), pa.int64())}),
                       self.excluded_path)
        self.rows_conforming -= len(duplicates)
        self.rows_quarantined += len(duplicates)
        self.info = info or {}
        summary = {k: getattr(self, k) for k in ("parts", "rows_read", "rows_conforming", "rows_quarantined",
                                                 "rows_filtered", "filtered", "info")}
        summary["geometry_column"] = self.geometry_column
        summary["sorted_by"] = self.sorted_by
        (self.root / SUMMARY).write_text(json.dumps(summary, default=str), encoding="utf-8")
        return len(duplicates)

    def _reasons_sql(self) -> str:
        """One row per quarantine reason: source row, check, column."""
        return (
            f"SELECT {SOURCE_ROW} AS source_row, reasons, r.check AS check_name, r.column AS column_name FROM ("
            f"SELECT {SOURCE_ROW}, reasons, unnest(from_json(reasons, '[{{\"check\": \"VARCHAR\", "
            f"\"column\": \"VARCHAR\"}}]')) AS r FROM read_parquet('{self.quarantine_glob}'))"
        )

    def failing(self, condition: str, limit: int = 5) -> tuple[int, dict[str, int], list[dict]]:
        """Rows with a reason matching the SQL ``condition`` (over ``check_name`` and ``column_name``):
        how many, how many per check, and a sample with their reasons."""
        con = self.connect()
        try:
            con.execute(f"CREATE TEMP VIEW reasons AS {self._reasons_sql()}")
            rows = con.execute(f"SELECT count(DISTINCT source_row) FROM reasons WHERE {condition}").fetchone()[0]
            by_check = dict(con.execute(
                f"SELECT check_name, count(DISTINCT source_row) FROM reasons WHERE {condition} "
                "GROUP BY 1 ORDER BY 2 DESC, 1"
            ).fetchall())
            sample = con.execute(
                f"SELECT DISTINCT source_row, reasons FROM reasons WHERE {condition} ORDER BY 1 LIMIT {int(limit)}"
            ).fetchall()
        finally:
            con.close()
        return rows, by_check, [{"source_row": r, "reasons": json.loads(reasons)} for r, reasons in sample]

    def connect(self) -> duckdb.DuckDBPyConnection:
        """DuckDB over the stage with bounded memory: what does not fit spills to the stage's folder."""
        spill = self.root / "duckdb-spill"
        spill.mkdir(exist_ok=True)
        return duckdb.connect(config={"memory_limit": DUCKDB_MEMORY, "temp_directory": str(spill),
                                      "preserve_insertion_order": False})

    def _duplicates(self, key: tuple[str, ...]) -> pd.DataFrame:
        keys = ", ".join(f'"{k}"' for k in key)
        same = " AND ".join(f'r."{k}" IS NOT DISTINCT FROM d."{k}"' for k in key)
        con = self.connect()
        try:  # a grouped count of the keys alone, then only the rows of duplicated keys are read whole
            frame = con.execute(
                f"""WITH d AS (SELECT {keys} FROM read_parquet('{self.rows_glob}') GROUP BY ALL HAVING count(*) > 1),
                    held AS (SELECT r.* FROM read_parquet('{self.rows_glob}') r SEMI JOIN d ON {same})
                    SELECT *, count(*) OVER (PARTITION BY {keys}) AS _n,
                           list({SOURCE_ROW}) OVER (PARTITION BY {keys}) AS _rows_with_key
                    FROM held ORDER BY {SOURCE_ROW}"""
            ).df()
        finally:
            con.close()
        label = ", ".join(key)
        records = []
        for row in frame.to_dict("records"):
            value = ", ".join(str(row[k]) for k in key)
            others = sorted(int(r) for r in row["_rows_with_key"] if r != row[SOURCE_ROW])
            reason = {
                "check": "duplicate_key",
                "column": label,
                "value": value,
                "message": f"{label} {value!r} appears in {row['_n']} rows (also source rows {others[:10]})",
            }
            record = {
                k: (shapely.from_wkb(bytes(v)).wkt if k == self.geometry_column and v is not None else
                    None if pd.isna(v) else str(v))
                for k, v in row.items() if k not in (SOURCE_ROW, "_n", "_rows_with_key")
            }
            records.append({SOURCE_ROW: int(row[SOURCE_ROW]), "checks": "duplicate_key",
                            "reasons": json.dumps([reason], ensure_ascii=False),
                            "record": json.dumps(record, ensure_ascii=False)})
        return pd.DataFrame(records, columns=QUARANTINE_COLUMNS)

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
