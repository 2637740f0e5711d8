"""A file's first bytes must be those of the format its manifest declares.

GDAL, openpyxl and pyarrow each guess from the content what they open; a file of
another format under a familiar name (an OGR VRT saved as ``.geojson``, a SQLite
database as ``.gpkg``) would be read by whatever claims it. So before any reader sees
a file, its signature is checked against the declared ``format``:

| format | signature |
|---|---|
| geojson | JSON text: ``{`` or ``[`` first (after a UTF-8 BOM and white space) |
| gpkg | ``SQLite format 3``, application id ``GPKG`` (or ``GP10``/``GP11``) at byte 68 |
| fgb | ``fgb`` and a version byte |
| geoparquet | ``PAR1`` at both ends |
| xlsx | a zip holding ``[Content_Types].xml``, no member a decompression bomb |
| shapefile | a ``.shp`` (file code 9994), a zip of them, or a folder |
| (vector, zipped) | a ``.zip``: its members are checked by connectors/vector.py, the driver after opening |
| csv | text: none of the binary signatures above |

>>> sniff(b'\\xef\\xbb\\xbf  {"type": "FeatureCollection"}')
'json'
>>> sniff(b'<OGRVRTDataSource>')
'xml'
"""

from __future__ import annotations

import pathlib
import zipfile

from twinhub.connectors.errors import SourceError
from twinhub.connectors.policy import Limits

SIGNATURES = (  # leading bytes -> what the file is
    (b"PK\x03\x04", "zip"), (b"PK\x05\x06", "zip"), (b"SQLite format 3\x00", "sqlite"), (b"PAR1", "parquet"),
    (b"fgb", "flatgeobuf"), (b"\x1f\x8b", "gzip"), (b"\x00\x00\x27\x0a", "shp"), (b"%PDF", "pdf"),
    (b"\x7fELF", "executable"), (b"\xd0\xcf\x11\xe0", "ole2 (old Office)"), (b"BZh", "bzip2"), (b"7z\xbc\xaf", "7z"),
    (b"\xfd7zXZ", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"),
)
GPKG_APPLICATION_IDS = (b"GPKG", b"GP10", b"GP11")
HEAD = 4096


def sniff(head: bytes) -> str:
    """What the first bytes of a file say it is: a signature's name, ``json``, ``xml`` or ``text``."""
    for signature, name in SIGNATURES:
        if head.startswith(signature):
            return name
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text[:1] in (b"{", b"["):
        return "json"
    if text[:1] == b"<":
        return "xml"
    return "text"


def _head(path: pathlib.Path, size: int = HEAD) -> bytes:
    with path.open("rb") as fh:
        return fh.read(size)


def _refuse(where: str, declared: str, found: str, fix: str = "") -> SourceError:
    if declared.startswith("an xlsx"):
        where += ": cannot read the workbook"
    if declared == "Parquet":
        where += ": not a readable Parquet file"
    if declared.startswith(("GeoJSON", "a GeoPackage", "FlatGeobuf", "a Shapefile")):
        where += ": GDAL cannot open it"  # nor is it given the chance: GDAL would pick a driver by content
    return SourceError(f"{where}: refused, the file is {found}, not {declared} as source.format says; "
                       + (fix or f"export it again as {declared}, or correct source.format"))


def _zip_members(path: pathlib.Path, where: str, limits: Limits) -> list[zipfile.ZipInfo]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise SourceError(f"{where}: not a readable zip archive ({exc}); export it again") from None
    for info in members:
        if limits.inflated(info.compress_size, info.file_size):
            raise SourceError(
                f"{where}: refused, zip member {info.filename!r} expands {info.file_size / max(info.compress_size, 1):,.0f} "
                f"times ({info.compress_size:,} to {info.file_size:,} bytes; over {limits.max_inflate_ratio}:1 is "
                "refused as a zip bomb: limits.max_inflate_ratio in twinhub.yaml)")
    return members


def check_magic(fmt: str, path: pathlib.Path, where: str, limits: Limits | None = None) -> None:
    """Raise SourceError unless ``path`` starts as files of ``fmt`` do (a folder is a Shapefile's)."""
    limits = limits or Limits()
    if path.is_dir():
        if fmt != "shapefile":
            raise SourceError(f"{where}: is a folder; source.path names a folder only for a Shapefile")
        for shp in path.glob("*.[sS][hH][pP]"):
            check_magic("shapefile", shp, f"{where}, {shp.name}", limits)
        return
    head = _head(path)
    kind = sniff(head)
    if fmt in ("geojson", "gpkg", "fgb") and kind == "zip" and path.suffix.lower() == ".zip":
        return  # GDAL reads it in place; the vector connector checks its members, then GDAL's driver
    if fmt == "geojson" and kind != "json":
        raise _refuse(where, "GeoJSON (JSON text)", kind)
    if fmt == "fgb" and (kind != "flatgeobuf" or len(head) < 4):
        raise _refuse(where, "FlatGeobuf", kind)
    if fmt == "geoparquet":
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 4))
            tail = fh.read(4)
        if kind != "parquet" or tail != b"PAR1":
            raise _refuse(where, "Parquet", kind if kind != "parquet" else "a Parquet file without its footer")
    if fmt == "gpkg" and (kind != "sqlite" or head[68:72] not in GPKG_APPLICATION_IDS):
        raise _refuse(where, "a GeoPackage", "an SQLite database but not a GeoPackage" if kind == "sqlite" else kind)
    if fmt == "xlsx":
        if kind != "zip":
            raise _refuse(where, "an xlsx workbook", kind, "save it as .xlsx (Excel 2007 or later), or correct source.format")
        if "[Content_Types].xml" not in {m.filename for m in _zip_members(path, where, limits)}:
            raise _refuse(where, "an xlsx workbook", "a zip without [Content_Types].xml")
    if fmt == "shapefile":
        _check_shapefile(path, head, kind, where, limits)
    if fmt == "csv" and kind not in ("text", "json", "xml"):
        raise _refuse(where, "CSV text", kind)


def _check_shapefile(path: pathlib.Path, head: bytes, kind: str, where: str, limits: Limits) -> None:
    if kind == "zip":
        with zipfile.ZipFile(path) as archive:
            for info in _zip_members(path, where, limits):
                if info.filename.lower().endswith(".shp") and not info.filename.startswith("__MACOSX/"):
                    with archive.open(info) as member:
                        if member.read(4) != b"\x00\x00\x27\x0a":
                            raise _refuse(f"{where}, member {info.filename}", "a Shapefile .shp", "something else")
        return
    if path.suffix.lower() == ".shp" and kind != "shp":
        raise _refuse(where, "a Shapefile .shp", kind)
    if path.suffix.lower() not in (".shp", ".zip"):
        raise SourceError(f"{where}: a Shapefile is a .shp, a .zip of one, or a folder; check source.path")
