"""Tiers: column tiers, personal data found at ingest, the public variant, exports, and propagation
through a join — through the real pipeline (register, stage, publish into DuckLake)."""

from __future__ import annotations

import csv
import json
import pathlib
import shutil

import pyarrow.parquet
import pyproj
import pytest
import yaml

from twinhub import sample
from twinhub.catalog.export import ExportError, export_dataset
from twinhub.hub import review
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.manifest import ManifestError
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup
from twinhub.pipelines.factory import build_definitions
from twinhub.standards.tiers import at_least, column_tier, highest

from .test_privacy import resident_id


@pytest.mark.parametrize("name, base, declared, found, tier, protection", [
    ("status", "internal", None, [], "internal", "none"),
    ("status", "public", {"classification": "sensitive"}, [], "sensitive", "none"),
    ("note", "internal", None, ["mobile"], "sensitive", "mask"),
    ("note", "public", None, ["resident_id", "email"], "restricted", "mask"),
    ("phone", "internal", {"personal_data": "phone", "protect": "pseudonymize"}, ["mobile"],
     "sensitive", "pseudonymize"),
    ("code", "internal", {"personal_data": "none"}, ["mobile"], "internal", "none"),  # steward: not personal
    ("holder", "internal", {"personal_data": "person_name"}, [], "sensitive", "mask"),
    ("id_no", "restricted", {"classification": "public"}, [], "public", "none"),  # a column may be lower
])
def test_column_tiers(name, base, declared, found, tier, protection):
    t = column_tier(name, base, declared, found)
    assert (t.classification, t.protection) == (tier, protection)


def test_tier_arithmetic():
    assert highest(["public", "restricted", "internal"]) == "restricted"
    assert highest([]) == "internal"
    assert at_least("sensitive", "internal") == "sensitive"


def _write(folder: pathlib.Path, name: str, rows: list[dict], manifest: dict) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{name}.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    manifest = {"department": "hotline", "dataset": name, "title": f"Hotline {name}", "standard": "service_request",
                "source": {"format": "csv", "path": f"{name}.csv", "crs": "EPSG:4490", "x": "lon", "y": "lat"},
                "fields": {"request_id": "编号", "opened_at": "时间", "status": "状态", "category": "类别",
                           "description": "描述", "address": "地址", "district": "区"}, **manifest}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    return path


def _rows(n: int, description, district=lambda i: "310104") -> list[dict]:
    return [{"编号": f"R{i:04d}", "时间": "2024-05-01 10:00", "状态": "open", "类别": "street_cleaning",
             "描述": description(i), "地址": f"漕溪北路{i}号", "区": district(i),
             "lon": f"{121.40 + i * 0.0013:.6f}", "lat": f"{31.20 + i * 0.0007:.6f}"} for i in range(n)]


def _activate(hub: Hub, path: pathlib.Path):
    entry, _ = register(hub, path)
    if getattr(entry, "review", None):  # sensitive registrations wait for a steward (twinhub/review.py)
        from twinhub.hub.review import approve

        approve(hub, entry.id, "test: reviewed")
    return lookup(hub, entry.id)


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Hub:
    """Hotline requests (phones in free text, undeclared), requests with resident IDs, and public shelters."""
    root = tmp_path_factory.mktemp("tiers")
    hub = Hub.open(root / "home")
    requests = _write(root / "src", "requests", _rows(40, lambda i: f"市民来电1381234{i:04d}反映路灯不亮" if i % 4 == 0
                                                     else "路灯不亮"),
                      {"classification": "internal", "columns": {"address": {"classification": "sensitive"}},
                       "public_variant": {"grid_m": 500, "columns": ["request_id", "status", "description"]}})
    ids = _write(root / "src", "ids", _rows(12, lambda i: f"申请人身份证{resident_id(seq=f'{i:03d}')}",
                                            district=lambda i: "310104" if i < 9 else "310101"),
                 {"classification": "internal", "public_variant": {"aggregate": "district", "min_count": 5}})
    for path in (requests, ids):
        ingest(hub, _activate(hub, path), run_id=f"first-{path.stem}")
        # the scan raised both (undeclared phones, IDs): their variants wait for a steward's acknowledgement
        assert f"hotline.{path.stem}_public" not in _tables(hub)
        review.acknowledge(hub, f"hotline.{path.stem}", "test: seen")
        ingest(hub, lookup(hub, f"hotline.{path.stem}"), run_id=f"acknowledged-{path.stem}", force=True)
    shutil.copytree(sample.CITY / "emergency", root / "emergency")
    ingest(hub, _activate(hub, root / "emergency" / "shelters.yaml"), run_id="first-shelters")
    return hub


