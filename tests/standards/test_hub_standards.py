"""The standards in a hub: label review and accept, standards check and score, CRS refusals and detection.

Each test runs datasets through ``twinhub.hub.ingest`` (the data work of a Dagster
asset) and the CLI, on a hub in a temporary home.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest
import yaml
from click.testing import CliRunner

from twinhub import sample
from twinhub.catalog.info import last_published
from twinhub.cli.main import main
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.manifest import ManifestError
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup
from twinhub.standards.pack import DEFAULT_PACK, load_pack


def twinhub(hub: Hub, *args: str):
    return CliRunner().invoke(main, ["--home", str(hub.home), *args], catch_exceptions=False)


def _run(hub: Hub, dataset: str, run_id: str):
    return ingest(hub, lookup(hub, dataset), run_id=run_id)


def _details(hub: Hub, dataset: str) -> dict:
    return json.loads(last_published(hub.lake, dataset)["details"])


def _hub_with_pack(tmp_path: pathlib.Path, edit_city=None) -> tuple[Hub, pathlib.Path]:
    """A hub whose standards pack is an editable copy of the shipped one."""
    pack = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK, pack, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    if edit_city:
        city = yaml.safe_load((pack / "city.yaml").read_text(encoding="utf-8"))
        edit_city(city)
        (pack / "city.yaml").write_text(yaml.safe_dump(city, allow_unicode=True), encoding="utf-8")
    hub = Hub.open(tmp_path / "home")
    # the departments' files are the sample city's and the shared real-world data (twinhub.yaml landing:)
    shared = [str(sample.CITY), str(pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data" / "realworld")]
    landing = {department: shared for department in ("civil_affairs", "transport", "public_works")}
    (hub.home / "twinhub.yaml").write_text(yaml.safe_dump({"standards": str(pack), "landing": landing}), encoding="utf-8")
    return Hub.open(hub.home), pack


def _edit_yaml(path: pathlib.Path, edit) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    load_pack.cache_clear()  # a new process would read the files afresh


def _manifest(tmp_path: pathlib.Path, name: str, data: dict) -> pathlib.Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- labels


@pytest.mark.slow
def test_review_accept_and_the_next_run_publishes_the_rows(hub):
    register(hub, sample.CITY / "civil_affairs" / "elderly_care.yaml")
    first = _run(hub, "civil_affairs.elderly_care", "first")
    review = twinhub(hub, "labels", "review", "civil_affairs.elderly_care", "--format", "json")
    assert review.exit_code == 0, review.output
    [entry] = json.loads(review.output)
    assert (entry["field"], entry["source_column"], entry["value"], entry["rows"]) == ("category", "机构类型", "老年活动室", 1)
    assert _details(hub, "civil_affairs.elderly_care")["labels"]["category"]["share_mapped"] == round(23 / 24, 4)

    accepted = twinhub(hub, "labels", "accept", "civil_affairs.elderly_care", "category", "老年活动室",
                       "day_care_centre", "--match", "close")
    assert accepted.exit_code == 0, accepted.output
    assert "publishes the 1 row(s)" in accepted.output
    crosswalk = hub.home / "crosswalks" / "civil_affairs.elderly_care.category.yaml"
    assert "老年活动室" in crosswalk.read_text(encoding="utf-8")

    second = _run(hub, "civil_affairs.elderly_care", "second")  # the crosswalk changed: not "unchanged"
    assert not second.unchanged and second.rows_published == first.rows_published + 1
    assert "label_unmapped" not in second.reasons
    labels = _details(hub, "civil_affairs.elderly_care")["labels"]["category"]
    assert labels["share_mapped"] == 1.0 and labels["by_match"]["close"] == 1
    assert labels["crosswalks"] == ["civil_affairs.elderly_care.category@1.0.0"]
    assert "nothing to review" in twinhub(hub, "labels", "review", "civil_affairs.elderly_care").output


def test_accept_refuses_an_unknown_code_with_a_hint(hub):
    register(hub, sample.CITY / "civil_affairs" / "elderly_care.yaml")
    result = twinhub(hub, "labels", "accept", "civil_affairs.elderly_care", "category", "老年活动室", "day_care_center")
    assert result.exit_code == 2 and "did you mean day_care_centre" in result.output
    assert not (hub.home / "crosswalks").exists()


# --------------------------------------------------------------------------- standards check


@pytest.mark.slow
def test_check_reports_which_datasets_a_changed_standard_would_break(tmp_path):
    hub, pack = _hub_with_pack(tmp_path)
    register(hub, sample.CITY / "civil_affairs" / "elderly_care.yaml")
    register(hub, sample.CITY / "water" / "pumping_stations.yaml")
    _run(hub, "civil_affairs.elderly_care", "r1")
    _run(hub, "water.pumping_stations", "r1")
    assert twinhub(hub, "standards", "check").exit_code == 0

    def narrow(d):
        capacity = next(f for f in d["fields"] if f["name"] == "capacity")
        capacity["constraints"]["maximum"] = 200
        d["version"] = "1.1.0"

    _edit_yaml(pack / "schemas" / "facility.schema.yaml", narrow)
    _edit_yaml(pack / "vocabularies" / "facility_category.yaml",
               lambda d: d.update(concepts=[c for c in d["concepts"] if c["code"] != "sewage_pumping_station"]))
    result = twinhub(hub, "standards", "check", "--format", "json")
    assert result.exit_code == 1
    report = {r["dataset"]: r for r in json.loads(result.output)}
    care = report["civil_affairs.elderly_care"]
    assert care["status"] == "breaks" and (care["published_with"], care["now"]) == ("facility@1.0.0", "facility@1.1.0")
    message = "capacity: maximum 100000 -> 200"
    assert message in [c["message"] for c in care["changes"] if c["breaking"]]
    assert care["affected_rows"][message] == 5  # published capacities above 200: 292, 228, 259, 209, 243
    assert "new major version" in care["versioning"]
    water = report["water.pumping_stations"]
    removed = next(c for c in water["changes"] if c["kind"] == "code_removed")
    assert "sewage_pumping_station" in removed["message"] and water["affected_rows"][removed["message"]] > 0
    table = twinhub(hub, "standards", "check").output
    assert "2 of 2 registered datasets would break" in table and "BREAKS" in table


@pytest.mark.slow
def test_a_pinned_dataset_keeps_its_version(tmp_path):
    hub, pack = _hub_with_pack(tmp_path)
    manifest = yaml.safe_load((sample.CITY / "civil_affairs" / "elderly_care.yaml").read_text(encoding="utf-8"))
    manifest.update(standard="facility@1.0.0", source=dict(manifest["source"],
                    path=str(sample.CITY / "civil_affairs" / "elderly_care.csv")))
    register(hub, _manifest(tmp_path, "pinned", manifest))
    _run(hub, "civil_affairs.elderly_care", "r1")
    archive = pack / "schemas" / "archive"
    archive.mkdir()
    shutil.copy(pack / "schemas" / "facility.schema.yaml", archive / "facility-1.0.0.schema.yaml")

    def breaking(d):
        d["version"] = "2.0.0"
        d["fields"] = [f for f in d["fields"] if f["name"] != "district"]

    _edit_yaml(pack / "schemas" / "facility.schema.yaml", breaking)
    report = json.loads(twinhub(hub, "standards", "check", "--format", "json").output)
    assert report[0]["status"] == "ok" and report[0]["now"] == "facility@1.0.0"
    assert Hub.open(hub.home).pack.standard("facility").version == "2.0.0"


# --------------------------------------------------------------------------- CRS


def _shanghai_csv(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "stations.csv"
    path.write_text("id,name,type,lon,lat\nS1,一号泵站,雨水泵站,121.47,31.23\nS2,二号泵站,污水泵站,121.50,31.20\n",
                    encoding="utf-8")
    return path


def _station_manifest(csv_path: pathlib.Path, **extra) -> dict:
    return {"department": "water", "dataset": "old_grid", "title": "Stations", "standard": "facility",
            "source": {"format": "csv", "path": str(csv_path), "x": "lon", "y": "lat", **extra.pop("source", {})},
            "fields": {"facility_id": "id", "name": "name", "category": "type"}, **extra}


@pytest.mark.slow
def test_a_ballpark_datum_shift_is_refused_unless_the_manifest_accepts_it(hub, tmp_path):
    data = tmp_path / "stations.csv"
    data = _shanghai_csv(tmp_path)
    refused = _manifest(tmp_path, "refused", _station_manifest(data, source={"crs": "EPSG:4214"}))
    with pytest.raises(ManifestError) as error:
        register(hub, refused)
    assert "source.crs" in error.value.problems and "accept_accuracy_m" in error.value.problems["source.crs"]
    assert "Beijing 1954" in error.value.problems["source.crs"]
    accepted = _manifest(tmp_path, "accepted", _station_manifest(data, source={"crs": "EPSG:4214"},
                                                                 accept_accuracy_m=150))
    register(hub, accepted)
    _run(hub, "water.old_grid", "r1")
    crs = _details(hub, "water.old_grid")["crs"]
    assert crs["ballpark"] and crs["accepted"] == "by the manifest: accept_accuracy_m 150" and crs["accuracy_m"] == 150
    assert _details(hub, "water.old_grid")["score"]["parts"]["crs"] == 0.5


def test_an_undeclared_crs_is_refused_with_ranked_candidates(tmp_path, realworld):
    """tw_newtaipei_banqiao_parking: the CSV's TW97X/TW97Y are EPSG:3826, declared nowhere."""
    hub, _ = _hub_with_pack(tmp_path, lambda c: c.update(
        name="New Taipei", target_crs="EPSG:4326", timezone="Asia/Taipei", extent=[121.28, 24.67, 122.01, 25.30],
        crs_candidates=[]))
    manifest = _manifest(tmp_path, "parking", {
        "department": "transport", "dataset": "parking", "title": "Car parks", "standard": "facility",
        "source": {"format": "csv", "path": str(realworld / "tw_newtaipei_banqiao_parking" / "BanqiaoPublicParkingSpaceInfo.csv"),
                   "x": "TW97X", "y": "TW97Y"},
        "fields": {"facility_id": "ID", "name": "NAME", "category": "TYPE"},
        "labels": {"category": {"1": "car_park", "2": "car_park"}}})
    with pytest.raises(ManifestError) as error:
        register(hub, manifest)
    problem = error.value.problems["source.crs"]
    assert "1. EPSG:3826 (TWD97 / TM2 zone 121)" in problem and "never guesses" in problem
    ranked = twinhub(hub, "standards", "crs", str(manifest), "--format", "json")
    assert ranked.exit_code == 0, ranked.output
    assert json.loads(ranked.output)["candidates"][0]["crs"] == "EPSG:3826"


