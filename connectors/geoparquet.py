"""GeoParquet files, read a record batch at a time with pyarrow.

The file's ``geo`` metadata names the geometry column (WKB) and its CRS (PROJJSON;
absent means OGC:CRS84, as the GeoParquet specification says).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyproj
import shapely

from twinhub.connectors.base import DEFAULT_CHUNK_ROWS, Chunk, FileConnector, SourceError
from twinhub.connectors.vector import declared_epsg


class GeoParquetConnector(FileConnector):
    name = "geoparquet"

    def _file(self) -> pq.ParquetFile:
        super().check()
        try:
            return pq.ParquetFile(self.path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise SourceError(f"{self.describe()}: not a readable Parquet file ({exc}); export it again") from None

    def _geo(self) -> dict:
        metadata = self._file().schema_arrow.metadata or {}
        try:
            return json.loads(metadata.get(b"geo", b"{}"))
        except ValueError as exc:
            raise SourceError(f"{self.describe()}: its 'geo' metadata is not JSON ({exc})") from None

    def _geometry_column(self) -> str | None:
        geo = self._geo()
        column = geo.get("primary_column")
        encoding = (geo.get("columns") or {}).get(column, {}).get("encoding", "WKB")
        if column and encoding.upper() != "WKB":
            raise SourceError(f"{self.describe()}: geometry column {column!r} is encoded as {encoding}; only WKB is read")
        return column

    def check(self) -> None:
        self._geometry_column()
        self.rules.limits.check_columns(len(self._file().schema_arrow.names), self.describe())

    def columns(self) -> list[str]:
        geometry = self._geometry_column()
        return [name for name in self._file().schema_arrow.names if name != geometry]

    def crs(self) -> str | None:
        column = self._geometry_column()
        if not column:
            return None
        crs = (self._geo().get("columns") or {}).get(column, {}).get("crs", "OGC:CRS84")
        if crs is None:
            return None  # the specification's "unknown": the manifest must say
        return declared_epsg(crs if isinstance(crs, str) else pyproj.CRS.from_json_dict(crs).to_wkt())

    def chunks(self, rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
        geometry_column, first = self._geometry_column(), 1
        for batch in self._file().iter_batches(batch_size=rows):
            frame = batch.to_pandas()
            wkb = frame.pop(geometry_column).to_numpy() if geometry_column else None
            geometry = shapely.from_wkb(wkb, on_invalid="ignore") if wkb is not None else None
            yield Chunk(frame=frame, geometry=geometry, source_rows=np.arange(first, first + len(frame)))
            first += len(frame)
        if first == 1:
            raise SourceError(f"{self.describe()}: the file has no rows")
