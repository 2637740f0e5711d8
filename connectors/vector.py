"""GIS vector files through GDAL (pyogrio), streamed as Arrow batches.

Shapefile (a folder, a .shp, or a .zip), GeoJSON and GeoPackage share one
reader; each format is a small subclass that only names itself and, for the
Shapefile, checks that its parts are all there.

A zip is checked before GDAL sees it: a member named ``../x`` or ``/x`` is refused
(zip-slip; GDAL would only read it, but a hub should not pass on such archives).
"""

from __future__ import annotations

import contextlib

import pathlib
import re
import zipfile
from collections.abc import Iterator

import numpy as np
import pyogrio
import pyproj
import shapely
from pyproj.exceptions import CRSError

from connectors.base import DEFAULT_CHUNK_ROWS, Chunk, Connector, SourceConfig, SourceError

# a .prj without an authority code is matched to an EPSG code at this pyproj confidence
# (ESRI WKT of a State Plane zone, e.g. NYC's nybb.prj, matches EPSG:2263 at 100)
CRS_MATCH_CONFIDENCE = 70
_AUTHORITY_CODE = re.compile(r"^[A-Za-z]+:\w+$")


class VectorConfig(SourceConfig):
    layer: str | None = None
    encoding: str | None = None


def unsafe_member(name: str) -> bool:
    """Whether a zip member name escapes the folder it is extracted to."""
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) is not None or ".." in parts


def declared_epsg(crs: str | None) -> str | None:
    """``AUTHORITY:CODE`` as given, a WKT matched to ``EPSG:n`` if pyproj is confident, else the WKT."""
    if not crs or _AUTHORITY_CODE.match(crs):
        return crs
    try:
        code = pyproj.CRS.from_user_input(crs).to_epsg(min_confidence=CRS_MATCH_CONFIDENCE)
    except CRSError:
        return crs
    return f"EPSG:{code}" if code is not None else crs


class VectorConnector(Connector):
    name = "vector"
    Config = VectorConfig
    config: VectorConfig

    def _missing_parts(self, names: list[str]) -> list[str]:
        """Files the format needs beside ``names`` (a zip's members or a folder's files); none here."""
        return []

    def _zip_members(self) -> list[str]:
        try:
            with zipfile.ZipFile(self.path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile as exc:
            raise SourceError(f"{self.describe()}: not a readable zip archive ({exc}); re-create the zip") from exc
        unsafe = [n for n in names if unsafe_member(n)]
        if unsafe:
            raise SourceError(
                f"{self.describe()}: refused, zip member {unsafe[0]!r} points outside the archive "
                "(absolute path or '..'); re-create the zip with plain relative names"
            )
        return [n for n in names if not n.startswith("__MACOSX/") and not n.rsplit("/", 1)[-1].startswith("._")]

    def _require_parts(self) -> None:
        """Raise SourceError if the file is missing, a zip is unsafe, or parts of the format are absent."""
        super().check()
        if self.path.suffix.lower() == ".zip":
            names, where = self._zip_members(), "in the zip"
        elif self.path.is_dir():
            names, where = [p.name for p in self.path.iterdir()], "in the folder"
        else:
            names, where = [p.name for p in self.files()], "beside it"
        missing = self._missing_parts(names)
        if missing:
            raise SourceError(
                f"{self.describe()}: {', '.join(missing)} missing {where}; a {self.name} needs all its parts "
                "with the same name; ask the department for the complete export"
            )

    @contextlib.contextmanager
    def _open(self, batch_size: int = 65_536):
        """pyogrio's Arrow stream; GDAL's errors on opening become SourceErrors.

        pyogrio raises when the context is entered, not when open_arrow is called.
        """
        self._require_parts()
        stream = pyogrio.open_arrow(
            str(self.path), layer=self.config.layer, encoding=self.config.encoding, batch_size=batch_size,
            use_pyarrow=True,
        )
        try:
            opened = stream.__enter__()
        except pyogrio.errors.DataSourceError as exc:
            raise SourceError(f"{self.describe()}: GDAL cannot open it: {exc}") from exc
        except pyogrio.errors.DataLayerError as exc:
            raise SourceError(f"{self.describe()}: {exc}; check source.layer") from exc
        try:
            yield opened
        finally:
            stream.__exit__(None, None, None)

    def info(self) -> dict:
        with self._open(batch_size=1) as (meta, _reader):
            return meta

    def check(self) -> None:
        self.info()

    def columns(self) -> list[str]:
        return [str(f) for f in self.info()["fields"]]

    def crs(self) -> str | None:
        return declared_epsg(self.info().get("crs"))

    def chunks(self, rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
        first = 1
        with self._open(batch_size=rows) as (meta, reader):
            geometry_column = meta.get("geometry_name") or "wkb_geometry"
            batches = iter(reader)
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as exc:
                    # a file cut off or damaged after the first features: nothing is published
                    raise SourceError(
                        f"{self.describe()}: GDAL stopped reading after feature {first - 1}: {exc}; "
                        "the file looks truncated or damaged, export it again"
                    ) from exc
                frame = batch.to_pandas()
                wkb = frame.pop(geometry_column).to_numpy() if geometry_column in frame else None
                geometry = shapely.from_wkb(wkb) if wkb is not None else None
                yield Chunk(frame=frame, geometry=geometry, source_rows=np.arange(first, first + len(frame)))
                first += len(frame)
        if first == 1:
            raise SourceError(f"{self.describe()}: the layer has no features")


class ShapefileConnector(VectorConnector):
    name = "shapefile"
    PARTS = (".shp", ".shx", ".dbf")  # .prj and .cpg are optional

    def _missing_parts(self, names: list[str]) -> list[str]:
        stems: dict[str, set[str]] = {}
        for name in names:
            stem, dot, ext = name.rpartition(".")
            if dot:
                stems.setdefault(stem, set()).add("." + ext.lower())
        shapes = [stem for stem, exts in stems.items() if ".shp" in exts]
        if not shapes:
            return ["a .shp file"]
        return [f"{stem}{ext}" for stem in shapes for ext in self.PARTS if ext not in stems[stem]]

    def files(self) -> list[pathlib.Path]:
        """A .shp comes with its sidecar files (.shx, .dbf, .prj, ...): the attributes live in the .dbf."""
        if self.path.suffix.lower() != ".shp" or not self.path.parent.is_dir():
            return super().files()
        return sorted(p for p in self.path.parent.iterdir() if p.name.startswith(self.path.stem + "."))


class GeoJSONConnector(VectorConnector):
    name = "geojson"


class GeoPackageConnector(VectorConnector):
    name = "gpkg"
