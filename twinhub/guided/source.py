"""What ``twinhub register SOURCE`` was given, as a manifest's ``source`` mapping.

SOURCE is a file or folder (the format from its suffix), an http(s) URL, or a
database table written as a URL whose password comes from an environment variable::

    >>> source_spec("https://data.example.org/toilets.csv")["data_format"]
    'csv'
    >>> source_spec("https://gis.example.org/arcgis/rest/services/Bins/FeatureServer/0")["format"]
    'arcgis'
    >>> spec = source_spec("postgresql://hub@db.city:5432/assets?table=public.bins&password_env=ASSETS_PW")
    >>> spec["format"], spec["host"], spec["port"], spec["table"], spec["password_env"]
    ('postgres', 'db.city', 5432, 'public.bins', 'ASSETS_PW')
"""

from __future__ import annotations

import pathlib
import urllib.parse

from twinhub.errors import UserError

FILE_FORMATS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv", ".xlsx": "xlsx", ".shp": "shapefile", ".zip": "shapefile",
    ".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".fgb": "fgb", ".parquet": "geoparquet",
    ".geoparquet": "geoparquet",
}
DB_SCHEMES = {"postgresql": "postgres", "postgres": "postgres", "mysql": "mysql", "mariadb": "mysql"}
MANIFEST_SUFFIXES = (".yaml", ".yml")


class GuidedError(UserError, ValueError):
    """The guided registration cannot go on; the message says what to do."""


def is_manifest(source: str) -> bool:
    return pathlib.Path(source).suffix.lower() in MANIFEST_SUFFIXES and "://" not in source


def source_spec(source: str) -> dict:
    """The ``source`` mapping for SOURCE (a path, an http(s) URL, or a database URL)."""
    scheme = source.split("://", 1)[0].lower() if "://" in source else ""
    if scheme in ("http", "https"):
        return _http_spec(source)
    if scheme in DB_SCHEMES:
        return _db_spec(source, DB_SCHEMES[scheme])
    if scheme:
        raise GuidedError(f"{source}: unknown kind of source {scheme!r}; give a file, an http(s) URL, "
                          f"or a database URL ({', '.join(sorted(DB_SCHEMES))}://user@host/db?table=schema.table)")
    return _file_spec(pathlib.Path(source))


def _file_spec(path: pathlib.Path) -> dict:
    if not path.exists():
        raise GuidedError(f"{path}: no such file or folder; check the path")
    if path.is_dir():
        return {"format": "shapefile", "path": str(path)}
    fmt = FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise GuidedError(f"{path}: cannot tell the format from the suffix {path.suffix!r}; "
                          f"the hub reads {', '.join(sorted(FILE_FORMATS))} files")
    return {"format": fmt, "path": str(path)}


def _http_spec(url: str) -> dict:
    path = urllib.parse.urlsplit(url).path.rstrip("/")
    lowered = path.lower()
    if "/featureserver/" in lowered or "/mapserver/" in lowered:
        return {"format": "arcgis", "url": url}
    if "/collections/" in lowered and lowered.endswith("/items"):
        return {"format": "ogcapi", "url": url}
    suffix = pathlib.PurePosixPath(lowered).suffix
    data_format = "csv" if suffix in (".csv", ".tsv", ".txt") else "geojson" if suffix in (".geojson", ".json") else None
    if data_format is None:
        raise GuidedError(f"{url}: cannot tell what the URL serves; the hub reads .csv and .geojson files, "
                          "ArcGIS FeatureServer layers and OGC API collections' /items over HTTP(S)")
    return {"format": "http", "url": url, "data_format": data_format}


def _db_spec(url: str, fmt: str) -> dict:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    if parts.password:
        raise GuidedError("a password in the database URL is refused: put it in an environment variable "
                          "and add ?password_env=NAME to the URL")
    database = parts.path.lstrip("/")
    table = query.pop("table", None)
    if not (parts.hostname and database and table and parts.username):
        raise GuidedError(f"database URL: give {fmt}://USER@HOST[:PORT]/DATABASE?table=SCHEMA.TABLE"
                          "[&password_env=NAME]")
    spec = {"format": fmt, "host": parts.hostname, "database": database, "user": parts.username, "table": table}
    if parts.port:
        spec["port"] = parts.port
    if query.get("password_env"):
        spec["password_env"] = query.pop("password_env")
    if query:
        raise GuidedError(f"database URL: unknown parameter(s) {', '.join(sorted(query))}; use table and password_env")
    return spec
