"""Connectors against real departmental files and against generated bad ones.

Real files come from ``shared/data/realworld`` (attribution in each folder's SOURCE.txt);
every case id starts with the folder it reads.
"""

from __future__ import annotations

import io
import json
import pathlib
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import openpyxl
import pandas as pd
import pyproj
import pytest
import shapely

from twinhub.connectors import ConfigProblem, SourceError, open_source
from twinhub.connectors.tabular_geometry import geometries_from_text
from twinhub.standards.crs import resolve_crs, transform_geometries, transform_xy

REALWORLD = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data" / "realworld"
NYC = REALWORLD / "us_nyc_borough_boundaries" / "nybb_16a.zip"
ADUR = REALWORLD / "uk_adur_public_toilets" / "adur-public-toilets.csv"
TORONTO = REALWORLD / "ca_toronto_street_trees" / "street-tree-data-EY.csv"
BANQIAO = REALWORLD / "tw_newtaipei_banqiao_parking"
BANQIAO_CSV = BANQIAO / "BanqiaoPublicParkingSpaceInfo.csv"
BANQIAO_XLSX = BANQIAO / "板橋路外公共停車場資訊總表(修正).xlsx"  # the author-corrected workbook
BATH = REALWORLD / "uk_bath_banes_street_assets"
BOSTON = REALWORLD / "us_boston_311" / "boston311-100.csv"

CHUNK = 7  # small, so every real file is read in many chunks
GEOD = pyproj.Geod(ellps="WGS84")


@dataclass
class Read:
    frame: pd.DataFrame
    geometry: np.ndarray | None
    source_rows: np.ndarray
    chunk_sizes: list[int] = field(default_factory=list)


def read_all(spec: dict, rows: int = CHUNK) -> Read:
    """Every chunk of a source, concatenated."""
    if spec["path"].startswith(str(REALWORLD)):  # real files do not change: read each once per session
        key = json.dumps([spec, rows], sort_keys=True)
        if key not in _REAL_READS:
            _REAL_READS[key] = _read_all(spec, rows)
        return _REAL_READS[key]
    return _read_all(spec, rows)


_REAL_READS: dict[str, Read] = {}


def _read_all(spec: dict, rows: int) -> Read:
    chunks = list(open_source(spec).chunks(rows))
    geometries = [c.geometry for c in chunks]
    return Read(
        frame=pd.concat([c.frame for c in chunks], ignore_index=True),
        geometry=None if geometries[0] is None else np.concatenate(geometries),
        source_rows=np.concatenate([c.source_rows for c in chunks]),
        chunk_sizes=[len(c.frame) for c in chunks],
    )