# --------------------------------------------------------------------------- a real service-request feed


@pytest.mark.slow
def test_boston_311_through_the_hub(tmp_path, realworld):
    """us_boston_311 as a service_request dataset: dates in Boston time, labels, the placeholder point, a score."""
    hub, _ = _hub_with_pack(tmp_path, lambda c: c.update(
        name="Boston", target_crs="EPSG:4326", timezone="America/New_York", extent=[-71.20, 42.22, -70.98, 42.40],
        buffer_m=1000, crs_candidates=[]))
    manifest = _manifest(tmp_path, "boston", {
        "department": "public_works", "dataset": "requests", "title": "311 requests", "standard": "service_request",
        "source": {"format": "csv", "path": str(realworld / "us_boston_311" / "boston311-100.csv"),
                   "x": "longitude", "y": "latitude", "crs": "EPSG:4326"},
        "fields": {"request_id": "case_enquiry_id", "opened_at": "open_dt", "closed_at": "closed_dt",
                   "status": "case_status", "category": "reason", "channel": "source", "address": "location"},
        "schedule": "0 * * * *"})
    register(hub, manifest)
    result = _run(hub, "public_works.requests", "r1")
    assert result.rows_read == 100 and result.rows_published + result.rows_quarantined == 100
    details = _details(hub, "public_works.requests")
    [placeholder] = details["plausibility"]["repeated_positions"]
    assert (placeholder["x"], placeholder["y"], placeholder["rows"]) == (-71.0587, 42.3594, 19)
    assert details["labels"]["status"]["share_mapped"] == 1.0  # Open / Closed are the vocabulary's labels
    channel = details["labels"]["channel"]
    assert channel["unmapped_values"] == {"Self Service": 3} and channel["by_how"]["synonym"] == 97
    category = details["labels"]["category"]
    assert category["mapped"] == sum(category["by_how"].values()) and 0 < category["share_mapped"] < 1
    assert set(details["score"]["parts"]) == {"schema", "labels", "crs", "completeness", "freshness"}
    assert details["freshness"]["cadence_s"] == 3600 and details["score"]["parts"]["freshness"] == 1.0

    queue = json.loads(twinhub(hub, "labels", "review", "--format", "json").output)
    by_value = {(e["field"], e["value"]): e for e in queue}
    assert by_value[("category", "Enforcement & Abandoned Vehicles")]["rows"] == 23
    assert by_value[("category", "Needle Program")]["suggestions"][0]["code"] == "needle_pickup"
    assert sum(e["rows"] for e in queue if e["field"] == "category") == category["unmapped"]

    scored = json.loads(twinhub(hub, "standards", "score", "--format", "json").output)
    [dataset] = scored["datasets"]
    assert dataset["dataset"] == "public_works.requests" and 0 < dataset["score"] < 100
    assert scored["departments"] == [{"department": "public_works", "datasets": 1, "score": dataset["score"]}]
