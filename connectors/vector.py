"""GIS vector files through GDAL (pyogrio), streamed as Arrow batches.

Shapefile (a folder, a .shp, or a .zip), GeoJSON, GeoPackage and FlatGeobuf share one
reader; each format is a small subclass that only names itself and, for the
Shapefile, checks that its parts are all there.

A zip is checked before GDAL sees it, and is never extracted (GDAL reads it in
place through /vsizip/). Refused, with the member named:

- a member named ``../x`` or ``/x`` (zip-slip; GDAL would only read it, but a hub
  should not pass on such archives);
- a symbolic link (it could point anywhere on the hub's disk);
- a member, or the archive as a whole, over ``BOMB_MIN_BYTES`` that expands more
  than ``MAX_COMPRESSION_RATIO`` times (a zip bomb). Real exports compress 2-20
  times; smaller ones cannot do harm, whatever their ratio.

Text encoding: ``source.encoding`` if declared; else GDAL's own reading (a Shapefile's
.cpg or the DBF's code-page byte). A DBF with neither has its text detected as a CSV's is
(connectors/encodings.py) from its field names and the character fields of all its records
(the first 256 MiB), so that no later record holds bytes GDAL would silently drop. Text the encoding cannot read raises a SourceError naming ``source.encoding``.
"""

from __future__ import annotations

import contextlib
import pathlib
import re
import zipfile
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyogrio
import pyproj
import shapely
from pyproj.exceptions import CRSError

from twinhub.connectors import gdal
from twinhub.connectors.base import DEFAULT_CHUNK_ROWS, Chunk, FileConfig, FileConnector, SourceError
from twinhub.connectors.encodings import detect_encoding_of_parts

# a .prj without an authority code is matched to an EPSG code at this pyproj confidence
# (ESRI WKT of a State Plane zone, e.g. NYC's nybb.prj, matches EPSG:2263 at 100)
CRS_MATCH_CONFIDENCE = 70
MAX_COMPRESSION_RATIO = 100
BOMB_MIN_BYTES = 1 << 20
_SYMLINK = 0o120000  # the file-type bits of a Unix symlink in a zip member's external attributes
_AUTHORITY_CODE = re.compile(r"^[A-Za-z]+:\w+$")
DBF_SCAN_BYTES = 256 << 20  # a DBF's text is detected on the whole file up to this size, else on its start
LDID_OFFSET = 29  # a DBF header's code-page byte (0: none declared)
# Python's names of the detected encodings as GDAL (iconv) knows them
_GDAL_ENCODING = {"utf-8-sig": "UTF-8", "gb18030": "GB18030", "big5": "BIG5", "latin-1": "ISO-8859-1"}
_UNDECODABLE = (UnicodeDecodeError, pa.ArrowInvalid)


class VectorConfig(FileConfig):
    layer: str | None = None
    encoding: str | None = None


def unsafe_member(name: str) -> bool:
    """Whether a zip member name escapes the folder it is extracted to."""
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) is not None or ".." in parts


def member_refusal(info: zipfile.ZipInfo, max_ratio: int = MAX_COMPRESSION_RATIO,
                   min_bytes: int = BOMB_MIN_BYTES) -> str | None:
    """Why a zip member is refused, or None."""
    if unsafe_member(info.filename):
        return "points outside the archive (absolute path or '..')"
    if (info.external_attr >> 16) & 0o170000 == _SYMLINK:
        return "is a symbolic link"
    if info.file_size > min_bytes and info.file_size > max_ratio * max(info.compress_size, 1):
        ratio = info.file_size / max(info.compress_size, 1)
        return (f"expands {ratio:,.0f} times ({info.compress_size:,} to {info.file_size:,} bytes; over {max_ratio}:1 is "
                "refused as a zip bomb: limits.max_inflate_ratio in twinhub.yaml)")
    return None


def declared_epsg(crs: str | None) -> str | None:
    """``AUTHORITY:CODE`` as given, a WKT matched to ``EPSG:n`` if pyproj is confident, else the WKT."""
    if not crs or _AUTHORITY_CODE.match(crs):
        return crs
    try:
        code = pyproj.CRS.from_user_input(crs).to_epsg(min_confidence=CRS_MATCH_CONFIDENCE)
    except CRSError:
        return crs
    return f"EPSG:{code}" if code is not None else crs


