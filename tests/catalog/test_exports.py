"""Open exports, opened back by geopandas, GDAL's ogrinfo, rdflib and frictionless."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess

import duckdb
import frictionless
import geopandas
import pyarrow.parquet as pq
import pyshacl
import pytest
import rdflib
from rdflib.namespace import DCTERMS, FOAF, RDF

from twinhub.catalog.export import ExportError, export_dataset
from twinhub.catalog.extensions import connect
from twinhub.catalog.opendata import CatalogExportError, Publishing, export_catalog
from twinhub.catalog.query import run_query
from twinhub.hub import review
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup

from .conftest import copy_sample, publish_sample

DATASET = "water.pumping_stations"
SECRET = "emergency.private_shelters"
ADMS = rdflib.Namespace("http://www.w3.org/ns/adms#")
DCAT = rdflib.Namespace("http://www.w3.org/ns/dcat#")  # DCAT 3 terms (rdflib ships DCAT 2)


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Hub:
    """Water published twice (two versions) and a restricted copy of the shelters."""
    root = tmp_path_factory.mktemp("exports")
    hub = Hub.open(root / "home")
    publish_sample(hub, "water/pumping_stations.yaml", run_id="w1")
    ingest(hub, lookup(hub, DATASET), run_id="w2", force=True)
    secret = copy_sample(root / "secret", "emergency/shelters.yaml", dataset="private_shelters",
                         classification="restricted")
    register(hub, secret)
    review.approve(hub, SECRET, "a restricted copy for the export tests")  # restricted registrations wait for review
    ingest(hub, lookup(hub, SECRET), run_id="s1")
    return hub


@pytest.fixture(scope="module")
def published(hub) -> list[tuple]:
    return run_query(hub.lake, f"SELECT facility_id, name, capacity, ST_AsText(geometry) FROM {DATASET} ORDER BY 1").rows


def _read_back(path, fmt: str) -> geopandas.GeoDataFrame:
    if fmt == "geoparquet":
        return geopandas.read_parquet(path)
    if fmt == "csv":
        frame = geopandas.pd.read_csv(path, dtype={"capacity": "Int64"})
        return geopandas.GeoDataFrame(frame, geometry=geopandas.GeoSeries.from_wkt(frame.pop("geometry")), crs=None)
    return geopandas.read_file(path)


@pytest.mark.parametrize("fmt, crs", [("geoparquet", "EPSG:4490"), ("gpkg", "EPSG:4490"),
                                      ("geojson", "EPSG:4326"), ("csv", None)])  # GeoJSON: RFC 7946
def test_export_opens_back_with_the_same_rows_and_crs(hub, published, tmp_path, fmt, crs):
    result = export_dataset(hub.lake, DATASET, fmt, tmp_path)
    assert result.path.parent == tmp_path and result.rows == len(published)
    frame = _read_back(result.path, fmt)
    assert (frame.crs.to_string() if frame.crs else None) == crs
    back = sorted(zip(frame["facility_id"], frame["name"], frame["capacity"].astype("Int64"), frame.geometry))
    for (fid, name, capacity, wkt), (fid2, name2, capacity2, geometry) in zip(published, back):
        assert (fid, name) == (fid2, name2)
        assert (capacity is None and capacity2 is geopandas.pd.NA) or capacity == capacity2
        # full precision; GeoJSON's RFC 7946 7 decimals (~1 cm; CGCS2000 -> WGS 84 is PROJ's identity)
        assert geometry.equals_exact(geopandas.GeoSeries.from_wkt([wkt])[0], tolerance=1e-9 if fmt != "geojson" else 6e-8)


def test_geoparquet_is_1_1_with_projjson_bbox_covering_and_hilbert_order(hub, tmp_path):
    path = export_dataset(hub.lake, DATASET, "geoparquet", tmp_path / "w.parquet").path
    geo = json.loads(pq.read_schema(path).metadata[b"geo"])
    column = geo["columns"]["geometry"]
    assert geo["version"] == "1.1.0"
    assert column["crs"]["id"] == {"authority": "EPSG", "code": 4490}  # PROJJSON
    assert column["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
    assert "bbox" in pq.read_schema(path).names
    con = connect(extensions=("spatial",))
    kind = con.execute(f"SELECT typeof(geometry) FROM read_parquet('{path}') LIMIT 1").fetchone()[0]
    assert kind == "GEOMETRY('EPSG:4490')"  # DuckDB reads the CRS from the GeoParquet metadata too
    order = con.execute(
        f"""WITH t AS (SELECT facility_id, geometry AS g FROM read_parquet('{path}')),
                 e AS (SELECT min(ST_X(g)) a, min(ST_Y(g)) b, max(ST_X(g)) c, max(ST_Y(g)) d FROM t)
            SELECT facility_id FROM t, e ORDER BY ST_Hilbert(g, ST_MakeBox2D(ST_Point(a, b), ST_Point(c, d)))"""
    ).fetchall()
    assert [r[0] for r in con.execute(f"SELECT facility_id FROM read_parquet('{path}')").fetchall()] == \
        [r[0] for r in order]  # stored along the Hilbert curve


@pytest.mark.parametrize("fmt, crs", [("gpkg", ('ID["EPSG",4490]', "EPSG:4490")),
                                      ("geojson", ('ID["EPSG",4326]', "WGS 84"))])
def test_gdal_opens_the_export_with_the_right_crs_and_count(hub, published, tmp_path, fmt, crs):
    ogrinfo = shutil.which("ogrinfo")
    assert ogrinfo, "GDAL's ogrinfo is missing: apt-get install gdal-bin (.ci/run does)"
    path = export_dataset(hub.lake, DATASET, fmt, tmp_path).path
    info = subprocess.run([ogrinfo, "-so", "-al", str(path)], capture_output=True, text=True, check=True).stdout
    assert f"Feature Count: {len(published)}" in info
    assert any(c in info for c in crs)


def test_geojson_follows_rfc_7946(hub, published, tmp_path):
    """WGS 84 lon/lat, no "crs" member, at most 7 decimals, a bbox holding every feature."""
    document = json.loads(export_dataset(hub.lake, DATASET, "geojson", tmp_path).path.read_text(encoding="utf-8"))
    assert document["type"] == "FeatureCollection" and "crs" not in document
    points = [f["geometry"]["coordinates"] for f in document["features"] if f["geometry"]]
    assert len(points) == len([p for p in published if p[3]])
    assert all(len(repr(v).split(".")[-1]) <= 7 for p in points for v in p)
    assert all(-180 <= x <= 180 and -90 <= y <= 90 for x, y in points)
    minx, miny, maxx, maxy = document["bbox"]
    assert all(minx <= x <= maxx and miny <= y <= maxy for x, y in points)


def test_geoparquet_is_compressed_with_zstd(hub, tmp_path):
    path = export_dataset(hub.lake, DATASET, "geoparquet", tmp_path / "w.parquet").path
    meta = pq.ParquetFile(path).metadata
    assert {meta.row_group(0).column(i).compression for i in range(meta.num_columns)} == {"ZSTD"}


def test_an_existing_file_needs_force(hub, tmp_path):
    target = tmp_path / "w.gpkg"
    target.write_text("keep me")
    with pytest.raises(ExportError, match="already exists: use --force"):
        export_dataset(hub.lake, DATASET, "gpkg", target)
    assert target.read_text() == "keep me"
    export_dataset(hub.lake, DATASET, "gpkg", target, force=True)
    assert len(geopandas.read_file(target)) > 0


def test_restricted_datasets_are_never_exported(hub, tmp_path):
    with pytest.raises(ExportError, match="classified restricted"):
        export_dataset(hub.lake, SECRET, "geoparquet", tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def catalogs(hub, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("open")
    schedules = {DATASET: "0 2 * * *", SECRET: "0 3 * * 1"}
    publishing = Publishing(publisher="Sample city", licence="CC-BY-4.0", licences={DATASET: "ODbL-1.0"})
    return {fmt: export_catalog(hub.lake, fmt, out / fmt, schedules=schedules, base_url="https://data.example.cn/hub/",
                                publishing=publishing)
            for fmt in ("dcat", "datapackage", "stac")}


def test_dcat_is_json_ld_with_datasets_publishers_versions_and_extent(catalogs):
    graph = rdflib.Graph().parse(catalogs["dcat"], format="json-ld")
    datasets = {str(d) for d in graph.subjects(RDF.type, DCAT.Dataset) if "/version/" not in str(d)}
    base = "https://data.example.cn/hub/"
    water = rdflib.URIRef(f"{base}dataset/{DATASET}")
    assert datasets == {str(water)}  # the restricted one is not there
    assert (rdflib.URIRef(f"{base}catalog"), DCAT.dataset, water) in graph
    publisher = graph.value(water, DCTERMS.publisher)
    assert graph.value(publisher, FOAF.name).toPython() == "water"
    assert str(graph.value(water, DCTERMS.accrualPeriodicity)).endswith("/frequency/DAILY")
    distribution = graph.value(water, DCAT.distribution)
    assert str(graph.value(distribution, DCAT.downloadURL)) == f"{base}data/{DATASET}.parquet"
    bbox = graph.value(graph.value(water, DCTERMS.spatial), DCAT.bbox)
    assert bbox.toPython().startswith("POLYGON((121.")
    versions = sorted(graph.objects(water, DCAT.hasVersion), key=lambda v: int(str(v).rsplit("/", 1)[1]))
    assert len(versions) == 2
    assert graph.value(versions[1], DCAT.previousVersion) == versions[0]
    assert graph.value(versions[0], DCAT.previousVersion) is None
    assert graph.value(versions[0], ADMS.versionNotes).toPython().startswith("first version:")
    assert "private_shelters" not in catalogs["dcat"].read_text(encoding="utf-8")


SHAPES = pathlib.Path(__file__).with_name("shapes") / "dcat-ap-3.0.1-SHACL.ttl"  # SEMICeu's, see shapes/SOURCE.txt


def test_dcat_passes_the_official_dcat_ap_3_shacl_shapes(catalogs):
    data = rdflib.Graph().parse(catalogs["dcat"], format="json-ld")
    conforms, report, text = pyshacl.validate(data, shacl_graph=rdflib.Graph().parse(SHAPES), inference="none")
    SH = rdflib.Namespace("http://www.w3.org/ns/shacl#")
    violations = [(str(report.value(r, SH.resultPath)), str(report.value(r, SH.resultMessage)))
                  for r in report.subjects(RDF.type, SH.ValidationResult)
                  if report.value(r, SH.resultSeverity) == SH.Violation]
    assert violations == [] and conforms, text[:2000]
    # the shapes do check: the same graph without the catalog's publisher violates them
    data.remove((rdflib.URIRef("https://data.example.cn/hub/catalog"), DCTERMS.publisher, None))
    assert not pyshacl.validate(data, shacl_graph=rdflib.Graph().parse(SHAPES), inference="none")[0]


def test_every_open_format_names_the_licence(catalogs):
    """The dataset's own licence (its manifest) where it has one, the city's default for the catalog."""
    graph = rdflib.Graph().parse(catalogs["dcat"], format="json-ld")
    water = rdflib.URIRef(f"https://data.example.cn/hub/dataset/{DATASET}")
    assert str(graph.value(graph.value(water, DCAT.distribution), DCTERMS.license)) == \
        "http://spdx.org/licenses/ODbL-1.0"
    assert str(graph.value(rdflib.URIRef("https://data.example.cn/hub/catalog"), DCTERMS.license)) == \
        "http://spdx.org/licenses/CC-BY-4.0"
    package = json.loads(catalogs["datapackage"].read_text(encoding="utf-8"))
    assert package["licenses"][0]["name"] == "CC-BY-4.0"
    assert package["resources"][0]["licenses"][0]["name"] == "ODbL-1.0"
    collection = json.loads((catalogs["stac"].parent / DATASET / "collection.json").read_text(encoding="utf-8"))
    assert collection["license"] == "ODbL-1.0"
    assert any(link["rel"] == "license" and link["href"].endswith("/ODbL-1.0") for link in collection["links"])


def test_bounding_boxes_are_rounded_outward(hub, published, catalogs):
    """Every published point lies inside the STAC and DCAT boxes: rounding never cuts a feature off."""
    import shapely

    points = [shapely.from_wkt(wkt) for *_, wkt in published if wkt]
    xs, ys = [p.x for p in points], [p.y for p in points]
    collection = json.loads((catalogs["stac"].parent / DATASET / "collection.json").read_text(encoding="utf-8"))
    for minx, miny, maxx, maxy in (collection["extent"]["spatial"]["bbox"][0], collection["assets"]["data"]["proj:bbox"]):
        assert minx <= min(xs) and miny <= min(ys) and maxx >= max(xs) and maxy >= max(ys)
    graph = rdflib.Graph().parse(catalogs["dcat"], format="json-ld")
    water = rdflib.URIRef(f"https://data.example.cn/hub/dataset/{DATASET}")
    box = shapely.from_wkt(graph.value(graph.value(water, DCTERMS.spatial), DCAT.bbox).toPython())
    assert all(box.covers(p) for p in points)


def test_data_package_validates_with_frictionless(catalogs):
    report = frictionless.validate(str(catalogs["datapackage"]))
    assert report.valid, report.flatten(["type", "message"])
    package = json.loads(catalogs["datapackage"].read_text(encoding="utf-8"))
    (resource,) = package["resources"]
    assert resource["name"] == DATASET and resource["schema"]["primaryKey"] == ["facility_id"]
    types = {f["name"]: f["type"] for f in resource["schema"]["fields"]}
    assert types["capacity"] == "integer" and types["geometry"] == "string"
    assert not (catalogs["datapackage"].parent / "data" / f"{SECRET}.csv").exists()


def test_stac_collection_has_the_projection_extension(catalogs):
    root = json.loads(catalogs["stac"].read_text(encoding="utf-8"))
    children = [link["href"] for link in root["links"] if link["rel"] == "child"]
    assert children == [f"./{DATASET}/collection.json"]
    collection = json.loads((catalogs["stac"].parent / DATASET / "collection.json").read_text(encoding="utf-8"))
    assert collection["type"] == "Collection" and collection["stac_version"] == "1.1.0"
    assert any("projection" in e for e in collection["stac_extensions"])
    asset = collection["assets"]["data"]
    assert asset["proj:code"] == "EPSG:4490" and asset["proj:projjson"]["id"]["code"] == 4490
    minx, miny, maxx, maxy = collection["extent"]["spatial"]["bbox"][0]
    assert 121 < minx < maxx < 122 and 31 < miny < maxy < 32
    data = catalogs["stac"].parent / DATASET / asset["href"]
    assert len(geopandas.read_parquet(data)) > 0


def test_export_catalog_needs_force_to_replace(hub, catalogs):
    with pytest.raises(CatalogExportError, match="--force"):
        export_catalog(hub.lake, "stac", catalogs["stac"].parent)


def test_exports_are_audited(hub, tmp_path):
    export_dataset(hub.lake, DATASET, "csv", tmp_path, department="health")
    rows = run_query(hub.lake, "SELECT action, status, tables, rows_returned FROM catalog.audit "
                               "WHERE department = 'health' AND action = 'export'").rows
    assert rows[-1][:3] == ("export", "ok", json.dumps([DATASET])) and rows[-1][3] > 0


def test_duckdb_reads_the_geoparquet_geometry(hub, tmp_path):
    path = export_dataset(hub.lake, DATASET, "geoparquet", tmp_path).path
    con = duckdb.connect()
    assert con.execute(f"SELECT count(*) FROM read_parquet('{path}') WHERE bbox.xmin > 121").fetchone()[0] > 0
