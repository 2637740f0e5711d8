"""Guided registration on real departments' files (shared/data/realworld), through the CLI where it matters."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from twinhub.cli.main import main
from twinhub.guided.drafts import read_draft
from twinhub.guided.guide import propose
from twinhub.guided.source import GuidedError, source_spec
from twinhub.hub.home import Hub
from twinhub.hub.registry import registered

from .conftest import city_hub

ADUR = "uk_adur_public_toilets/adur-public-toilets.csv"
TORONTO = "ca_toronto_street_trees/street-tree-data-EY.csv"
BOSTON = "us_boston_311/boston311-100.csv"
BANQIAO = "tw_newtaipei_banqiao_parking/BanqiaoPublicParkingSpaceInfo.csv"


def _cli(hub, *args: str):
    result = CliRunner().invoke(main, ["--home", str(hub.home), *args], catch_exceptions=False)
    return result


@pytest.mark.parametrize("source, expected", [
    ("x/toilets.csv", {"format": "csv"}),
    ("https://gis.example.org/arcgis/rest/services/Bins/FeatureServer/0", {"format": "arcgis"}),
    ("https://api.example.org/collections/trees/items", {"format": "ogcapi"}),
    ("https://data.example.org/bins.geojson", {"format": "http", "data_format": "geojson"}),
    ("mysql://root@127.0.0.1/test?table=bins", {"format": "mysql", "host": "127.0.0.1", "user": "root", "table": "bins"}),
    ("postgresql://hub@db:5433/city?table=public.t&password_env=PW",
     {"format": "postgres", "port": 5433, "database": "city", "password_env": "PW"}),
])
def test_what_a_source_argument_is(tmp_path, source, expected):
    if source.startswith("x/"):
        (tmp_path / "x").mkdir()
        (tmp_path / source).write_text("a,b\n1,2\n")
        source = str(tmp_path / source)
    spec = source_spec(source)
    assert {k: spec[k] for k in expected} == expected


@pytest.mark.parametrize("source, says", [
    ("postgresql://hub:secret@db/city?table=t", "password in the database URL is refused"),
    ("ftp://example.org/x.csv", "unknown kind of source"),
    ("/nowhere/x.csv", "no such file"),
    ("https://example.org/page.html", "cannot tell what the URL serves"),
])
def test_sources_it_cannot_take_say_why(source, says):
    with pytest.raises(GuidedError, match=says):
        source_spec(source)


def test_adur_toilets_facility_in_the_british_national_grid(realworld, adur_hub):
    """GeoX/GeoY eastings/northings: EPSG:27700 from the ranges; the toilets are facilities."""
    proposal = propose(adur_hub, str(realworld / ADUR), "facilities")
    profile = proposal.profile
    assert profile.source["x"] == "GeoX" and profile.source["y"] == "GeoY"
    assert profile.source["crs"] == "EPSG:27700" and profile.crs.how == "detected"
    assert profile.crs.candidates[0].crs == "EPSG:27700" and profile.crs.confidence == 1.0
    assert any("OSGB36" in e for e in profile.crs.evidence)  # the file's own column, shown as evidence
    assert profile.encoding == "utf-8-sig"
    assert list(profile.privacy) == ["ReportEmail"] and profile.privacy["ReportEmail"]["email"]["values"] == 15
    assert all("surveyor" not in x for x in profile.privacy["ReportEmail"]["email"]["examples"])  # redacted
    assert [s.standard.name for s in proposal.scores][0] == "facility"
    assert proposal.scores[0].score > proposal.scores[1].score + 0.2
    assert proposal.manifest["fields"] == {"facility_id": "UPRN", "name": "LocationText",
                                           "category": "ServiceTypeLabel", "address": "StreetAddress"}
    (draft,) = proposal.drafts
    assert draft.field == "category" and [(e.value, e.code) for e in draft.entries] == [("Public toilets", None)]
    run = proposal.dry_run
    assert (run.rows_read, run.would_publish, run.would_quarantine) == (15, 0, 15)
    assert run.reasons[0]["check"] == "label_unmapped" and run.reasons[0]["examples"][0]["value"] == "Public toilets"


@pytest.mark.slow
def test_toronto_trees_species_drafted_into_a_crosswalk(realworld, toronto_hub, tmp_path):
    """GeoJSON points in a text cell; 119 botanical names, none a street asset type: all drafted as '?'."""
    out = tmp_path / "dept" / "trees.yaml"
    result = _cli(toronto_hub, "register", str(realworld / TORONTO), "--department", "parks",
                  "--dataset", "street_trees", "--out", str(out))
    assert result.exit_code == 0, result.output
    manifest = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert manifest["standard"] == "street_asset"
    assert manifest["source"]["geometry"] == "geometry" and manifest["source"]["crs"] == "EPSG:4326"
    assert manifest["fields"]["asset_type"] == "BOTANICAL_NAME" and manifest["fields"]["name"] == "COMMON_NAME"
    assert "RFC 7946" in result.output  # why a GeoJSON cell reads as WGS 84
    draft_file = out.parent / "parks.street_trees.asset_type.yaml"
    entries = yaml.safe_load(draft_file.read_text(encoding="utf-8"))["mappings"]
    species = {e["value"]: e for e in entries}
    assert species["Acer platanoides"]["code"] == "?" and species["Acer platanoides"]["note"].startswith("1762 rows")
    assert len(species) == 119  # every distinct name of the whole file ('None' is a null, not a species)
    crosswalk, unfilled = read_draft(draft_file, toronto_hub.pack)
    assert (len(crosswalk.entries), unfilled) == (0, 119)
    assert "6115 rows read: 0 would publish, 6115 would be quarantined" in result.output


@pytest.mark.slow
def test_an_edited_draft_shows_its_new_dry_run_and_registers_with_yes(realworld, tmp_path):
    """Boston 311: the department maps two subjects; the re-run publishes those rows; --yes installs the draft."""
    hub = city_hub(tmp_path, "boston")
    out = tmp_path / "dept" / "requests.yaml"
    first = _cli(hub, "register", str(realworld / BOSTON), "--department", "city_services", "--out", str(out),
                 "--format", "json")
    assert first.exit_code == 0, first.output
    before = json.loads(first.output)
    assert before["manifest"]["standard"] == "service_request"
    assert before["manifest"]["fields"]["request_id"] == "case_enquiry_id"
    assert before["profile"]["source"]["x"] == "longitude" and before["profile"]["crs"]["crs"] == "EPSG:4326"
    draft_file = out.parent / "city_services.boston311_100.category.yaml"
    text = draft_file.read_text(encoding="utf-8")
    text = (text.replace('value: "Public Works Department", code: "?"', 'value: "Public Works Department", code: "street_environment"')
            .replace('value: "Transportation - Traffic Division", code: "?"',
                     'value: "Transportation - Traffic Division", code: "traffic_and_parking"'))
    draft_file.write_text(text, encoding="utf-8")

    again = _cli(hub, "register", str(out), "--dry-run", "--format", "json")
    assert again.exit_code == 0, again.output
    after = json.loads(again.output)["dry_run"]
    assert after["rows_read"] == 100
    assert after["would_publish"] > before["dry_run"]["would_publish"] + 50  # 51 + 28 rows of the two subjects
    assert registered(hub) == []  # a dry run registers nothing

    done = _cli(hub, "register", str(out), "--yes")
    assert done.exit_code == 0, done.output
    assert [r.id for r in registered(hub)] == ["city_services.boston311_100"]
    installed = hub.home / "crosswalks" / "city_services.boston311_100.category.yaml"
    assert {m["code"] for m in yaml.safe_load(installed.read_text(encoding="utf-8"))["mappings"]} == {
        "street_environment", "traffic_and_parking"}


def test_a_restricted_dataset_registered_with_yes_still_waits_for_review(realworld, adur_hub, tmp_path):
    out = tmp_path / "toilets.yaml"
    assert _cli(adur_hub, "register", str(realworld / ADUR), "--department", "facilities", "--out", str(out)).exit_code == 0
    out.write_text(out.read_text(encoding="utf-8").replace('classification: "internal"', 'classification: "restricted"'),
                   encoding="utf-8")
    result = _cli(adur_hub, "register", str(out), "--yes")
    assert result.exit_code == 0, result.output
    assert "waits for a steward's review" in result.output
    assert registered(adur_hub) == []  # not active until a steward approves it


def test_print_only_writes_nothing_and_yes_registers_the_proposal(realworld, adur_hub, tmp_path):
    shown = _cli(adur_hub, "register", str(realworld / ADUR), "--department", "facilities")
    assert shown.exit_code == 0 and "nothing was written" in shown.output
    assert not (adur_hub.home / "proposals").exists() and registered(adur_hub) == []
    done = _cli(adur_hub, "register", str(realworld / ADUR), "--department", "facilities", "--yes")
    assert done.exit_code == 0, done.output
    assert [r.id for r in registered(adur_hub)] == ["facilities.adur_public_toilets"]
    assert (adur_hub.home / "proposals" / "facilities" / "adur_public_toilets.yaml").is_file()


def test_banqiao_tm2_is_proposed_but_marked_unsure(realworld, tmp_path):
    """TWD97 and TWD67 TM2 place the car parks within metres of each other: confidence 50%, a TODO."""
    hub = city_hub(tmp_path, "banqiao")
    proposal = propose(hub, str(realworld / BANQIAO), "transport")
    crs = proposal.profile.crs
    assert crs.crs == "EPSG:3826" and crs.confidence == 0.5 and not crs.sure
    assert {c.crs for c in crs.candidates[:2]} == {"EPSG:3826", "EPSG:3828"}
    assert proposal.manifest["standard"] == "facility"
    assert proposal.manifest["fields"]["facility_id"] == "ID"  # repeats in the file: a weak, flagged fit
    id_mapping = next(m for m in proposal.scores[0].mappings if m.field == "facility_id")
    assert not id_mapping.sure and "repeat" in id_mapping.why
    out = tmp_path / "parks.yaml"
    from twinhub.guided.guide import write

    write(proposal, out, hub.pack)
    text = out.read_text(encoding="utf-8")
    assert "TODO: confirm with the data's owner" in text and "EPSG:3828" in text
    assert 'facility_id: "ID"  # TODO: check' in text


def test_coordinates_outside_the_city_ask_for_crs(realworld, toronto_hub):
    result = _cli(toronto_hub, "register", str(realworld / ADUR), "--department", "facilities")
    assert result.exit_code == 2
    assert "cannot tell the CRS of GeoX, GeoY" in result.output and "--crs" in result.output


def test_a_plain_manifest_still_registers_the_old_way(realworld, adur_hub, tmp_path):
    out = tmp_path / "toilets.yaml"
    _cli(adur_hub, "register", str(realworld / ADUR), "--department", "facilities", "--out", str(out))
    result = _cli(adur_hub, "register", str(out))
    assert result.exit_code == 0, result.output
    assert "registered facilities.adur_public_toilets" in result.output


def test_a_postgis_table_is_located_and_its_srid_taken(adur_hub):
    """A database table: the WKB column is found, its SRID is the declared CRS (no detection needed)."""
    import uuid

    import psycopg

    table = f"guided_{uuid.uuid4().hex[:8]}"
    config = adur_hub.home / "twinhub.yaml"  # the server is on loopback: allowed as twinhub.yaml would
    config.write_text(config.read_text(encoding="utf-8") + "http: {allow_hosts: [127.0.0.1]}\n", encoding="utf-8")
    adur_hub = Hub.open(adur_hub.home)
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as con:
        con.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        if not con.execute("SELECT 1 FROM pg_roles WHERE rolname = 'twinhub_reader'").fetchone():
            con.execute("CREATE ROLE twinhub_reader LOGIN")  # the hub refuses superusers as source accounts
        con.execute(f"CREATE TABLE {table} (uprn bigint, location_text text, category text, geom geometry(Point, 27700))")
        con.execute(f"INSERT INTO {table} VALUES (60001449, 'BEACH GREEN', 'Public toilets', "
                    "ST_SetSRID(ST_MakePoint(518072, 103649), 27700)), (60002210, 'MONKS RECREATION GROUND', "
                    "'Public toilets', ST_SetSRID(ST_MakePoint(518225, 104730), 27700))")
        con.execute(f"GRANT SELECT ON {table} TO twinhub_reader")
        try:
            proposal = propose(adur_hub, f"postgresql://twinhub_reader@127.0.0.1:5432/test?table=public.{table}", "facilities")
        finally:
            con.execute(f"DROP TABLE {table}")
    assert proposal.manifest["source"]["geometry"] == "geom" and "crs" not in proposal.manifest["source"]
    assert proposal.profile.crs.how == "declared" and proposal.profile.crs.evidence == ["the source declares EPSG:27700"]
    assert proposal.manifest["dataset"] == table and proposal.manifest["standard"] == "facility"
    assert proposal.manifest["fields"] == {"facility_id": "uprn", "name": "location_text", "category": "category"}
    assert (proposal.dry_run.rows_read, proposal.dry_run.would_quarantine) == (2, 2)  # 'Public toilets' unmapped


def test_bath_seats_and_grit_bins_codes_suggested_only_when_clear(realworld, tmp_path):
    """Bath & NE Somerset GeoJSON (CRS84 declared): SEATS/BENCHES clearly benches; GBIN could be two codes."""
    hub = city_hub(tmp_path, "bath")
    seats = propose(hub, str(realworld / "uk_bath_banes_street_assets/banes_park_seats_and_benches.geojson"), "parks")
    assert seats.manifest["standard"] == "street_asset" and seats.profile.crs.how == "declared"
    assert seats.manifest["fields"] == {"asset_id": "uniqueid", "asset_type": "type", "name": "site_name"}
    assert {(e.value, e.code, e.how) for e in seats.drafts[0].entries} == {
        ("SEATS", "bench", "suggested"), ("BENCHES", "bench", "suggested")}
    assert (seats.dry_run.would_publish, seats.dry_run.would_quarantine) == (558, 2)  # one uniqueid used twice
    assert seats.dry_run.reasons[0]["check"] == "duplicate_key"

    grit = propose(hub, str(realworld / "uk_bath_banes_street_assets/banes_grit_bins.geojson"), "highways")
    assert grit.manifest["fields"]["asset_type"] == "feature_ty"  # 'feature type' cut to 10 characters
    (entry,) = grit.drafts[0].entries
    assert (entry.value, entry.code) == ("GBIN", None) and "litter_bin" in entry.note and "grit_bin" in entry.note


def test_a_plain_register_installs_the_edited_draft_and_out_never_overwrites(realworld, tmp_path):
    """Bath seats: the department edits the draft; `twinhub register FILE` installs it; --out keeps edits."""
    hub = city_hub(tmp_path, "bath")
    out = tmp_path / "seats.yaml"
    source = str(realworld / "uk_bath_banes_street_assets/banes_park_seats_and_benches.geojson")
    assert _cli(hub, "register", source, "--department", "parks", "--out", str(out)).exit_code == 0
    draft = tmp_path / "parks.banes_park_seats_and_benches.asset_type.yaml"
    draft.write_text(draft.read_text(encoding="utf-8").replace('code: "bench", match: close', 'code: "bench", match: exact', 1),
                     encoding="utf-8")
    again = _cli(hub, "register", source, "--department", "parks", "--out", str(out))
    assert again.exit_code == 2 and "exists: edit it" in again.output
    done = _cli(hub, "register", str(out))
    assert done.exit_code == 0, done.output
    installed = hub.home / "crosswalks" / "parks.banes_park_seats_and_benches.asset_type.yaml"
    assert f"installed crosswalk {installed}" in done.output
    mappings = yaml.safe_load(installed.read_text(encoding="utf-8"))["mappings"]
    assert {(m["value"], m["code"], m["match"]) for m in mappings} == {("SEATS", "bench", "exact"), ("BENCHES", "bench", "close")}
    draft.write_text(draft.read_text(encoding="utf-8").replace('code: "bench"', 'code: "sofa"', 1), encoding="utf-8")
    broken = _cli(hub, "register", str(out))
    assert broken.exit_code == 2 and "'sofa' is not a code of vocabulary street_asset_type" in broken.output


@pytest.fixture
def served_realworld(realworld):
    """The real-world folder over HTTP on 127.0.0.1 (a real server; the hub must allow the host)."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(realworld)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_csv_over_http_goes_through_the_network_policy(served_realworld, tmp_path):
    hub = city_hub(tmp_path, "boston")
    url = f"{served_realworld}/{BOSTON}"
    refused = _cli(hub, "register", url, "--department", "city_services")
    assert refused.exit_code == 2 and "127.0.0.1" in refused.output  # loopback is refused unless allowed
    config = hub.home / "twinhub.yaml"
    config.write_text(config.read_text(encoding="utf-8") + "http: {allow_hosts: [127.0.0.1]}\n", encoding="utf-8")
    shown = _cli(hub, "register", url, "--department", "city_services", "--format", "json")
    assert shown.exit_code == 0, shown.output
    proposal = json.loads(shown.output)
    assert proposal["manifest"]["source"]["format"] == "http" and proposal["manifest"]["source"]["data_format"] == "csv"
    assert proposal["manifest"]["source"]["x"] == "longitude" and proposal["manifest"]["standard"] == "service_request"
    assert proposal["dry_run"]["rows_read"] == 100


