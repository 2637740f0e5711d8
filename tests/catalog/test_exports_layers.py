"""City layers and derived tables in the open exports: exported in every file format, read back by
geopandas (GDAL), listed in DCAT-AP, STAC and the Data Package; a restricted input's rows never leave."""

from __future__ import annotations

import json

import geopandas
import pyarrow.parquet as pq
import pyshacl
import pytest
import rdflib

from twinhub.catalog.export import FORMATS, ExportError, export_dataset
from twinhub.catalog.features import tables
from twinhub.catalog.opendata import export_catalog
from twinhub.catalog.query import run_query
from twinhub.cli.demo import prepare_demo
from twinhub.hub import review
from twinhub.hub.consumers import derived_inputs
from twinhub.hub.home import Hub
from twinhub.hub.registration import register
from twinhub.pipelines.runner import run_datasets

from .conftest import copy_sample
from .test_exports import SHAPES

LAYER, DERIVED, SECRET = "city.facility", "derived.care_homes_near_shelters", "water.private_pumps"  # the demo's
OPEN_INPUTS = {("emergency", "shelters"), ("health", "health_centres"), ("water", "pumping_stations"),
               ("civil_affairs", "elderly_care")}


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Hub:
    """The sample city (with its derived table) and a restricted facility dataset beside it."""
    root = tmp_path_factory.mktemp("layers")
    hub = Hub.open(root / "home")
    prepare_demo(hub)
    register(hub, copy_sample(root / "secret", "water/pumping_stations.yaml", dataset="private_pumps",
                              classification="restricted"))
    review.approve(hub, SECRET, "a restricted facility dataset for the layer export tests")
    assert run_datasets(hub).ok
    return hub


@pytest.fixture(scope="module")
def inputs(hub) -> dict[str, list[str]]:
    con = hub.lake.connect(read_only=True)
    try:
        return derived_inputs(hub, tables(con))
    finally:
        con.close()


def _count(hub, sql: str) -> int:
    return run_query(hub.lake, sql).rows[0][0]


def _read_back(path, fmt: str):
    if fmt == "geoparquet":
        return geopandas.read_parquet(path)
    if fmt == "csv":  # geometry as WKT
        frame = geopandas.pd.read_csv(path)
        return geopandas.GeoDataFrame(frame, geometry=geopandas.GeoSeries.from_wkt(frame.pop("geometry")), crs=None)
    return geopandas.read_file(path, engine="pyogrio")  # GDAL: GeoPackage, GeoJSON


def test_the_layer_holds_the_restricted_input(hub):
    """The precondition: the city layer really has the restricted dataset's rows."""
    assert _count(hub, f"SELECT count(*) FROM {LAYER} WHERE dataset = 'private_pumps'") > 0


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_city_layer_exports_without_the_restricted_input(hub, inputs, tmp_path, fmt):
    result = export_dataset(hub.lake, LAYER, fmt, tmp_path, derived_inputs=inputs)
    expected = sum(_count(hub, f"SELECT count(*) FROM {d}.{n}") for d, n in OPEN_INPUTS)
    frame = _read_back(result.path, fmt)
    assert len(frame) == result.rows == expected
    assert {(str(d), str(n)) for d, n in zip(frame["department"], frame["dataset"])} == OPEN_INPUTS
    assert result.classification == "internal"  # the highest of its open inputs; the restricted one is left out
    if fmt == "geoparquet":
        assert pq.ParquetFile(result.path).metadata.row_group(0).column(0).compression == "ZSTD"


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_derived_table_exports(hub, inputs, tmp_path, fmt):
    result = export_dataset(hub.lake, DERIVED, fmt, tmp_path, derived_inputs=inputs)
    frame = _read_back(result.path, fmt)
    pairs = sorted(run_query(hub.lake, f"SELECT care_home_id, shelter_id FROM {DERIVED}").rows)
    assert pairs and sorted(zip(frame["care_home_id"], frame["shelter_id"])) == pairs
    assert result.classification == "internal"  # the highest of elderly care (internal) and shelters (public)


