"""Excel workbooks (xlsx): one sheet, a header row, x/y or WKT/GeoJSON geometry, streamed.

The sheet is read row by row with openpyxl's read-only mode, so a large sheet never
has to fit in memory. Cells are read as the text a spreadsheet shows for them
(``12`` for a whole number stored as 12.0, dates as ``2024-05-01 00:00:00``), like
the CSV connector's cells; rows are numbered as the spreadsheet numbers them.

Layouts departments use, and what happens to them:

- Title rows above the header: set ``header_row`` (1-based) to the row naming the columns.
- A merged header cell (one title over several columns) leaves the columns after its
  first without a name. A column without a name that holds values is an error naming
  the cell, so nothing is read under a wrong name; a column without a name and
  without values (formatting beyond the table) is ignored.
- The same name twice in the header is an error naming both cells.
- Blank rows anywhere are skipped.
- Trailing note rows: rows after the last data row that hold text in the first
  column only (``注：数据截至2023年底``, ``Source: ...``) are not data. With
  ``trailing_notes: drop`` (the default) they are left out and logged with their row
  numbers and count (``dropped_notes`` lists them); with ``keep`` they are read as
  rows like any other (and are then quarantined for their missing values).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Literal

import numpy as np
import openpyxl
import pandas as pd
from openpyxl.utils import get_column_letter
from pydantic import Field

from twinhub.connectors.base import DEFAULT_CHUNK_ROWS, Chunk, FileConfig, FileConnector, SourceError
from twinhub.connectors.tabular_geometry import TabularConfig, frame_geometry

log = logging.getLogger("twinhub.connectors")


class ExcelConfig(TabularConfig, FileConfig):
    sheet: str | int = 0
    header_row: int = Field(1, ge=1)  # 1-based, as a spreadsheet user counts
    trailing_notes: Literal["drop", "keep"] = "drop"


def cell_text(value: object) -> str:
    """A cell as the text a spreadsheet shows (whole floats without ``.0``), blank for empty."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return str(pd.Timestamp(value))
    return str(value)


class ExcelConnector(FileConnector):
    name = "xlsx"
    Config = ExcelConfig
    config: ExcelConfig

    def __init__(self, config: ExcelConfig, policy=None):
        super().__init__(config, policy)
        self.dropped_notes: list[tuple[int, str]] = []  # (row number, text) of trailing notes left out

    def _open(self) -> openpyxl.Workbook:
        super().check()
        try:
            return openpyxl.load_workbook(self.path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a damaged file
            raise SourceError(f"{self.describe()}: cannot read the workbook: {exc}; save it again as .xlsx") from None

    def sheets(self) -> list[str]:
        """The workbook's sheet names, in order."""
        workbook = self._open()
        try:
            return list(workbook.sheetnames)
        finally:
            workbook.close()

    def _where(self) -> str:
        return f"{self.describe()}, sheet {self.config.sheet!r}"

    def _rows(self) -> Iterator[tuple[int, list[str]]]:
        """(spreadsheet row number, cell texts) from the header row on; the workbook is closed after."""
        workbook = self._open()
        try:
            sheet_name = self.config.sheet
            names = workbook.sheetnames
            if isinstance(sheet_name, int) and not 0 <= sheet_name < len(names) or isinstance(sheet_name, str) and sheet_name not in names:
                raise SourceError(f"{self._where()}: no such sheet; set source.sheet to one of {', '.join(map(repr, names))}"
                                  + (" (or its 0-based position)" if isinstance(sheet_name, int) else ""))
            sheet = workbook.worksheets[sheet_name] if isinstance(sheet_name, int) else workbook[sheet_name]
            sheet.reset_dimensions()  # some writers record wrong dimensions; read the rows as they are
            for number, values in enumerate(sheet.iter_rows(min_row=self.config.header_row, values_only=True),
                                            start=self.config.header_row):
                yield number, [cell_text(v) for v in values]
        finally:
            workbook.close()

    def _header(self, rows: Iterator[tuple[int, list[str]]]) -> list[str]:
        number, cells = next(rows, (self.config.header_row, []))
        header = [c.strip() for c in cells]
        while header and not header[-1]:
            header.pop()
        self.rules.limits.check_columns(len(header), self._where())
        if not header:
            raise SourceError(f"{self._where()}: header row {number} is empty; set source.header_row to the row naming the columns")
        seen: dict[str, int] = {}
        for i, name in enumerate(header):
            if name and name in seen:
                raise SourceError(
                    f"{self._where()}: the header names {name!r} twice ({get_column_letter(seen[name] + 1)}{number} and "
                    f"{get_column_letter(i + 1)}{number}); rename one of them"
                )
            seen[name] = i
        return header

    def columns(self) -> list[str]:
        rows = self._rows()
        try:
            return [name for name in self._header(rows) if name]
        finally:
            rows.close()

    def check(self) -> None:
        self.columns()

    def _data(self, header: list[str], number: int, cells: list[str]) -> list[str]:
        """The row's cells under named columns; a value under no name is an error naming its cell."""
        for i, cell in enumerate(cells):
            if cell.strip() and (i >= len(header) or not header[i]):
                raise SourceError(
                    f"{self._where()}: cell {get_column_letter(i + 1)}{number} holds {cell!r} but its column has no "
                    f"name in header row {self.config.header_row} (a merged header cell?); give the column a name "
                    "there, or set source.header_row to the row that names every column"
                )
        cells = cells + [""] * (len(header) - len(cells))
        return [cells[i] for i, name in enumerate(header) if name]

    def _is_note(self, cells: list[str]) -> bool:
        return self.config.trailing_notes == "drop" and bool(cells[0].strip()) and not any(c.strip() for c in cells[1:])

    def chunks(self, rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
        source = self._rows()
        header = self._header(source)
        names = [n for n in header if n]
        buffer: list[tuple[int, list[str]]] = []
        notes: list[tuple[int, list[str]]] = []  # note-like rows: notes if nothing but notes follows them
        read = 0
        for number, cells in source:
            if not any(c.strip() for c in cells):
                continue
            row = self._data(header, number, cells)
            if self._is_note(row) and len(names) > 1:
                notes.append((number, row))
                continue
            buffer += notes + [(number, row)]
            notes = []
            while len(buffer) >= rows:
                yield self._chunk(buffer[:rows], names)
                read += rows
                buffer = buffer[rows:]
        if buffer:
            yield self._chunk(buffer, names)
            read += len(buffer)
        self.dropped_notes = [(number, row[0]) for number, row in notes]
        if notes:
            log.warning("%s: left out %d trailing note row(s): %s", self._where(), len(notes),
                        "; ".join(f"row {n}: {text[:60]!r}" for n, text in self.dropped_notes))
        if not read:
            raise SourceError(f"{self._where()}: no data rows below header row {self.config.header_row}")

    def _chunk(self, buffer: list[tuple[int, list[str]]], names: list[str]) -> Chunk:
        frame = pd.DataFrame([row for _, row in buffer], columns=names, dtype=object)
        geometry = frame_geometry(frame, self.config, self._where())
        return Chunk(frame=frame, geometry=geometry, source_rows=np.array([n for n, _ in buffer]))