@pytest.mark.parametrize("name, content, says", [
    ("bad.gpkg", b"not a geopackage", "GDAL cannot open it"),
    ("empty.csv", b"", "the file is empty"),
    ("header.csv", b"a,b\n", "header but no data rows"),
    ("readings.csv", "传感器,读数\nA1,0.5\n".encode(), "no standard of the hub fits its columns"),
])
def test_sources_that_cannot_be_proposed_say_why_in_one_line(adur_hub, tmp_path, name, content, says):
    (tmp_path / name).write_bytes(content)
    result = _cli(adur_hub, "register", str(tmp_path / name), "--department", "facilities")
    assert result.exit_code == 2
    (line,) = [ln for ln in result.output.splitlines() if ln.strip()]
    assert line.startswith("error: ") and says in line and "Traceback" not in result.output


@pytest.mark.parametrize("department, source", [
    ("civil_affairs", "elderly_care.csv"),  # GBK, Chinese headers, GCJ-02 from a web map
    ("health", "health_centres.xlsx"),  # a title row above the header, BD-09
    ("emergency", "shelters.geojson"),
    ("water", "pumping_stations.zip"),  # a zipped Shapefile with a .prj
])
def test_the_sample_city_s_departments_get_the_fields_their_own_manifests_map(hub, department, source):
    """The bundled sample city (Shanghai pack): each proposal maps the fields its department's manifest maps."""
    from twinhub.sample import CITY

    folder = CITY / department
    (manifest,) = folder.glob("*.yaml")
    truth = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    proposal = propose(hub, str(folder / source), department)
    assert proposal.manifest["standard"] == truth["standard"]
    assert proposal.manifest["fields"] == truth["fields"]
    for key in ("x", "y", "header_row"):
        assert proposal.manifest["source"].get(key) == truth["source"].get(key)
    crs = proposal.profile.crs
    if truth["source"].get("crs") in ("GCJ-02", "BD-09"):  # web-map offsets: indistinguishable by position here
        assert not crs.sure and truth["source"]["crs"] in {c.crs for c in crs.candidates}
    else:
        assert crs.how == "declared"


