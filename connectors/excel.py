"""Excel workbooks (xlsx): one sheet, a header row, x/y or WKT/GeoJSON geometry."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import openpyxl
import pandas as pd

from connectors.base import DEFAULT_CHUNK_ROWS, Chunk, Connector, SourceError
from connectors.tabular_geometry import TabularConfig, frame_geometry


class ExcelConfig(TabularConfig):
    sheet: str | int = 0
    header_row: int = 1  # 1-based, as a spreadsheet user counts


class ExcelConnector(Connector):
    name = "xlsx"
    Config = ExcelConfig
    config: ExcelConfig

    def sheets(self) -> list[str]:
        """The workbook's sheet names, in order."""
        workbook = openpyxl.load_workbook(self.path, read_only=True)
        try:
            return list(workbook.sheetnames)
        finally:
            workbook.close()

    def _read(self, nrows: int | None = None) -> pd.DataFrame:
        self.check()
        try:
            frame = pd.read_excel(
                self.path,
                sheet_name=self.config.sheet,
                header=self.config.header_row - 1,
                dtype=str,
                keep_default_na=False,
                nrows=nrows,
                engine="openpyxl",
            )
        except ValueError as exc:  # unknown sheet name or index
            raise SourceError(
                f"{self.describe()}: sheet {self.config.sheet!r}: {exc}; set source.sheet to one of "
                f"{', '.join(map(repr, self.sheets()))}"
            ) from exc
        except Exception as exc:  # openpyxl raises many kinds for a damaged file
            raise SourceError(f"{self.describe()}: cannot read the workbook: {exc}") from exc
        frame.columns = [str(c).strip() for c in frame.columns]
        return frame

    def columns(self) -> list[str]:
        return list(self._read(nrows=0).columns)

    def chunks(self, rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
        frame = self._read()
        frame = frame[~(frame.astype("string").fillna("").apply(lambda s: s.str.strip()) == "").all(axis=1)]
        if frame.empty:
            raise SourceError(f"{self.describe()}: sheet {self.config.sheet!r} has no data rows")
        # spreadsheet row numbers: header_row, then data
        numbers = frame.index.to_numpy() + self.config.header_row + 1
        for start in range(0, len(frame), rows):
            part = frame.iloc[start : start + rows].reset_index(drop=True)
            geometry = frame_geometry(part, self.config, f"{self.describe()}, sheet {self.config.sheet!r}")
            yield Chunk(frame=part, geometry=geometry, source_rows=np.asarray(numbers[start : start + rows]))
