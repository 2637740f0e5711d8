"""GIS vector files through GDAL (pyogrio), streamed as Arrow batches.

Shapefile (a folder, a .shp, or a .zip), GeoJSON and GeoPackage share one
reader; each format is a small subclass that only names itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyogrio
import shapely

from connectors.base import Chunk, Connector, SourceConfig, SourceError


class VectorConfig(SourceConfig):
    layer: str | None = None
    encoding: str | None = None


class VectorConnector(Connector):
    name = "vector"
    Config = VectorConfig
    config: VectorConfig

    def _open(self, batch_size: int = 65_536):
        try:
            return pyogrio.open_arrow(
                str(self.path),
                layer=self.config.layer,
                encoding=self.config.encoding,
                batch_size=batch_size,
                use_pyarrow=True,
            )
        except pyogrio.errors.DataSourceError as exc:
            raise SourceError(f"{self.describe()}: GDAL cannot open it: {exc}") from exc
        except pyogrio.errors.DataLayerError as exc:
            raise SourceError(f"{self.describe()}: {exc}; check source.layer") from exc

    def info(self) -> dict:
        with self._open(batch_size=1) as (meta, _reader):
            return meta

    def check(self) -> None:
        super().check()
        self.info()

    def columns(self) -> list[str]:
        return [str(f) for f in self.info()["fields"]]

    def crs(self) -> str | None:
        return self.info().get("crs")

    def chunks(self, rows: int = 50_000) -> Iterator[Chunk]:
        first = 1
        with self._open(batch_size=rows) as (meta, reader):
            geometry_column = meta.get("geometry_name") or "wkb_geometry"
            for batch in reader:
                frame = batch.to_pandas()
                wkb = frame.pop(geometry_column).to_numpy() if geometry_column in frame else None
                geometry = shapely.from_wkb(wkb) if wkb is not None else None
                yield Chunk(frame=frame, geometry=geometry, source_rows=np.arange(first, first + len(frame)))
                first += len(frame)
        if first == 1:
            raise SourceError(f"{self.describe()}: the layer has no features")


class ShapefileConnector(VectorConnector):
    name = "shapefile"


class GeoJSONConnector(VectorConnector):
    name = "geojson"


class GeoPackageConnector(VectorConnector):
    name = "gpkg"