def test_crs_given_with_the_option_is_taken_as_declared(realworld, adur_hub):
    proposal = propose(adur_hub, str(realworld / "uk_adur_public_toilets/adur-public-toilets-valid.csv"), "facilities",
                       crs="EPSG:27700")
    assert proposal.profile.crs.how == "given" and proposal.manifest["source"]["crs"] == "EPSG:27700"
    assert proposal.profile.crs.candidates == []  # nothing ranked: the department said so
    with pytest.raises(GuidedError, match="--crs: unknown CRS"):
        propose(adur_hub, str(realworld / ADUR), "facilities", crs="EPSG:99999")


def test_personal_data_in_a_mapped_column_is_declared_in_the_proposal(hub, tmp_path):
    """A phone number written into the address column: the proposal declares columns.address (Shanghai pack)."""
    source = tmp_path / "养老机构.csv"
    source.write_text("机构编号,机构名称,机构类型,地址,经度,纬度\n"
                      "A1,静安养老院,养老院,康定路1号 联系13812345678,121.4452,31.2291\n"
                      "A2,长宁日照中心,日间照料中心,延安西路2号,121.4241,31.2203\n", encoding="gbk")
    proposal = propose(hub, str(source), "civil_affairs", dataset="elderly_care", crs="GCJ-02")
    assert proposal.manifest["columns"] == {"address": {"personal_data": ["mobile"]}}
    assert proposal.profile.encoding in ("gb18030", "gbk")
    from twinhub.guided.guide import write

    out = tmp_path / "elderly_care.yaml"
    write(proposal, out, hub.pack)
    written = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert written["columns"] == {"address": {"personal_data": ["mobile"]}}
    assert written["source"]["path"] == "养老机构.csv"  # beside the manifest: relative
    assert proposal.dry_run.would_publish == 2


def test_the_report_says_whether_registering_waits_for_review(realworld, adur_hub, tmp_path):
    shown = _cli(adur_hub, "register", str(realworld / ADUR), "--department", "facilities")
    assert "tier: internal: registering it needs no review" in shown.output
    out = tmp_path / "toilets.yaml"
    assert _cli(adur_hub, "register", str(realworld / ADUR), "--department", "facilities", "--out", str(out)).exit_code == 0
    out.write_text(out.read_text(encoding="utf-8").replace('classification: "internal"', 'classification: "sensitive"'),
                   encoding="utf-8")
    again = _cli(adur_hub, "register", str(out), "--dry-run")
    assert ("tier: sensitive: registering it waits for a steward's review (classified sensitive); "
            "it does not run until approved") in again.output
    assert registered(adur_hub) == []
