"""Finding 2 (GDAL indirection): a file may only be what its manifest says, and GDAL may only read it.

An OGR VRT saved as ``.geojson`` made GDAL open ``/vsicurl/`` URLs on loopback (past the HTTP
network policy), any local file and the hub's own metadata database, and registration
published them. Now the file's first bytes must be its format's (connectors/magic.py), GDAL
keeps only the formats' own drivers and no network file systems (connectors/gdal.py), and the
driver that opened the file must be the format's.
"""

from __future__ import annotations

import json
import sqlite3
import zipfile

import pyogrio
import pytest

from twinhub.connectors import SourceError, open_source
from twinhub.connectors.gdal import harden
from twinhub.hub.manifest import ManifestError
from twinhub.hub.registration import register
from twinhub.hub.registry import registered

from .source_support import SHELTERS, LoopbackServer, Reply, hub_with, write_manifest


def vrt(source: str, layer: str | None = None) -> str:
    src_layer = f"<SrcLayer>{layer}</SrcLayer>" if layer else ""
    return (f'<OGRVRTDataSource><OGRVRTLayer name="shelters"><SrcDataSource>{source}</SrcDataSource>{src_layer}'
            "</OGRVRTLayer></OGRVRTDataSource>")


# (id, the VRT's data source given the server's URL and the hub's metadata database, its layer)
INDIRECTIONS = [
    ("vsicurl-loopback", lambda url, meta: f"/vsicurl/{url}/shelters.geojson", None),
    ("local-file", lambda url, meta: "CSV:/etc/passwd", "passwd"),
    ("hub-metadata", lambda url, meta: str(meta), "ducklake_metadata"),
]


@pytest.mark.parametrize(("source", "layer"), [pytest.param(*c[1:], id=c[0]) for c in INDIRECTIONS])
def test_an_ogr_vrt_saved_as_geojson_is_refused_at_register_and_reaches_nothing(tmp_path, source, layer):
    hub = hub_with(tmp_path / "home")
    metadata = hub.catalog_dir / "metadata.sqlite"
    assert metadata.is_file()
    with LoopbackServer({"/shelters.geojson": Reply(body=SHELTERS.read_bytes())}) as server:
        folder = tmp_path / "emergency"
        folder.mkdir()
        (folder / "evil.geojson").write_text(vrt(source(server.url, metadata), layer), encoding="utf-8")
        with pytest.raises(ManifestError) as info:
            register(hub, write_manifest(folder, "evil", {"format": "geojson", "path": "evil.geojson"}))
        assert server.requests == []  # GDAL never fetched the URL
    problem = info.value.problems.get("source", "")
    assert "refused" in problem and "not GeoJSON" in problem and "source.format" in problem, info.value.problems
    assert registered(hub) == []


def test_gdal_itself_opens_no_vrt_and_no_network_path(tmp_path):
    """Behind the magic bytes: the process's GDAL has neither the VRT driver nor /vsicurl/."""
    removed = harden()
    assert {"OGR_VRT", "VRT", "SQLite", "CSV", "GDALG", "WFS", "OAPIF", "HTTP", "GPSBabel"} <= set(removed)
    assert set(pyogrio.list_drivers()) <= {"ESRI Shapefile", "GeoJSON", "GPKG", "FlatGeobuf", "MEM"}
    with LoopbackServer({"/shelters.geojson": Reply(body=SHELTERS.read_bytes())}) as server:
        plain = tmp_path / "plain.vrt"
        plain.write_text(vrt(str(SHELTERS)), encoding="utf-8")
        for path in (str(plain), f"/vsicurl/{server.url}/shelters.geojson"):
            with pytest.raises(pyogrio.errors.DataSourceError):
                pyogrio.read_info(path)
        assert server.requests == []
    assert pyogrio.read_info(str(SHELTERS))["driver"] == "GeoJSON"  # the formats' own still read


def test_a_zip_holding_only_a_vrt_is_not_opened_through_it(tmp_path):
    """GDAL opens a one-file zip's member directly: the VRT inside would be read if its driver existed."""
    with LoopbackServer({"/shelters.geojson": Reply(body=SHELTERS.read_bytes())}) as server:
        archive = tmp_path / "shelters.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("shelters.vrt", vrt(f"/vsicurl/{server.url}/shelters.geojson"))
        with pytest.raises(SourceError, match="GDAL cannot open it|GDAL reads it as"):
            open_source({"format": "geojson", "path": str(archive)}).check()
        assert server.requests == []


def test_a_link_inside_a_geojson_file_is_not_fetched(tmp_path):
    """GDAL's GeoJSON driver fetches a linked CRS itself (CPLHTTPFetch, past the network policy):
    its HTTP client is made to fetch nothing; the file still reads, in GeoJSON's default CRS."""
    wkt = b'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]]'
    with LoopbackServer({"/crs.wkt": Reply(body=wkt)}) as server:
        linked = json.loads(SHELTERS.read_text(encoding="utf-8"))
        linked["crs"] = {"type": "link", "properties": {"href": f"{server.url}/crs.wkt", "type": "ogcwkt"}}
        path = tmp_path / "linked.geojson"
        path.write_text(json.dumps(linked), encoding="utf-8")
        connector = open_source({"format": "geojson", "path": str(path)})
        connector.check()
        rows = sum(len(chunk.frame) for chunk in connector.chunks())
        assert server.requests == []
    assert rows == len(linked["features"]) and connector.crs() == "EPSG:4326"


def _sqlite(path):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE secrets (k TEXT)")
    con.commit()
    con.close()
    return path


def _zip_without_content_types(path):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
    return path


def _write(data: bytes):
    def make(path):
        path.write_bytes(data)
        return path
    return make


# (id, format, file name, maker, what the refusal says the file is)
MISMATCHES = [
    ("sqlite-as-gpkg", "gpkg", "x.gpkg", _sqlite, "an SQLite database but not a GeoPackage"),
    ("vrt-as-geojson", "geojson", "x.geojson", _write(vrt("/etc/passwd").encode()), "the file is xml"),
    ("geojson-as-fgb", "fgb", "x.fgb", _write(SHELTERS.read_bytes()), "the file is json"),
    ("csv-as-geoparquet", "geoparquet", "x.parquet", _write(b"a,b\n1,2\n"), "the file is text"),
    ("zip-as-xlsx", "xlsx", "x.xlsx", _zip_without_content_types, "a zip without [Content_Types].xml"),
    ("text-as-shp", "shapefile", "x.shp", _write(b"not a shapefile at all"), "the file is text"),
    ("sqlite-as-csv", "csv", "x.csv", _sqlite, "the file is sqlite"),
    ("gzip-as-csv", "csv", "x.csv", _write(b"\x1f\x8b\x08\x00" + b"\x00" * 40), "the file is gzip"),
]


@pytest.mark.parametrize(("fmt", "name", "make", "says"), [pytest.param(*c[1:], id=c[0]) for c in MISMATCHES])
def test_a_file_whose_bytes_are_not_its_format_is_refused_before_any_reader(tmp_path, fmt, name, make, says):
    path = make(tmp_path / name)
    with pytest.raises(SourceError) as info:
        open_source({"format": fmt, "path": str(path)}).check()
    assert "refused" in str(info.value) and says in str(info.value) and "source.format" in str(info.value)