def dbf_texts(data: bytes, block_bytes: int = 8 << 20) -> Iterator[bytes]:
    """The field names, then the character fields of the whole records in ``data`` (a DBF, or its
    first bytes) in blocks of about ``block_bytes``, one field per line: the text an encoding must
    read. Numbers, dates and binary fields are left out. Vectorized: the records are a byte matrix
    whose text columns are kept; a block never splits a field, so it decodes on its own."""
    header_length = int.from_bytes(data[8:10], "little")
    record_length = int.from_bytes(data[10:12], "little")
    names, fields, start = [], [], 1  # a record begins with its deletion flag
    for at in range(32, min(header_length, len(data)) - 31, 32):
        if data[at] == 0x0D:
            break
        descriptor = data[at: at + 32]
        names.append(descriptor[:11].split(b"\0", 1)[0])
        if descriptor[11:12] == b"C" and start + descriptor[16] <= record_length:
            fields.append((start, start + descriptor[16]))
        start += descriptor[16]
    yield b"\n".join(names)
    records = (len(data) - header_length) // record_length if record_length and header_length < len(data) else 0
    if not fields or not records:
        return
    matrix = np.frombuffer(data, np.uint8, count=records * record_length, offset=header_length)
    matrix = matrix.reshape(records, record_length)
    step = max(1, block_bytes // record_length)
    for first in range(0, records, step):
        rows = matrix[first: first + step]
        newline = np.full((len(rows), 1), ord("\n"), np.uint8)
        yield np.hstack([part for a, b in fields for part in (rows[:, a:b], newline)]).tobytes()


class VectorConnector(FileConnector):
    name = "vector"
    Config = VectorConfig
    config: VectorConfig

    def _missing_parts(self, names: list[str]) -> list[str]:
        """Files the format needs beside ``names`` (a zip's members or a folder's files); none here."""
        return []

    def encoding(self) -> str | None:
        """The encoding GDAL reads text with: the declared one, else None (GDAL's own)."""
        return self.config.encoding

    def _undecodable(self, exc: Exception, where: str) -> SourceError:
        how = f"the declared source.encoding {self.config.encoding!r}" if self.config.encoding else (
            f"the detected encoding {self.encoding()}" if self.encoding() else "UTF-8 (no code page in the file)")
        return SourceError(
            f"{self.describe()}: text {where} is not valid in {how} ({exc}); "
            "declare the right source.encoding in the manifest (e.g. gbk, big5, utf-8, latin-1)"
        )

    def _zip_members(self) -> list[str]:
        try:
            with zipfile.ZipFile(self.path) as archive:
                members = archive.infolist()
        except zipfile.BadZipFile as exc:
            raise SourceError(f"{self.describe()}: not a readable zip archive ({exc}); re-create the zip") from exc
        limits = self.rules.limits
        for info in members:
            refusal = member_refusal(info, limits.max_inflate_ratio, limits.inflate_min_bytes)
            if refusal:
                raise SourceError(
                    f"{self.describe()}: refused, zip member {info.filename!r} {refusal}; "
                    "re-create the zip with the plain files and relative names"
                )
        expanded, packed = sum(i.file_size for i in members), sum(i.compress_size for i in members)
        if limits.inflated(packed, expanded):
            raise SourceError(
                f"{self.describe()}: refused, its {len(members)} members expand {expanded / max(packed, 1):,.0f} times "
                f"({packed:,} to {expanded:,} bytes; over {limits.max_inflate_ratio}:1 is refused as a zip bomb: "
                "limits.max_inflate_ratio in twinhub.yaml)"
            )
        names = [info.filename for info in members]
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

        GDAL is locked down first (connectors/gdal.py: the formats' own drivers only, no network
        file systems); the file was checked by then (confined, its magic bytes its format's).
        pyogrio raises when the context is entered, not when open_arrow is called.
        """
        gdal.harden()
        self._require_parts()
        stream = pyogrio.open_arrow(
            str(self.path), layer=self.config.layer, encoding=self.encoding(), batch_size=batch_size,
            use_pyarrow=True,
        )
        with self._gdal_errors("in the layer's fields"):
            opened = stream.__enter__()
        try:
            yield opened
        finally:
            stream.__exit__(None, None, None)

    @contextlib.contextmanager
    def _gdal_errors(self, where: str):
        """GDAL's refusals as SourceErrors naming the source and what to check."""
        try:
            yield
        except pyogrio.errors.DataSourceError as exc:
            raise SourceError(f"{self.describe()}: GDAL cannot open it: {exc}") from exc
        except pyogrio.errors.DataLayerError as exc:
            raise SourceError(f"{self.describe()}: {exc}; check source.layer") from exc
        except _UNDECODABLE as exc:
            raise self._undecodable(exc, where) from exc

    def info(self) -> dict:
        """The layer's metadata, once GDAL has shown it opens the file with the format's own driver."""
        gdal.harden()
        self._require_parts()
        with self._gdal_errors("in the layer's field names"):
            meta = pyogrio.read_info(str(self.path), layer=self.config.layer, encoding=self.encoding())
        gdal.expected_driver(self.name, meta.get("driver"), self.describe())
        self.rules.limits.check_columns(len(meta["fields"]), self.describe())
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
                    batch.validate(full=True)  # GDAL passes text it did not recode as it is: check it is UTF-8
                    frame = batch.to_pandas()
                except StopIteration:
                    break
                except _UNDECODABLE as exc:
                    raise self._undecodable(exc, f"from feature {first}") from exc
                except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as exc:
                    # a file cut off or damaged after the first features: nothing is published
                    raise SourceError(
                        f"{self.describe()}: GDAL stopped reading after feature {first - 1}: {exc}; "
                        "the file looks truncated or damaged, export it again"
                    ) from exc
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

    def encoding(self) -> str | None:
        """The declared encoding; else, for a DBF without .cpg or code-page byte, the detected one."""
        if self.config.encoding:
            return self.config.encoding
        if not hasattr(self, "_detected"):
            head = self._uncoded_dbf_head()
            self._detected = None if head is None else (detect_encoding_of_parts(dbf_texts(head)) or "")
        detected = self._detected
        if detected is None:
            return None
        if not detected:
            raise SourceError(
                f"{self.describe()}: the .dbf has no .cpg and no code page, and its text is none of UTF-8, "
                "GBK/GB18030, Big5 or Latin-1; declare source.encoding in the manifest (e.g. cp1252, shift_jis)"
            )
        return _GDAL_ENCODING.get(detected, detected)

    def _uncoded_dbf_head(self) -> bytes | None:
        """The first bytes of the layer's .dbf if it has neither a .cpg nor a code-page byte, else None."""
        if self.path.suffix.lower() == ".zip":
            with zipfile.ZipFile(self.path) as archive:
                names = self._zip_members()
                dbf, cpg = self._layer_part(names, ".dbf"), self._layer_part(names, ".cpg")
                if dbf is None or cpg is not None:
                    return None
                with archive.open(dbf) as fh:
                    head = fh.read(DBF_SCAN_BYTES)
        else:
            folder = self.path if self.path.is_dir() else self.path.parent
            names = [p.name for p in folder.iterdir()] if self.path.is_dir() else [p.name for p in self.files()]
            dbf, cpg = self._layer_part(names, ".dbf"), self._layer_part(names, ".cpg")
            if dbf is None or cpg is not None:
                return None
            with (folder / dbf).open("rb") as fh:
                head = fh.read(DBF_SCAN_BYTES)
        return head if len(head) > LDID_OFFSET and head[LDID_OFFSET] == 0 else None

    def _layer_part(self, names: list[str], ext: str) -> str | None:
        """The member of ``names`` with extension ``ext`` belonging to the layer read (source.layer,
        the .shp given, or the first Shapefile of a folder or zip)."""
        shapes = sorted(n.rpartition(".")[0] for n in names if n.lower().endswith(".shp"))
        if self.path.suffix.lower() == ".shp":
            shapes = [self.path.stem]
        stem = next((s for s in shapes if s.rsplit("/", 1)[-1] == self.config.layer), shapes[0] if shapes else None)
        return next((n for n in names if n.rpartition(".")[0] == stem and n.lower().endswith(ext)), None)

    def files(self) -> list[pathlib.Path]:
        """A .shp comes with its sidecar files (.shx, .dbf, .prj, ...): the attributes live in the .dbf."""
        if self.path.suffix.lower() != ".shp" or not self.path.parent.is_dir():
            return super().files()
        return sorted(p for p in self.path.parent.iterdir() if p.name.startswith(self.path.stem + "."))


class GeoJSONConnector(VectorConnector):
    name = "geojson"


class GeoPackageConnector(VectorConnector):
    name = "gpkg"


class FlatGeobufConnector(VectorConnector):
    name = "fgb"
