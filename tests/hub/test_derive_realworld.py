"""A real city's file through derived fields and a filter: Boston's 311 requests (us_boston_311, ODC-BY,
see its SOURCE.txt), where 19 intersection cases sit on a placeholder point at City Hall.

The manifest leaves the placeholder rows out with a filter, builds the category as level 2 of the path
``subject;reason;type`` made by an expression, and a description by another. Oracles: the CSV read with
Python's csv module, and the same file registered with plain column mappings (category: reason).
"""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import yaml

from twinhub.catalog.info import last_published
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup
from twinhub.standards.pack import DEFAULT_PACK

PLACEHOLDER = ("42.3594", "-71.0587")
REASON = "intersection cases sit on a placeholder point at City Hall"
PLAIN = {"request_id": "case_enquiry_id", "opened_at": "open_dt", "closed_at": "closed_dt",
         "status": "case_status", "category": "reason", "channel": "source", "address": "location"}


@pytest.fixture(scope="module")
def boston(tmp_path_factory, realworld):
    root = tmp_path_factory.mktemp("boston")
    pack = root / "pack"
    shutil.copytree(DEFAULT_PACK, pack, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    city = yaml.safe_load((pack / "city.yaml").read_text(encoding="utf-8"))
    city.update(name="Boston", target_crs="EPSG:4326", timezone="America/New_York",
                extent=[-71.20, 42.22, -70.98, 42.40], buffer_m=1000, crs_candidates=[])
    (pack / "city.yaml").write_text(yaml.safe_dump(city, allow_unicode=True), encoding="utf-8")
    hub = Hub.open(root / "home")
    (hub.home / "twinhub.yaml").write_text(yaml.safe_dump(
        {"standards": str(pack), "landing": {"public_works": [str(realworld)]}}), encoding="utf-8")
    hub = Hub.open(hub.home)
    source = {"format": "csv", "path": str(realworld / "us_boston_311" / "boston311-100.csv"),
              "x": "longitude", "y": "latitude", "crs": "EPSG:4326"}
    derived = {**PLAIN,
               "category": {"expression": "concat_ws(';', subject, reason, type)", "separator": ";", "level": 2},
               "description": {"expression": "case_title || ' (' || queue || ')'"}}
    for name, fields, extra in (("plain", PLAIN, {}), ("derived", derived, {"filter": [
            {"keep": f"NOT (latitude = '{PLACEHOLDER[0]}' AND longitude = '{PLACEHOLDER[1]}')", "reason": REASON}]})):
        manifest = {"department": "public_works", "dataset": name, "title": f"311 requests ({name})",
                    "standard": "service_request", "source": source, "fields": fields, **extra}
        path = root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
        register(hub, path)
        ingest(hub, lookup(hub, f"public_works.{name}"), run_id=f"{name}-1")
    with (realworld / "us_boston_311" / "boston311-100.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return hub, rows


def _published(hub: Hub, table: str) -> dict[str, tuple]:
    con = hub.lake.connect(read_only=True)
    try:
        return {r[0]: r[1:] for r in con.execute(f"SELECT request_id, category, description FROM {table}").fetchall()}
    finally:
        con.close()


@pytest.mark.slow
def test_the_placeholder_rows_are_filtered_and_every_row_is_accounted_for(boston):
    hub, rows = boston
    placeholder = [i + 1 for i, r in enumerate(rows) if (r["latitude"], r["longitude"]) == PLACEHOLDER]
    assert len(placeholder) == 19
    run = last_published(hub.lake, "public_works.derived")
    assert (run["rows_read"], run["rows_filtered"]) == (len(rows), len(placeholder))
    assert run["rows_read"] == run["rows_published"] + run["rows_quarantined"] + run["rows_filtered"]
    details = json.loads(run["details"])
    assert details["filter"]["by_reason"] == {REASON: len(placeholder)}
    ranges = details["filter"]["source_rows"][REASON]
    assert [n for first, last in ranges for n in range(first, last + 1)] == placeholder
    assert details["plausibility"]["repeated_positions"] == []  # the plain run reports the placeholder
    plain = json.loads(last_published(hub.lake, "public_works.plain")["details"])
    assert plain["plausibility"]["repeated_positions"][0]["rows"] == len(placeholder)


@pytest.mark.slow
def test_category_from_a_level_of_an_expression_matches_the_plain_mapping(boston):
    hub, rows = boston
    assert not any(";" in r["subject"] for r in rows)  # so level 2 of subject;reason;type is the reason
    plain, derived = _published(hub, "public_works.plain"), _published(hub, "public_works.derived")
    filtered = {r["case_enquiry_id"] for r in rows if (r["latitude"], r["longitude"]) == PLACEHOLDER}
    assert set(derived) == set(plain) - filtered and filtered & set(plain)  # the same rows publish, but those
    common = set(derived)
    assert len(common) >= 20
    assert {k: derived[k][0] for k in common} == {k: plain[k][0] for k in common}
    by_id = {r["case_enquiry_id"]: r for r in rows}
    for request_id in common:
        row = by_id[request_id]
        assert derived[request_id][1] == f"{row['case_title']} ({row['queue']})".strip()