def lonlat(geometry: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude of each geometry's centroid, reprojected to EPSG:4326."""
    centroids = shapely.centroid(transform_geometries(geometry, crs, "EPSG:4326"))
    return shapely.get_x(centroids), shapely.get_y(centroids)


# --------------------------------------------------------------------------- real files: rows, chunks, CRS

# (id, spec, rows, first source_row, CRS the source declares itself)
REAL_SOURCES = [
    ("us_nyc_borough_boundaries-zip-shapefile", {"format": "shapefile", "path": str(NYC)}, 5, 1, "EPSG:2263"),
    ("uk_adur_public_toilets-easting-northing", {"format": "csv", "path": str(ADUR), "x": "GeoX", "y": "GeoY"}, 15, 1, None),
    ("ca_toronto_street_trees-geojson-cells", {"format": "csv", "path": str(TORONTO), "geometry": "geometry"}, 6115, 1, None),
    ("tw_newtaipei_banqiao_parking-csv-bom-crlf", {"format": "csv", "path": str(BANQIAO_CSV), "x": "TW97X", "y": "TW97Y"}, 113, 1, None),
    # xlsx source_rows are spreadsheet row numbers: the header is row 1, data starts at 2
    (
        "tw_newtaipei_banqiao_parking-corrected-xlsx",
        {"format": "xlsx", "path": str(BANQIAO_XLSX), "sheet": "Sheet1", "header_row": 1, "x": "TW97X", "y": "TW97Y"},
        113,
        2,
        None,
    ),
    ("us_boston_311-lat-long", {"format": "csv", "path": str(BOSTON), "x": "longitude", "y": "latitude"}, 100, 1, None),
]


@pytest.mark.parametrize(
    ("spec", "rows", "first_row", "declared_crs"),
    [pytest.param(*case[1:], id=case[0]) for case in REAL_SOURCES],
)
def test_real_source_reads_every_row_in_contiguous_chunks(spec, rows, first_row, declared_crs):
    read = read_all(spec)
    assert len(read.frame) == rows
    assert max(read.chunk_sizes) <= CHUNK and len(read.chunk_sizes) == -(-rows // CHUNK)
    assert read.source_rows.tolist() == list(range(first_row, first_row + rows))
    assert read.geometry is not None and len(read.geometry) == rows
    assert not [c for c in read.frame.columns if c.startswith("\ufeff") or c != c.strip()]
    crs = open_source(spec).crs()
    assert (None if crs is None else resolve_crs(crs).name) == declared_crs


@pytest.mark.parametrize("path", sorted(BATH.glob("*.geojson")), ids=lambda p: f"uk_bath_banes_street_assets-{p.stem}")
def test_geojson_yields_every_feature_in_bath(path):
    """Each Bath & NE Somerset asset file: as many rows as features, all points inside BANES (CRS84)."""
    read = read_all({"format": "geojson", "path": str(path)})
    with path.open(encoding="utf-8") as fh:
        assert len(read.frame) == len(json.load(fh)["features"])
    assert read.source_rows.tolist() == list(range(1, len(read.frame) + 1))
    assert resolve_crs(open_source({"format": "geojson", "path": str(path)}).crs()).name == "EPSG:4326"
    lon, lat = lonlat(read.geometry, "EPSG:4326")
    assert ((lon > -2.7) & (lon < -2.2) & (lat > 51.2) & (lat < 51.5)).all()


# --------------------------------------------------------------------------- real files: features land where they are

# A reference point from outside the file (Wikipedia's infobox coordinate of the place, a
# point inside it) and a tolerance smaller than the place, so "in the right borough /
# town / station". Any real CRS mistake (feet read as metres, axes swapped, a wrong zone,
# no reprojection) lands tens to thousands of km away.
# (id, spec, source CRS, key column, key value, reference lon, lat, tolerance m)
KNOWN_FEATURES = [
    ("us_nyc_borough_boundaries-manhattan", {"format": "shapefile", "path": str(NYC)}, None, "BoroName", "Manhattan", -73.9667, 40.7833, 2_000),
    ("us_nyc_borough_boundaries-brooklyn", {"format": "shapefile", "path": str(NYC)}, None, "BoroName", "Brooklyn", -73.95, 40.65, 3_000),
    ("us_nyc_borough_boundaries-queens", {"format": "shapefile", "path": str(NYC)}, None, "BoroName", "Queens", -73.8167, 40.70, 3_000),
    ("us_nyc_borough_boundaries-bronx", {"format": "shapefile", "path": str(NYC)}, None, "BoroName", "Bronx", -73.8861, 40.8372, 3_000),
    ("us_nyc_borough_boundaries-staten-island", {"format": "shapefile", "path": str(NYC)}, None, "BoroName", "Staten Island", -74.15, 40.5667, 3_000),
    # Adur's towns are 2-3 km across
    (
        "uk_adur_public_toilets-beach-green-lancing",
        {"format": "csv", "path": str(ADUR), "x": "GeoX", "y": "GeoY"},
        "EPSG:27700",
        "LocationText",
        "BEACH GREEN PUBLIC CONVENIENCES BRIGHTON ROAD LANCING",
        -0.32,
        50.83,
        2_000,
    ),
    (
        "uk_adur_public_toilets-middle-street-shoreham",
        {"format": "csv", "path": str(ADUR), "x": "GeoX", "y": "GeoY"},
        "EPSG:27700",
        "LocationText",
        "PUBLIC CONVENIENCES MIDDLE STREET SHOREHAM-BY-SEA",
        -0.273,
        50.834,
        2_000,
    ),
    (
        "uk_adur_public_toilets-southwick-street",
        {"format": "csv", "path": str(ADUR), "x": "GeoX", "y": "GeoY"},
        "EPSG:27700",
        "LocationText",
        "PUBLIC CONVENIENCE SOUTHWICK STREET SOUTHWICK",
        -0.239,
        50.836,
        2_000,
    ),
    # Banqiao station (25°00'51"N 121°27'49"E); its car park is under the ~300 m station complex
    (
        "tw_newtaipei_banqiao_parking-station-car-park-csv",
        {"format": "csv", "path": str(BANQIAO_CSV), "x": "TW97X", "y": "TW97Y"},
        "EPSG:3826",
        "NAME",
        "板橋車站地下停車場",
        121.4636,
        25.0142,
        300,
    ),
    (
        "tw_newtaipei_banqiao_parking-station-car-park-xlsx",
        {"format": "xlsx", "path": str(BANQIAO_XLSX), "x": "TW97X", "y": "TW97Y"},
        "EPSG:3826",
        "NAME",
        "板橋車站地下停車場",
        121.4636,
        25.0142,
        300,
    ),
]


@pytest.mark.parametrize(
    ("spec", "crs", "column", "value", "lon", "lat", "tolerance_m"),
    [pytest.param(*case[1:], id=case[0]) for case in KNOWN_FEATURES],
)
def test_known_feature_lands_where_it_is(spec, crs, column, value, lon, lat, tolerance_m):
    read = read_all(spec)
    crs = crs or resolve_crs(open_source(spec).crs()).name
    (row,) = np.flatnonzero(read.frame[column] == value)
    got_lon, got_lat = lonlat(read.geometry[[row]], crs)
    _, _, metres = GEOD.inv(got_lon[0], got_lat[0], lon, lat)
    assert metres < tolerance_m, (got_lon[0], got_lat[0])


def nyc_as(tmp: pathlib.Path, fmt: str) -> pathlib.Path:
    """us_nyc_borough_boundaries written as FlatGeobuf or GeoParquet, as another department would export it."""
    import geopandas

    boroughs = geopandas.read_file(f"zip://{NYC}")
    if fmt == "geoparquet":
        boroughs.to_parquet(tmp / "nybb.parquet")
        return tmp / "nybb.parquet"
    boroughs.to_file(tmp / "nybb.fgb", driver="FlatGeobuf")
    return tmp / "nybb.fgb"


@pytest.mark.parametrize("fmt", ["fgb", "geoparquet"])
def test_flatgeobuf_and_geoparquet_read_the_boroughs_in_chunks_where_they_are(tmp_path, fmt):
    spec = {"format": fmt, "path": str(nyc_as(tmp_path, fmt))}
    read = read_all(spec, rows=2)
    assert read.chunk_sizes == [2, 2, 1] and read.source_rows.tolist() == [1, 2, 3, 4, 5]
    assert open_source(spec).crs() == "EPSG:2263" and "geometry" not in open_source(spec).columns()
    (row,) = np.flatnonzero(read.frame["BoroName"] == "Manhattan")
    lon, lat = lonlat(read.geometry[[row]], "EPSG:2263")
    assert GEOD.inv(lon[0], lat[0], -73.9667, 40.7833)[2] < 2_000


@pytest.mark.parametrize(("column_meta", "crs"), [({}, "EPSG:4326"), ({"crs": None}, None)], ids=["crs-absent-is-crs84", "crs-null-is-unknown"])
def test_geoparquet_crs_follows_the_specification(tmp_path, column_meta, crs):
    import pyarrow as pa
    import pyarrow.parquet as pq

    geo = {"version": "1.1.0", "primary_column": "geom", "columns": {"geom": {"encoding": "WKB", "geometry_types": ["Point"], **column_meta}}}
    table = pa.table({"name": ["Bund"], "geom": [shapely.Point(121.49, 31.24).wkb]})
    pq.write_table(table.replace_schema_metadata({"geo": json.dumps(geo)}), tmp_path / "p.parquet")
    connector = open_source({"format": "geoparquet", "path": str(tmp_path / "p.parquet")})
    assert (resolve_crs(connector.crs()).name if connector.crs() else None) == crs
    (chunk,) = connector.chunks()
    assert chunk.frame.columns.tolist() == ["name"] and chunk.geometry[0].equals(shapely.Point(121.49, 31.24))


def test_points_reproject_with_transform_xy_like_transform_geometries():
    """uk_adur_public_toilets: transform_xy on the raw easting/northing cells agrees with the point geometries."""
    read = read_all({"format": "csv", "path": str(ADUR), "x": "GeoX", "y": "GeoY"})
    lon, lat = transform_xy(read.frame["GeoX"].astype(float), read.frame["GeoY"].astype(float), "EPSG:27700", "EPSG:4326")
    g_lon, g_lat = lonlat(read.geometry, "EPSG:27700")
    np.testing.assert_allclose(lon, g_lon, atol=1e-9)
    np.testing.assert_allclose(lat, g_lat, atol=1e-9)


# (id, spec, source CRS, lon min, lon max, lat min, lat max)
CITY_BOXES = [
    # City of Toronto limits; 2 "EY" trees carry Etobicoke addresses and sit in the west of the city
    ("ca_toronto_street_trees", {"format": "csv", "path": str(TORONTO), "geometry": "geometry"}, "EPSG:4326", -79.64, -79.11, 43.58, 43.86),
    # brief: lon 121.46, lat 25.01, +-0.05
    ("tw_newtaipei_banqiao_parking-csv", {"format": "csv", "path": str(BANQIAO_CSV), "x": "TW97X", "y": "TW97Y"}, "EPSG:3826", 121.41, 121.51, 24.96, 25.06),
    ("tw_newtaipei_banqiao_parking-xlsx", {"format": "xlsx", "path": str(BANQIAO_XLSX), "x": "TW97X", "y": "TW97Y"}, "EPSG:3826", 121.41, 121.51, 24.96, 25.06),
    ("us_boston_311", {"format": "csv", "path": str(BOSTON), "x": "longitude", "y": "latitude"}, "EPSG:4326", -71.20, -70.98, 42.22, 42.40),
    ("uk_adur_public_toilets", {"format": "csv", "path": str(ADUR), "x": "GeoX", "y": "GeoY"}, "EPSG:27700", -0.40, -0.20, 50.81, 50.87),
]


@pytest.mark.parametrize(
    ("spec", "crs", "lon_min", "lon_max", "lat_min", "lat_max"),
    [pytest.param(*case[1:], id=case[0]) for case in CITY_BOXES],
)
def test_every_geometry_parses_and_falls_in_the_city(spec, crs, lon_min, lon_max, lat_min, lat_max):
    read = read_all(spec)
    assert all(g is not None for g in read.geometry)
    lon, lat = lonlat(read.geometry, crs)
    inside = (lon > lon_min) & (lon < lon_max) & (lat > lat_min) & (lat < lat_max)
    assert inside.all(), read.frame[~inside].head()


def test_banqiao_csv_encoding_is_detected_and_matches_the_corrected_xlsx():
    """tw_newtaipei_banqiao_parking: undeclared UTF-8 BOM + CRLF CSV reads like the corrected workbook."""
    csv_conn = open_source({"format": "csv", "path": str(BANQIAO_CSV)})
    assert csv_conn.encoding() == "utf-8-sig" and csv_conn.columns()[0] == "ID"
    from_csv = read_all({"format": "csv", "path": str(BANQIAO_CSV), "x": "TW97X", "y": "TW97Y"})
    from_xlsx = read_all({"format": "xlsx", "path": str(BANQIAO_XLSX), "x": "TW97X", "y": "TW97Y"})
    assert not from_csv.frame.apply(lambda s: s.str.contains("\r")).any().any()
    assert list(from_csv.frame.columns) == list(from_xlsx.frame.columns)
    assert from_csv.frame["NAME"].tolist() == from_xlsx.frame["NAME"].tolist()
    # the CSV rounds three coordinates to 3-4 decimals: the same places to the millimetre
    assert shapely.distance(from_csv.geometry, from_xlsx.geometry).max() < 0.001


def test_banqiao_workbook_layout_is_one_sheet_with_the_header_on_row_1():
    """tw_newtaipei_banqiao_parking: the corrected workbook, as openpyxl sees it."""
    workbook = openpyxl.load_workbook(BANQIAO_XLSX, read_only=True)
    (sheet,) = workbook.worksheets
    header = next(sheet.iter_rows(values_only=True))
    workbook.close()
    assert sheet.title == "Sheet1" and header[:3] == ("ID", "AREA", "NAME")


# --------------------------------------------------------------------------- generated bad inputs


def write(path: pathlib.Path, data: bytes) -> pathlib.Path:
    path.write_bytes(data)
    return path


def rows_csv(n: int) -> bytes:
    return ("id,name\n" + "".join(f"{i},name {i}\n" for i in range(1, n + 1))).encode()


def zip_of_nyc(tmp: pathlib.Path, drop: str | None = None, extra: str | None = None) -> pathlib.Path:
    """nybb_16a.zip (us_nyc_borough_boundaries) re-zipped without ``drop`` and with a member ``extra``."""
    out = tmp / "nybb.zip"
    with zipfile.ZipFile(NYC) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            if name != drop:
                dst.writestr(name, src.read(name))
        if extra:
            dst.writestr(zipfile.ZipInfo(extra), b"x")
    return out


def zip_of_nyc_with(tmp: pathlib.Path, member: zipfile.ZipInfo, data: bytes, compression: int = zipfile.ZIP_STORED) -> pathlib.Path:
    """nybb_16a.zip (us_nyc_borough_boundaries) re-zipped with one more ``member``."""
    out = zip_of_nyc(tmp)
    member.compress_type = compression
    with zipfile.ZipFile(out, "a") as dst:
        dst.writestr(member, data)
    return out


def symlink_member(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix
    info.external_attr = (0o120777 << 16)  # a symbolic link, as `zip --symlinks` stores it
    return info


def nyc_with_many_small_bombs(tmp: pathlib.Path) -> pathlib.Path:
    """Each member under the 1 MiB floor, the archive as a whole far over 100:1."""
    out = zip_of_nyc(tmp)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_DEFLATED) as dst:
        for i in range(200):
            dst.writestr(f"pad{i}.txt", b"\0" * 1_000_000)
    return out


def shapefile_folder(tmp: pathlib.Path, drop: str | None = None) -> pathlib.Path:
    """nybb_16a.zip (us_nyc_borough_boundaries) extracted, without ``drop``."""
    with zipfile.ZipFile(NYC) as src:
        for name in src.namelist():
            if name != drop:
                (tmp / name).write_bytes(src.read(name))
    return tmp / "nybb.shp"


def workbook(tmp: pathlib.Path) -> pathlib.Path:
    book = openpyxl.Workbook()
    book.active.title = "Data"
    book.active.append(["id", "name"])
    book.active.append([1, "a"])
    book.save(tmp / "book.xlsx")
    return tmp / "book.xlsx"


# (id, makes the spec in tmp_path, error, texts the message must contain)
BAD_SOURCES: list[tuple[str, Callable[[pathlib.Path], dict], type[Exception], list[str]]] = [
    ("empty-csv", lambda t: {"format": "csv", "path": str(write(t / "e.csv", b""))}, SourceError, ["e.csv", "the file is empty"]),
    ("blank-lines-csv", lambda t: {"format": "csv", "path": str(write(t / "e.csv", b"\r\n \n"))}, SourceError, ["the file is empty"]),
    ("header-only-csv", lambda t: {"format": "csv", "path": str(write(t / "h.csv", b"id,name\n"))}, SourceError, ["h.csv", "has a header but no data rows"]),
    (
        "gbk-declared-utf8",
        lambda t: {"format": "csv", "path": str(write(t / "g.csv", "名称,地址\n静安寺,南京西路\n".encode("gbk"))), "encoding": "utf-8"},
        SourceError,
        ["g.csv", "utf-8", "source.encoding", "in the header"],
    ),
    (
        "bad-bytes-after-valid-rows",
        lambda t: {"format": "csv", "path": str(write(t / "b.csv", rows_csv(10) + "11,北京\n".encode("gbk") + b"12,x\n")), "encoding": "utf-8"},
        SourceError,
        ["b.csv", "utf-8", "data row 11", "line 12", "source.encoding"],
    ),
    (
        "bad-bytes-after-a-quoted-multiline-cell",
        lambda t: {"format": "csv", "path": str(write(t / "q.csv", b'id,note\n1,"two\nlines"\n2,ok\n3,caf\xe9\n')), "encoding": "utf-8"},
        SourceError,
        ["data row 3", "line 5"],
    ),
    (
        "bad-bytes-far-down-a-detected-file",
        # past the 64 KiB that detection reads, so utf-8 is detected and then fails
        lambda t: {"format": "csv", "path": str(write(t / "f.csv", rows_csv(5000) + "5001,caf\xe9\n".encode("latin-1")))},
        SourceError,
        ["f.csv", "detected utf-8-sig", "data row 5001"],
    ),
    ("unknown-encoding-name", lambda t: {"format": "csv", "path": str(write(t / "u.csv", rows_csv(1))), "encoding": "klingon"}, SourceError, ["'klingon'", "source.encoding"]),
    ("missing-csv", lambda t: {"format": "csv", "path": str(t / "nope.csv")}, SourceError, ["nope.csv", "file not found", "source.path"]),
    ("missing-xlsx", lambda t: {"format": "xlsx", "path": str(t / "nope.xlsx")}, SourceError, ["nope.xlsx", "file not found"]),
    ("missing-shapefile", lambda t: {"format": "shapefile", "path": str(t / "nope.zip")}, SourceError, ["nope.zip", "file not found"]),
    ("xlsx-unknown-sheet", lambda t: {"format": "xlsx", "path": str(workbook(t)), "sheet": "Sheet9"}, SourceError, ["book.xlsx", "'Sheet9'", "'Data'", "source.sheet"]),
    ("xlsx-sheet-index-out-of-range", lambda t: {"format": "xlsx", "path": str(workbook(t)), "sheet": 3}, SourceError, ["sheet 3", "'Data'"]),
    ("xlsx-not-a-workbook", lambda t: {"format": "xlsx", "path": str(write(t / "x.xlsx", b"hello"))}, SourceError, ["x.xlsx", "cannot read the workbook"]),
    ("zip-without-dbf", lambda t: {"format": "shapefile", "path": str(zip_of_nyc(t, drop="nybb.dbf"))}, SourceError, ["nybb.zip", "nybb.dbf missing in the zip"]),
    ("zip-without-shx", lambda t: {"format": "shapefile", "path": str(zip_of_nyc(t, drop="nybb.shx"))}, SourceError, ["nybb.shx missing in the zip"]),
    ("zip-without-shp", lambda t: {"format": "shapefile", "path": str(zip_of_nyc(t, drop="nybb.shp"))}, SourceError, ["a .shp file missing in the zip"]),
    ("shp-without-dbf-beside-it", lambda t: {"format": "shapefile", "path": str(shapefile_folder(t, drop="nybb.dbf"))}, SourceError, ["nybb.dbf missing beside it"]),
    ("zip-slip-dotdot", lambda t: {"format": "shapefile", "path": str(zip_of_nyc(t, extra="../../etc/cron.d/x"))}, SourceError, ["refused", "'../../etc/cron.d/x'"]),
    ("zip-slip-absolute", lambda t: {"format": "shapefile", "path": str(zip_of_nyc(t, extra="/etc/passwd"))}, SourceError, ["refused", "'/etc/passwd'"]),
    ("zip-slip-windows-drive", lambda t: {"format": "geojson", "path": str(zip_of_nyc(t, extra="C:\\evil.geojson"))}, SourceError, ["refused", "evil.geojson"]),
    (
        "zip-bomb-member",
        lambda t: {"format": "shapefile", "path": str(zip_of_nyc_with(t, zipfile.ZipInfo("nybb.txt"), b"\0" * 20_000_000, zipfile.ZIP_DEFLATED))},
        SourceError,
        ["nybb.zip", "refused", "'nybb.txt'", "expands", "over 100:1", "zip bomb"],
    ),
    ("zip-bomb-archive", lambda t: {"format": "shapefile", "path": str(nyc_with_many_small_bombs(t))}, SourceError, ["refused", "members expand", "zip bomb"]),
    (
        "zip-symlink",
        lambda t: {"format": "shapefile", "path": str(zip_of_nyc_with(t, symlink_member("nybb.cpg", "/etc/passwd"), b"/etc/passwd"))},
        SourceError,
        ["refused", "'nybb.cpg'", "symbolic link"],
    ),
    ("geoparquet-not-parquet", lambda t: {"format": "geoparquet", "path": str(write(t / "x.parquet", b"PAR1 no"))}, SourceError, ["x.parquet", "not a readable Parquet file"]),
    ("zip-not-a-zip", lambda t: {"format": "shapefile", "path": str(write(t / "z.zip", b"PK not really"))}, SourceError, ["z.zip", "not a readable zip"]),
    (
        "x-column-not-in-header",
        lambda t: {"format": "csv", "path": str(write(t / "p.csv", b"lon,lat\n1,2\n")), "x": "lng", "y": "lat"},
        SourceError,
        ["p.csv", "source.x", "'lng'", "lon, lat"],
    ),
    ("geometry-column-not-in-header", lambda t: {"format": "csv", "path": str(write(t / "p.csv", b"wkt\nPOINT (1 2)\n")), "geometry": "geom"}, SourceError, ["source.geometry", "'geom'"]),
    ("unknown-config-key", lambda t: {"format": "csv", "path": "a.csv", "sheet": "x"}, ConfigProblem, ["source.sheet", "not a key of csv sources"]),
    ("unknown-format", lambda t: {"format": "parquet", "path": "a.parquet"}, ConfigProblem, ["source.format", "csv"]),
    ("x-without-y", lambda t: {"format": "csv", "path": "a.csv", "x": "lon"}, ConfigProblem, ["source.y", "go together"]),
    ("geometry-and-x-y", lambda t: {"format": "xlsx", "path": "a.xlsx", "x": "a", "y": "b", "geometry": "g"}, ConfigProblem, ["source.geometry", "not both"]),
]


@pytest.mark.parametrize(("make", "error", "says"), [pytest.param(*case[1:], id=case[0]) for case in BAD_SOURCES])
def test_bad_source_is_refused_with_a_message_that_says_what_to_do(tmp_path, make, error, says):
    """chunks() alone, without check() first, raises only SourceError or ConfigProblem."""
    spec = make(tmp_path)
    with pytest.raises(error) as info:
        list(open_source(spec, tmp_path).chunks(CHUNK))
    for text in says:
        assert text in str(info.value)
    if error is ConfigProblem:
        assert [k for k in info.value.problems if k.startswith("source.")] == list(info.value.problems)


@pytest.mark.parametrize(
    "case_id", ["empty-csv", "missing-csv", "unknown-encoding-name", "zip-without-dbf", "zip-slip-dotdot", "shp-without-dbf-beside-it"]
)
def test_check_refuses_what_chunks_would(tmp_path, case_id):
    (make,) = [case[1] for case in BAD_SOURCES if case[0] == case_id]
    with pytest.raises(SourceError):
        open_source(make(tmp_path)).check()


# --------------------------------------------------------------------------- geometry cells

# (id, x cell, y cell, point or None)
XY_CELLS = [
    ("integers", "518072", "103649", (518072, 103649)),
    ("decimals-with-spaces", " 121.46 ", "25.01", (121.46, 25.01)),
    ("exponent", "1e3", "-2.5", (1000, -2.5)),
    ("blank-x", "", "25.01", None),
    ("space-y", "121.46", "  ", None),
    ("text", "N/A", "25.01", None),
    ("thousands-separator", "1,234", "5", None),
    ("nan", "nan", "5", None),
    ("infinite", "inf", "5", None),
]


def test_blank_or_non_numeric_xy_cells_give_none_for_those_rows_only(tmp_path):
    frame = pd.DataFrame({"x": [c[1] for c in XY_CELLS], "y": [c[2] for c in XY_CELLS], "id": [c[0] for c in XY_CELLS]})
    frame.to_csv(tmp_path / "xy.csv", index=False)
    read = read_all({"format": "csv", "path": str(tmp_path / "xy.csv"), "x": "x", "y": "y"}, rows=4)
    got = {i: None if g is None else (g.x, g.y) for i, g in zip(read.frame["id"], read.geometry)}
    assert got == {c[0]: c[3] for c in XY_CELLS}


# (id, cell text, WKT of the expected geometry or None)
TEXT_CELLS = [
    ("wkt-point", "POINT (1 2)", "POINT (1 2)"),
    ("wkt-lowercase", "point(1 2)", "POINT (1 2)"),
    ("ewkt", "SRID=4326;POINT (1 2)", "POINT (1 2)"),
    ("wkt-polygon", "POLYGON ((0 0, 1 0, 1 1, 0 0))", "POLYGON ((0 0, 1 0, 1 1, 0 0))"),
    ("geojson-point-toronto", '{"type": "Point", "coordinates": [-79.3564386464949, 43.6886049512998]}', "POINT (-79.3564386464949 43.6886049512998)"),
    ("geojson-feature", '{"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [3, 4]}}', "POINT (3 4)"),
    ("leading-space", '  {"type": "Point", "coordinates": [3, 4]}', "POINT (3 4)"),
    ("literal-none", "None", None),
    ("blank", "", None),
    ("garbage", "somewhere near the park", None),
    ("truncated-wkt", "POINT (1 2", None),
    ("unclosed-ring", "POLYGON ((0 0, 1 0, 1 1))", None),
    ("geojson-without-coordinates", '{"type": "Point"}', None),
    ("broken-json", '{"type": "Point", "coordinates": [1, ', None),
    ("empty-geometry", "POINT EMPTY", None),
]


def test_text_geometry_cells_parse_or_give_none():
    got = geometries_from_text(pd.Series([c[1] for c in TEXT_CELLS]))
    assert [None if g is None else g.wkt for g in got] == [
        None if c[2] is None else shapely.from_wkt(c[2]).wkt for c in TEXT_CELLS
    ]


def test_csv_geometry_column_gives_none_for_a_bad_cell_only(tmp_path):
    """ca_toronto_street_trees: the first 20 trees, with one geometry cell damaged."""
    with TORONTO.open(encoding="utf-8") as fh:
        head = [next(fh) for _ in range(21)]
    head[5] = head[5].replace('"Point"', '"Pointless"')
    (tmp_path / "trees.csv").write_text("".join(head), encoding="utf-8")
    read = read_all({"format": "csv", "path": str(tmp_path / "trees.csv"), "geometry": "geometry"})
    assert [i for i, g in enumerate(read.geometry) if g is None] == [4]
    assert shapely.get_type_id(np.delete(read.geometry, 4)).tolist() == [0] * 19


# --------------------------------------------------------------------------- encoding detection

SIMPLIFIED = "名称,地址\n静安寺,上海市静安区南京西路1686号\n人民广场,上海市黄浦区人民大道\n"
TRADITIONAL = "名稱,地址\n板橋車站,新北市板橋區縣民大道二段7號\n府中站,新北市板橋區縣民大道一段193號\n"
LATIN = "nom,adresse\nCafé Zoé,Place de l'Hôtel-de-Ville 3\nJosé,São Paulo\n"

# (text, encoding written with); none is declared
ENCODED = [
    pytest.param(SIMPLIFIED, "utf-8", id="simplified-utf-8"),
    pytest.param(SIMPLIFIED, "utf-8-sig", id="simplified-utf-8-sig"),
    pytest.param(SIMPLIFIED, "gbk", id="simplified-gbk"),
    pytest.param(SIMPLIFIED, "gb18030", id="simplified-gb18030"),
    pytest.param(TRADITIONAL, "utf-8", id="traditional-utf-8"),
    pytest.param(TRADITIONAL, "utf-8-sig", id="traditional-utf-8-sig"),
    pytest.param(TRADITIONAL, "gbk", id="traditional-gbk"),
    pytest.param(TRADITIONAL, "big5", id="traditional-big5"),
    pytest.param(LATIN, "utf-8", id="latin-utf-8"),
    pytest.param(LATIN, "utf-8-sig", id="latin-utf-8-sig"),
    pytest.param(LATIN, "latin-1", id="latin-1"),
]


@pytest.mark.parametrize(("text", "encoding"), ENCODED)
def test_undeclared_encoding_is_detected(tmp_path, text, encoding):
    path = write(tmp_path / "t.csv", text.encode(encoding))
    expected = pd.read_csv(io.StringIO(text), dtype=str)
    read = read_all({"format": "csv", "path": str(path)})
    assert list(read.frame.columns) == list(expected.columns)
    assert read.frame.values.tolist() == expected.values.tolist()


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        pytest.param("停車場,公園\n板橋區,停車場\n", "big5", id="tiny-big5"),
        pytest.param("name,town\nMüller,Köln\n", "latin-1", id="latin-1-accent-before-letter"),
    ],
)
def test_detection_limits_are_as_documented_and_declaring_the_encoding_fixes_them(tmp_path, text, encoding):
    """connectors/csv.py's docstring: these bytes are also valid GB18030, so detection picks GB18030."""
    path = write(tmp_path / "t.csv", text.encode(encoding))
    detected = read_all({"format": "csv", "path": str(path)})
    expected = pd.read_csv(io.StringIO(text), dtype=str)
    assert detected.frame.values.tolist() != expected.values.tolist()  # misread without a declaration
    declared = read_all({"format": "csv", "path": str(path), "encoding": encoding})
    assert list(declared.frame.columns) == list(expected.columns)
    assert declared.frame.values.tolist() == expected.values.tolist()


