"""CSV/TSV files: declared or detected encoding, sniffed delimiter, x/y point columns."""

from __future__ import annotations

import csv as _csv
import codecs
from collections.abc import Iterator

import numpy as np
import pandas as pd

from connectors.base import Chunk, Connector, SourceConfig, SourceError
from connectors.points import points_from_columns

# tried in order when no encoding is declared; latin-1 accepts any bytes, so it is last
CANDIDATE_ENCODINGS = ("utf-8-sig", "gb18030", "big5", "latin-1")
SNIFF_BYTES = 64 * 1024


class CsvConfig(SourceConfig):
    encoding: str | None = None
    delimiter: str | None = None
    x: str | None = None
    y: str | None = None


class CsvConnector(Connector):
    name = "csv"
    Config = CsvConfig
    config: CsvConfig

    def check(self) -> None:
        super().check()
        if self.config.encoding:
            try:
                codecs.lookup(self.config.encoding)
            except LookupError:
                raise SourceError(
                    f"{self.describe()}: unknown encoding {self.config.encoding!r} in source.encoding "
                    "(use e.g. utf-8, gbk, gb18030, big5, latin-1)"
                ) from None
        if not self.sample().strip():
            raise SourceError(f"{self.describe()}: the file is empty")

    def sample(self) -> bytes:
        with self.path.open("rb") as fh:
            return fh.read(SNIFF_BYTES)

    def encoding(self) -> str:
        if self.config.encoding:
            return "utf-8-sig" if self.config.encoding.lower().replace("_", "-") in ("utf-8", "utf8") else self.config.encoding
        sample = self.sample()
        for enc in CANDIDATE_ENCODINGS:
            try:
                sample.decode(enc)
            except UnicodeDecodeError as exc:
                if exc.start >= len(sample) - 4:  # a character cut at the end of the sample
                    return enc
                continue
            return enc
        return "latin-1"

    def delimiter(self) -> str:
        if self.config.delimiter:
            return self.config.delimiter
        text = self.sample().decode(self.encoding(), errors="replace")
        try:
            return _csv.Sniffer().sniff(text.split("\n", 20)[-2] if text.count("\n") > 20 else text, ",\t;|").delimiter
        except _csv.Error:
            return ","

    def _reader(self, rows: int | None = None, nrows: int | None = None):
        return pd.read_csv(
            self.path,
            encoding=self.encoding(),
            sep=self.delimiter(),
            dtype=str,
            keep_default_na=False,
            chunksize=rows,
            nrows=nrows,
            skipinitialspace=True,
        )

    def columns(self) -> list[str]:
        try:
            return [str(c).strip() for c in self._reader(nrows=0).columns]
        except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise SourceError(f"{self.describe()}: cannot read the header: {exc}") from exc

    def chunks(self, rows: int = 50_000) -> Iterator[Chunk]:
        first = 1
        try:
            for frame in self._reader(rows=rows):
                frame.columns = [str(c).strip() for c in frame.columns]
                geometry = None
                if self.config.x and self.config.y:
                    geometry = points_from_columns(frame, self.config.x, self.config.y)
                yield Chunk(frame=frame, geometry=geometry, source_rows=np.arange(first, first + len(frame)))
                first += len(frame)
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"{self.describe()}: bytes after data row {first - 1} are not valid {self.encoding()} ({exc.reason}); "
                "declare the right source.encoding in the manifest (e.g. gbk, big5, utf-8)"
            ) from exc
        except pd.errors.ParserError as exc:
            raise SourceError(f"{self.describe()}: {exc}") from exc
        if first == 1:
            raise SourceError(f"{self.describe()}: the file has a header but no data rows")