def test_a_derived_table_without_its_inputs_counts_as_restricted(hub, tmp_path):
    with pytest.raises(ExportError, match="restricted"):
        export_dataset(hub.lake, DERIVED, "csv", tmp_path)


def test_a_layer_of_only_restricted_inputs_is_refused(hub, tmp_path):
    with pytest.raises(ExportError, match="not in the catalog"):
        export_dataset(hub.lake, "city.no_such_layer", "csv", tmp_path)


@pytest.fixture(scope="module")
def catalogs(hub, inputs, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("open")
    return {fmt: export_catalog(hub.lake, fmt, out / fmt, derived_inputs=inputs)
            for fmt in ("dcat", "stac", "datapackage")}


def test_layers_are_listed_in_dcat(catalogs):
    graph = rdflib.Graph().parse(catalogs["dcat"], format="json-ld")
    ids = {str(o) for o in graph.objects(None, rdflib.URIRef("http://purl.org/dc/terms/identifier"))}
    assert {LAYER, DERIVED, "emergency.shelters"} <= ids and SECRET not in ids
    titles = {str(o) for o in graph.objects(None, rdflib.URIRef("http://purl.org/dc/terms/title"))}
    assert {"City layer: facility", "Derived: care_homes_near_shelters"} <= titles


def test_layers_are_listed_in_stac(catalogs):
    root = json.loads(catalogs["stac"].read_text(encoding="utf-8"))
    children = {link["href"] for link in root["links"] if link["rel"] == "child"}
    assert {f"./{LAYER}/collection.json", f"./{DERIVED}/collection.json"} <= children
    layer = json.loads((catalogs["stac"].parent / LAYER / "collection.json").read_text(encoding="utf-8"))
    assert layer["title"] == "City layer: facility" and layer["keywords"] == ["city", "facility"]
    data = geopandas.read_parquet(catalogs["stac"].parent / LAYER / layer["assets"]["data"]["href"])
    assert "private_pumps" not in set(data["dataset"])


def test_layers_are_listed_in_the_data_package(catalogs):
    package = json.loads(catalogs["datapackage"].read_text(encoding="utf-8"))
    resources = {r["name"]: r for r in package["resources"]}
    assert {LAYER, DERIVED} <= set(resources) and SECRET not in resources
    text = (catalogs["datapackage"].parent / resources[LAYER]["path"]).read_text(encoding="utf-8")
    assert "private_pumps" not in text and "pumping_stations" in text


def test_dcat_with_layers_passes_the_official_dcat_ap_3_shacl_shapes(catalogs):
    """The synthesized entries (no versions, no standard for a derived table) keep the catalog valid."""
    data = rdflib.Graph().parse(catalogs["dcat"], format="json-ld")
    conforms, report, text = pyshacl.validate(data, shacl_graph=rdflib.Graph().parse(SHAPES), inference="none")
    SH = rdflib.Namespace("http://www.w3.org/ns/shacl#")
    violations = [(str(report.value(r, SH.resultPath)), str(report.value(r, SH.resultMessage)))
                  for r in report.subjects(rdflib.RDF.type, SH.ValidationResult)
                  if report.value(r, SH.resultSeverity) == SH.Violation]
    assert violations == [] and conforms, text[:2000]


def test_the_cli_exports_a_city_layer_and_a_derived_table(hub, tmp_path):
    """`twinhub export city.facility` (it failed: city layers had no catalog entry)."""
    from click.testing import CliRunner

    from twinhub.cli.main import main

    for table in (LAYER, DERIVED):
        result = CliRunner().invoke(main, ["--home", str(hub.home), "export", table, "--file-format", "gpkg",
                                           "--out", str(tmp_path)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert len(geopandas.read_file(tmp_path / f"{table}.gpkg")) > 0
    assert "private_pumps" not in set(geopandas.read_file(tmp_path / f"{LAYER}.gpkg")["dataset"])
