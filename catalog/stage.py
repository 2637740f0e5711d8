"""Staging: conformed chunks are written to Parquet before anything is published.

A run writes every chunk here first, so a source that fails half-way never
touches the catalog; publishing then reads the whole staged dataset in one
transaction. The folder is removed when the run ends, whatever happened.
"""

from __future__ import annotations

import pathlib
import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from standards.conform import SOURCE_ROW


class Stage:
    def __init__(self, root: pathlib.Path, geometry_column: str | None = "geometry"):
        self.root = pathlib.Path(root)
        self.geometry_column = geometry_column
        self.parts = 0
        self.rows_read = 0
        self.rows_conforming = 0
        self.rows_quarantined = 0
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)

    @property
    def rows_glob(self) -> str:
        return str(self.root / "rows-*.parquet")

    @property
    def quarantine_glob(self) -> str:
        return str(self.root / "quarantine-*.parquet")

    def _table(self, frame: pd.DataFrame, binary: tuple[str, ...] = ()) -> pa.Table:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        for name in binary:
            if name in table.column_names:
                i = table.schema.get_field_index(name)
                table = table.set_column(i, name, table.column(name).cast(pa.binary()))
        return table

    def write(self, rows: pd.DataFrame, quarantine: pd.DataFrame) -> None:
        """Write one conformed chunk (both files, even when one side is empty)."""
        part = f"{self.parts:06d}"
        geometry = (self.geometry_column,) if self.geometry_column else ()
        pq.write_table(self._table(rows, geometry), self.root / f"rows-{part}.parquet")
        quarantine = quarantine.astype({SOURCE_ROW: "int64", "checks": "string", "reasons": "string", "record": "string"})
        pq.write_table(self._table(quarantine), self.root / f"quarantine-{part}.parquet")
        self.parts += 1
        self.rows_conforming += len(rows)
        self.rows_quarantined += len(quarantine)
        self.rows_read += len(rows) + len(quarantine)

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