def _tier(hub: Hub, dataset: str) -> str:
    return _query(hub, "SELECT classification FROM catalog.datasets WHERE dataset = ?", [dataset])[0][0]


def _tables(hub: Hub) -> set[str]:
    return {f"{s}.{t}" for s, t in _query(hub, "SELECT schema_name, table_name FROM duckdb_tables() "
                                                "WHERE database_name = 'lake'")}


def _query(hub: Hub, sql: str, params: list | None = None) -> list[tuple]:
    con = hub.lake.connect(read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_undeclared_phones_raise_the_column_and_dataset_tier(city):
    columns = dict((c, (t, p, d)) for c, t, p, d in _query(
        city, "SELECT name, classification, protection, personal_data FROM catalog.columns "
              "WHERE dataset = 'hotline.requests'"))
    assert columns["description"] == ("sensitive", "mask", "mobile")
    assert columns["address"] == ("sensitive", "none", None)  # declared
    assert columns["status"] == ("internal", "none", None)
    assert _tier(city, "hotline.requests") == "sensitive"
    details = json.loads(_query(city, "SELECT details FROM catalog.runs WHERE dataset = 'hotline.requests'")[0][0])
    assert details["privacy"]["scan"]["found"]["description"]["mobile"]["values"] == 10
    assert details["privacy"]["columns"]["description"]["raised_by"] == ["mobile"]
    assert "13812340000" not in json.dumps(details)  # only redacted examples
    notes = _query(city, "SELECT notes FROM catalog.release_notes WHERE dataset = 'hotline.requests'")[0][0]
    assert "1381234" not in notes and "description" not in json.loads(notes)["labels"]  # no raw values there either


def test_the_cli_shows_tiers_and_findings(city):
    from click.testing import CliRunner

    from twinhub.cli.main import main

    show = CliRunner().invoke(main, ["--home", str(city.home), "catalog", "show", "hotline.requests"])
    assert show.exit_code == 0, show.output
    assert "classification:   sensitive" in show.output
    assert any(line.split()[:5] == ["description", "VARCHAR", "sensitive", "mask", "mobile"]
               for line in show.output.splitlines())
    assert "* description: mobile in 10 values, e.g. 138****0000" in show.output
    listed = CliRunner().invoke(main, ["--home", str(city.home), "datasets"])
    assert any(line.split()[0] == "hotline.requests" and "sensitive" in line.split()
               for line in listed.output.splitlines())


def test_resident_ids_make_a_dataset_restricted_and_never_exported(city, tmp_path):
    assert _tier(city, "hotline.ids") == "restricted"
    with pytest.raises(ExportError, match="restricted"):
        export_dataset(city.lake, "hotline.ids", "geojson", tmp_path / "ids.geojson")


def test_open_exports_leave_sensitive_columns_out(city, tmp_path):
    path = tmp_path / "requests.geojson"
    export_dataset(city.lake, "hotline.requests", "geojson", path)
    properties = json.loads(path.read_text(encoding="utf-8"))["features"][0]["properties"]
    assert "status" in properties and "description" not in properties and "address" not in properties


def test_the_grid_variant_is_public_coarse_and_without_personal_columns(city):
    assert _query(city, "SELECT classification FROM catalog.datasets WHERE dataset = 'hotline.requests_public'") == [
        ("public",)]
    names = [r[0] for r in _query(city, "SELECT name FROM catalog.columns WHERE dataset = 'hotline.requests_public' "
                                        "ORDER BY position")]
    # listed and open: request_id; listed but raised by the scan (phones): description; not listed: address
    assert "description" not in names and "address" not in names and "request_id" in names and "geometry" in names
    assert "category" not in names  # internal, but not listed
    points = _query(city, "SELECT ST_X(geometry), ST_Y(geometry) FROM hotline.requests_public")
    assert len(points) == 40
    to_metric = pyproj.Transformer.from_crs("EPSG:4490", "EPSG:4549", always_xy=True)
    for lon, lat in points:  # every location is the centre of a 500 m cell
        x, y = to_metric.transform(lon, lat)
        assert abs(x / 500 - 0.5 - round(x / 500 - 0.5)) < 1e-3 and abs(y / 500 - 0.5 - round(y / 500 - 0.5)) < 1e-3
    assert len(set(points)) < 40  # nearby requests share a cell


def test_the_aggregate_variant_suppresses_small_districts(city):
    assert _query(city, 'SELECT district, "count" FROM hotline.ids_public') == [("310104", 9)]  # 310101 has 3 < 5
    assert _query(city, "SELECT classification FROM catalog.datasets WHERE dataset = 'hotline.ids_public'") == [
        ("public",)]


def test_tiers_propagate_through_a_join(city):
    (city.home / "derived").mkdir(exist_ok=True)
    (city.home / "derived" / "requests_near_shelters.sql").write_text(
        "SELECT r.request_id, s.facility_id FROM hotline.requests r JOIN emergency.shelters s "
        "ON ST_DWithin(r.geometry, s.geometry, 0.01)", encoding="utf-8")
    specs = {s.key.to_user_string(): s for s in build_definitions(city).resolve_all_asset_specs()}
    assert specs["emergency/shelters"].tags["classification"] == "public"
    assert specs["hotline/requests"].tags["classification"] == "sensitive"  # its address column
    assert specs["derived/requests_near_shelters"].tags["classification"] == "sensitive"
    assert specs["city/service_request"].tags["classification"] == "sensitive"


def test_an_unknown_column_is_a_manifest_error(tmp_path, hub):
    path = _write(tmp_path, "typo", _rows(3, lambda i: "x"), {"columns": {"adress": {"classification": "sensitive"}}})
    with pytest.raises(ManifestError) as err:
        register(hub, path)
    assert err.value.problems == {"columns.adress": "not a field of standard service_request (did you mean 'address'?)"}


def test_a_rollback_serves_the_column_tiers_of_its_version(hub, tmp_path):
    from twinhub.catalog.versions import dataset_versions, rollback

    path = _write(tmp_path, "requests", _rows(6, lambda i: f"来电1391234{i:04d}"), {})
    entry = _activate(hub, path)
    ingest(hub, entry, run_id="one")
    ingest(hub, entry, run_id="two", force=True)
    con = hub.lake.connect(read_only=True)
    try:
        first = dataset_versions(con, "hotline.requests")[-1]["version"]
    finally:
        con.close()
    rollback(hub.lake, "hotline.requests", first, run_id="back")
    assert _query(hub, "SELECT classification, personal_data FROM catalog.columns WHERE dataset = 'hotline.requests' "
                       "AND name = 'description'") == [("sensitive", "mobile")]
    export_dataset(hub.lake, "hotline.requests", "geojson", tmp_path / "r.geojson")
    assert "description" not in (tmp_path / "r.geojson").read_text(encoding="utf-8")


@pytest.mark.parametrize("keys, problems", [
    ({"columns": {"address": {"protec": "mask"}}}, {"columns.address.protec": "unknown key (did you mean 'protect'?)"}),
    ({"columns": {"address": {"personal_data": "phones"}}},
     {"columns.address.personal_data": "unknown kind of personal data 'phones' (did you mean 'phone'?)"}),
    ({"public_variant": {"grid": 500}}, {"public_variant.grid": "unknown key (did you mean 'grid_m'?)"}),
    ({"public_variant": {}}, {"public_variant": "give either grid_m (metres) or aggregate (a field, e.g. district)"}),
])
def test_privacy_keys_are_checked_key_by_key(keys, problems):
    from twinhub.hub.manifest import parse_manifest

    with pytest.raises(ManifestError) as err:
        parse_manifest({"department": "a", "dataset": "b", "title": "t", "standard": "facility", "source": {},
                        "fields": {}, **keys}, "m.yaml")
    assert err.value.problems == problems


def test_public_variant_is_checked_against_the_standard(tmp_path, hub):
    path = _write(tmp_path, "variant", _rows(3, lambda i: "x"), {"public_variant": {"aggregate": "distrct"}})
    with pytest.raises(ManifestError) as err:
        register(hub, path)
    assert err.value.problems == {
        "public_variant.aggregate": "not a field of standard service_request (did you mean 'district'?)"}


def test_a_variant_goes_when_the_manifest_drops_it_and_never_replaces_a_dataset(hub, tmp_path):
    from twinhub.catalog.variants import VariantConflict

    variant = {"public_variant": {"aggregate": "district", "min_count": 5}}
    ingest(hub, _activate(hub, _write(tmp_path / "a", "requests", _rows(5, lambda i: "x"), variant)), run_id="one")
    assert _query(hub, 'SELECT "count" FROM hotline.requests_public') == [(5,)]
    ingest(hub, _activate(hub, _write(tmp_path / "b", "requests", _rows(5, lambda i: "x"), {})), run_id="two")
    assert _query(hub, "SELECT count(*) FROM catalog.datasets WHERE dataset = 'hotline.requests_public'") == [(0,)]
    assert "hotline.requests_public" not in [f"{s}.{t}" for s, t in _query(
        hub, "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'lake'")]

    ingest(hub, _activate(hub, _write(tmp_path / "c", "requests_public", _rows(2, lambda i: "y"), {})), run_id="own")
    with pytest.raises(VariantConflict, match="hotline.requests_public, which is registered on its own"):
        ingest(hub, _activate(hub, _write(tmp_path / "d", "requests", _rows(5, lambda i: "x"), variant)),
               run_id="three")
    assert _query(hub, "SELECT count(*) FROM hotline.requests_public") == [(2,)]  # untouched


def test_a_sensitive_geometry_is_left_out_of_every_open_format(hub, tmp_path):
    from twinhub.catalog.opendata import export_catalog

    path = _write(tmp_path / "src", "located", _rows(3, lambda i: "x"),
                  {"columns": {"geometry": {"classification": "sensitive"}}, "public_variant": {"grid_m": 1000}})
    ingest(hub, _activate(hub, path), run_id="one")
    out = tmp_path / "out"
    out.mkdir()
    for fmt in ("geoparquet", "geojson", "csv", "gpkg"):
        assert export_dataset(hub.lake, "hotline.located", fmt, out / f"located.{fmt}").rows == 3
    assert "POINT" not in (out / "located.csv").read_text(encoding="utf-8")
    assert "geometry" not in pyarrow.parquet.read_schema(out / "located.geoparquet").names
    stac = export_catalog(hub.lake, "stac", out / "stac")
    assert (stac.parent / "data" / "hotline.located.parquet").is_file()
    export_dataset(hub.lake, "hotline.located_public", "csv", out / "coarse.csv")
    assert "POINT" in (out / "coarse.csv").read_text(encoding="utf-8")  # the coarsened variant keeps a location


def test_a_rollback_serves_the_public_variant_of_its_version(hub, tmp_path):
    """The variant is rebuilt with each publish; a rollback restores the one of the version it serves again."""
    from twinhub.catalog.versions import dataset_versions, rollback

    variant = {"public_variant": {"aggregate": "district", "min_count": 5}}
    ingest(hub, _activate(hub, _write(tmp_path / "a", "requests", _rows(4, lambda i: "x"), {})), run_id="none")
    ingest(hub, _activate(hub, _write(tmp_path / "b", "requests", _rows(5, lambda i: "x"), variant)), run_id="four")
    ingest(hub, _activate(hub, _write(tmp_path / "c", "requests", _rows(7, lambda i: "x"), variant)), run_id="seven")
    assert _query(hub, 'SELECT "count" FROM hotline.requests_public') == [(7,)]
    con = hub.lake.connect(read_only=True)
    try:
        versions = {v["run_id"]: v["version"] for v in dataset_versions(con, "hotline.requests")}
    finally:
        con.close()

    rollback(hub.lake, "hotline.requests", versions["four"], run_id="back-to-four")
    assert _query(hub, 'SELECT "count" FROM hotline.requests_public') == [(5,)]
    assert _query(hub, "SELECT classification FROM catalog.datasets WHERE dataset = 'hotline.requests_public'") == [
        ("public",)]
    assert _query(hub, "SELECT count(*) FROM catalog.columns WHERE dataset = 'hotline.requests_public'")[0][0] > 0

    rollback(hub.lake, "hotline.requests", versions["none"], run_id="back-to-none")  # that version had no variant
    assert _query(hub, "SELECT count(*) FROM catalog.datasets WHERE dataset = 'hotline.requests_public'") == [(0,)]
    assert "hotline.requests_public" not in [f"{s}.{t}" for s, t in _query(
        hub, "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'lake'")]
    assert _query(hub, "SELECT count(*) FROM hotline.requests") == [(4,)]  # the version without a variant
