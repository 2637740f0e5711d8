"""CSV/TSV files: declared or detected encoding, sniffed delimiter, x/y or WKT/GeoJSON geometry.

Encoding detection (no ``source.encoding``) runs connectors/encodings.py's detector on the
first 64 KiB; when no candidate fits, the file is read as Latin-1 (its bytes then fail
nowhere, and the text shows what to declare). For the detector's limits declare
``source.encoding`` in the manifest.
"""

from __future__ import annotations

import codecs
import csv as _csv
import logging
import pathlib
from collections.abc import Iterator

import numpy as np
import pandas as pd

from twinhub.connectors.base import DEFAULT_CHUNK_ROWS, Chunk, FileConfig, FileConnector, SourceError
from twinhub.connectors.csv_arrow import ArrowGaveUp, Undecodable, arrow_frames
from twinhub.connectors.encodings import CANDIDATE_ENCODINGS, detect_encoding  # noqa: F401 (re-exported)
from twinhub.connectors.tabular_geometry import TabularConfig, frame_geometry

SNIFF_BYTES = 64 * 1024
log = logging.getLogger("twinhub")


class CsvConfig(TabularConfig, FileConfig):
    encoding: str | None = None
    delimiter: str | None = None


def locate_undecodable(path: pathlib.Path, encoding: str, delimiter: str) -> tuple[int, int, int] | None:
    """Byte offset, file line and data row (0 = the header) of the first byte not valid
    in ``encoding``, or None if the whole file decodes.

    Lines are split on ``\\n`` before decoding, which is safe for UTF-8, GB18030, Big5
    and single-byte encodings (no multi-byte character contains that byte).
    """
    found: list[int] = []

    def decoded_lines() -> Iterator[str]:
        offset = 0
        with open(path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    yield raw.decode(encoding)
                except UnicodeDecodeError as exc:
                    found.extend((offset + exc.start, number))
                    # "?" stands for the bad byte, so the bad record is always the last one read
                    yield raw[: exc.start].decode(encoding) + "?"
                    return
                offset += len(raw)

    records = sum(1 for record in _csv.reader(decoded_lines(), delimiter=delimiter) if record)
    return (found[0], found[1], records - 1) if found else None


class CsvConnector(FileConnector):
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
        self._check_width()

    def _check_width(self) -> None:
        """Refuse a header of more than ``limits.max_columns`` names before any parser sees it: the
        delimiters of its first line are counted a block at a time (a 10 MB header of a million
        columns would otherwise take minutes and gigabytes). Quoted delimiters count too: an upper bound."""
        delimiter = self.delimiter()
        if len(delimiter) != 1:
            return
        encoding = self.encoding()
        mark = delimiter.encode("utf-8" if encoding.lower().startswith("utf-8") else encoding, errors="ignore") or b","
        cap = self.rules.limits.max_columns
        count = 1
        with self.path.open("rb") as fh:
            while block := fh.read(1 << 20):
                line, newline, _ = block.partition(b"\n")
                count += line.count(mark)
                if count > cap:
                    self.rules.limits.check_columns(count, self.describe(), at_least=True)
                if newline:
                    return

    def sample(self) -> bytes:
        with self.path.open("rb") as fh:
            return fh.read(SNIFF_BYTES)

    def encoding(self) -> str:
        if self.config.encoding:
            declared = self.config.encoding.lower().replace("_", "-")
            return "utf-8-sig" if declared in ("utf-8", "utf8") else self.config.encoding
        sample = self.sample()
        whole_file = len(sample) < SNIFF_BYTES
        return detect_encoding(sample, whole_file) or "latin-1"

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

    def _undecodable(self, reason: str) -> SourceError:
        """The error for bytes the encoding cannot read, saying exactly where they are."""
        encoding = self.encoding()
        how = f"declared {self.config.encoding}" if self.config.encoding else f"detected {encoding}"
        where = locate_undecodable(self.path, encoding, self.delimiter())
        if where is None:
            place = ""
        else:
            offset, line, row = where
            part = "the header" if row == 0 else f"data row {row} (the rows before it decode)"
            place = f" at byte {offset}, line {line} of the file, in {part}"
        return SourceError(
            f"{self.describe()}: bytes not valid in the {how} encoding ({reason}){place}; "
            "declare the right source.encoding in the manifest (e.g. gbk, big5, utf-8, latin-1)"
        )

    def columns(self) -> list[str]:
        return [c.strip() for c in self._header()]

    def _header(self) -> list[str]:
        """The column names as pandas reads them."""
        self.check()
        try:
            return [str(c) for c in self._reader(nrows=0).columns]
        except UnicodeDecodeError as exc:
            raise self._undecodable(exc.reason) from exc
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise SourceError(f"{self.describe()}: cannot read the header: {exc}") from exc

    def chunks(self, rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
        header = self._header()  # also checks the file
        first = 1
        try:
            for frame in self._frames(header, rows):
                if frame.empty:
                    continue
                frame.columns = [str(c).strip() for c in frame.columns]
                geometry = frame_geometry(frame, self.config, self.describe())
                yield Chunk(frame=frame, geometry=geometry, source_rows=np.arange(first, first + len(frame)))
                first += len(frame)
        except UnicodeDecodeError as exc:
            raise self._undecodable(exc.reason) from exc
        except Undecodable as exc:
            raise self._undecodable(str(exc)) from exc
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise SourceError(f"{self.describe()}: {exc}") from exc
        if first == 1:
            raise SourceError(f"{self.describe()}: the file has a header but no data rows")

    def _frames(self, header: list[str], rows: int) -> Iterator[pd.DataFrame]:
        """pyarrow's frames while it reads as pandas would, then pandas' from the first row not yielded
        (connectors/csv_arrow.py says when pyarrow gives up)."""
        done = 0
        try:
            for frame in arrow_frames(self.path, self.encoding(), self.delimiter(), header, rows):
                yield frame
                done += len(frame)
            return
        except ArrowGaveUp as why:
            log.info("%s: read with pandas from data row %d on: %s", self.describe(), done + 1, why)
        for frame in self._reader(rows=rows):
            if done >= len(frame):
                done -= len(frame)
                continue
            yield frame.iloc[done:] if done else frame
            done = 0