def test_real_big5_text_is_detected(tmp_path):
    """tw_newtaipei_banqiao_parking's CSV re-encoded as Big5, as Taiwanese departments often publish."""
    text = BANQIAO_CSV.read_text(encoding="utf-8-sig")
    path = write(tmp_path / "big5.csv", text.encode("big5"))
    conn = open_source({"format": "csv", "path": str(path)})
    assert conn.encoding() == "big5"
    assert read_all({"format": "csv", "path": str(path)}).frame["NAME"].tolist() == pd.read_csv(BANQIAO_CSV, dtype=str)["NAME"].tolist()


def test_a_character_cut_at_the_end_of_the_detection_sample_keeps_utf8(tmp_path):
    """The 64 KiB sample can end inside a multi-byte character; that is not a reason to fall back."""
    line = "é" * 10 + "\n"  # 21 bytes: the sample boundary falls inside an "é"
    body = "name\n" + line * (70_000 // len(line.encode()))
    path = write(tmp_path / "cut.csv", body.encode("utf-8"))
    conn = open_source({"format": "csv", "path": str(path)})
    assert conn.sample()[-1:] == "é".encode()[:1]
    assert conn.encoding() == "utf-8-sig"


# --------------------------------------------------------------------------- fingerprint


def fingerprint_shp_folder(tmp: pathlib.Path) -> tuple[dict, pathlib.Path]:
    """us_nyc_borough_boundaries extracted; a byte of the .dbf (the attributes) changes."""
    return {"format": "shapefile", "path": str(shapefile_folder(tmp))}, tmp / "nybb.dbf"


def fingerprint_zip(tmp: pathlib.Path) -> tuple[dict, pathlib.Path]:
    path = tmp / "nybb.zip"
    shutil.copy(NYC, path)
    return {"format": "shapefile", "path": str(path)}, path


def fingerprint_csv(tmp: pathlib.Path) -> tuple[dict, pathlib.Path]:
    path = tmp / "toilets.csv"
    shutil.copy(ADUR, path)
    return {"format": "csv", "path": str(path)}, path


def fingerprint_geojson(tmp: pathlib.Path) -> tuple[dict, pathlib.Path]:
    path = tmp / "grit.geojson"
    shutil.copy(BATH / "banes_grit_bins.geojson", path)
    return {"format": "geojson", "path": str(path)}, path


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(fingerprint_shp_folder, id="us_nyc_borough_boundaries-shp-dbf-byte"),
        pytest.param(fingerprint_zip, id="us_nyc_borough_boundaries-zip"),
        pytest.param(fingerprint_csv, id="uk_adur_public_toilets-csv"),
        pytest.param(fingerprint_geojson, id="uk_bath_banes_street_assets-geojson"),
    ],
)
def test_fingerprint_changes_with_one_byte_and_only_then(tmp_path, make):
    spec, changed = make(tmp_path)
    before = open_source(spec).fingerprint()
    assert open_source(spec).fingerprint() == before  # same bytes, fresh connector
    data = bytearray(changed.read_bytes())
    data[len(data) // 2] ^= 0x01
    changed.write_bytes(bytes(data))
    assert open_source(spec).fingerprint() != before
