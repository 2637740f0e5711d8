"""`twinhub export DATASET --as CONSUMER`: the query rule applied to a file, refusals audited."""

from __future__ import annotations

import csv
import io

import pytest
from click.testing import CliRunner

from twinhub import sample
from twinhub.catalog.query import run_query
from twinhub.cli.main import main
from twinhub.hub import review
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup

from .access_hub import contacts_manifest

CONTACTS = "health.care_contacts"
COLUMNS = {  # sensitive, not restricted: a sensitive dataset may be exported to a consumer
    "address": {"classification": "sensitive", "protect": "mask"},
    "facility_id": {"classification": "sensitive", "protect": "pseudonymize"},
    "capacity": {"classification": "sensitive", "protect": "none"},
}


pytestmark = pytest.mark.usefixtures("pseudonym_key")  # tests/governance/conftest.py


@pytest.fixture(scope="module")
def hub(tmp_path_factory, pseudonym_key) -> Hub:
    root = tmp_path_factory.mktemp("export_as")
    hub = Hub.open(root / "home")
    entry, _ = register(hub, sample.CITY / "water/pumping_stations.yaml")
    ingest(hub, lookup(hub, entry.id), run_id="first-water")
    register(hub, contacts_manifest(root / "contacts", columns=COLUMNS))
    review.approve(hub, CONTACTS, "test")
    ingest(hub, lookup(hub, CONTACTS), run_id="first-contacts")
    return hub


def export(hub: Hub, tmp_path, consumer: str, dataset: str = CONTACTS):
    out = tmp_path / f"{consumer.replace(':', '_')}.csv"
    result = CliRunner().invoke(main, ["--home", str(hub.home), "export", dataset, "--file-format", "csv", "--out", str(out),
                                       "--as", consumer], env={"TWINHUB_USER": "stella"})
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))) if out.exists() else None
    return result, rows


def last_export(hub: Hub) -> tuple:
    return run_query(hub.lake, "SELECT status, consumer, department, message FROM catalog.audit "
                               "WHERE action = 'export' ORDER BY happened_at DESC LIMIT 1").rows[0]


def test_without_a_grant_the_export_is_refused_and_audited(hub, tmp_path):
    result, rows = export(hub, tmp_path, "water")
    assert result.exit_code == 2 and rows is None
    assert result.output.startswith(f"error: water may not read {CONTACTS} (sensitive): water has no grant")
    status, consumer, department, message = last_export(hub)
    assert (status, consumer, department) == ("refused", "water", "water") and "has no grant" in message


def test_below_the_columns_tier_they_are_masked_pseudonymized_or_left_out(hub, tmp_path):
    add = CliRunner().invoke(main, ["--home", str(hub.home), "grants", "add", "user:alice", CONTACTS,
                                    "--until", "2099-12-31"])
    assert add.exit_code == 0, add.output
    result, rows = export(hub, tmp_path, "user:alice")
    assert result.exit_code == 0, result.output
    assert ("classified sensitive; left out: capacity; masked or pseudonymized: address, facility_id"
            in result.output)
    assert "capacity" not in rows[0]  # protect: none: withheld
    assert all(r["facility_id"].startswith("p_") and len(r["facility_id"]) == 26 for r in rows)
    assert all("*" in r["address"] for r in rows if r["address"])
    _, owner_rows = export(hub, tmp_path, "health")  # the owning department has it in clear
    assert {r["facility_id"] for r in owner_rows} & {r["facility_id"] for r in rows} == set()
    assert "*" not in owner_rows[0]["address"] and owner_rows[0]["capacity"] != ""
    assert last_export(hub)[:2] == ("ok", "health")


def test_a_public_dataset_needs_no_grant_and_an_unknown_consumer_is_refused(hub, tmp_path):
    result, rows = export(hub, tmp_path, "health", "water.pumping_stations")
    assert result.exit_code == 0 and len(rows) == 13
    result, rows = export(hub, tmp_path, "sewer", "water.pumping_stations")
    assert result.exit_code == 2 and "unknown consumer 'sewer'" in result.output and rows is None
    assert last_export(hub)[0] == "refused"


def near(hub: Hub, consumer: str) -> list[dict]:
    import json

    x, y = run_query(hub.lake, f"SELECT ST_X(geometry), ST_Y(geometry) FROM {CONTACTS} "
                               "WHERE geometry IS NOT NULL ORDER BY facility_id LIMIT 1").rows[0]
    result = CliRunner().invoke(main, ["--home", str(hub.home), "catalog", "near", str(x), str(y), "--radius", "20",
                                       "--format", "json", "--as", consumer])
    assert result.exit_code == 0, result.output
    return [f for f in json.loads(result.output) if f["dataset"] == CONTACTS]


def test_near_as_a_consumer_shows_only_what_it_may_read(hub):
    assert near(hub, "water") == []  # no grant: the dataset is left out of the search
    [seen] = near(hub, "user:alice")  # an internal grant (given above): protected columns protected
    assert seen["facility_id"].startswith("p_") and "capacity" not in seen and "*" in seen["address"]
    [own] = near(hub, "health")
    assert not own["facility_id"].startswith("p_") and "capacity" in own
    status, consumer = run_query(hub.lake, "SELECT status, consumer FROM catalog.audit WHERE action = 'near' "
                                           "ORDER BY happened_at DESC LIMIT 1").rows[0]
    assert (status, consumer) == ("ok", "health")
