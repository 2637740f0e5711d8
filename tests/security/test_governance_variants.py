"""Attacks on the public variant (issue 15, findings 3 and 10), performed for real through register and ingest.

- a restricted ID column aggregated with min_count 1 (every ID as a public row) is refused at register,
  each key by name; registered before the rule (a registry entry written directly), it publishes nothing;
- a grid variant publishes only the columns its manifest lists, and only open ones;
- a dataset whose tier the scan raised has its variant withheld until a steward acknowledges it;
- the city's min_count floor comes from city.yaml.
"""

from __future__ import annotations

import json
import types

import pytest
import yaml

from twinhub.hub import review
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.manifest import ManifestError
from twinhub.hub.protection import PublicVariant, variant_floor, variant_problems
from twinhub.hub.registration import register
from twinhub.hub.registry import META_KEY, entry_path, lookup, write_entry

from .governance_city import activate, query, rows, tables, write

RESTRICTED_IDS = {"classification": "restricted", "columns": {"request_id": {"classification": "restricted"}}}


def test_aggregating_a_restricted_id_with_min_count_1_is_refused_by_key(hub: Hub, tmp_path):
    path = write(tmp_path, "ids", rows(12), **RESTRICTED_IDS,
                 public_variant={"aggregate": "request_id", "min_count": 1})
    with pytest.raises(ManifestError) as refused:
        register(hub, path)
    problems = refused.value.problems
    assert problems["public_variant.aggregate"].startswith("'request_id' is restricted")
    assert problems["public_variant.min_count"].startswith("1 is below the city's floor of 5")
    assert review.pending(hub) == [] and not entry_path(hub, "hotline.ids").exists()


def test_a_variant_registered_before_the_rule_publishes_nothing(hub: Hub, tmp_path):
    """The registry entry holds the hostile variant (as a hub before this rule accepted it): the publish
    itself refuses to aggregate a restricted column, and the dataset is still published."""
    path = write(tmp_path, "ids", rows(12), **RESTRICTED_IDS)
    activate(hub, path)
    data = yaml.safe_load(entry_path(hub, "hotline.ids").read_text(encoding="utf-8"))
    data["public_variant"] = {"aggregate": "request_id", "min_count": 1}
    write_entry(entry_path(hub, "hotline.ids"), {**data, META_KEY: data.get(META_KEY, {})})
    assert lookup(hub, "hotline.ids").manifest.public_variant.aggregate == "request_id"

    ingest(hub, lookup(hub, "hotline.ids"), run_id="one")
    assert "hotline.ids" in tables(hub) and "hotline.ids_public" not in tables(hub)
    assert query(hub, "SELECT count(*) FROM catalog.datasets WHERE dataset = 'hotline.ids_public'") == [(0,)]
    details = json.loads(query(hub, "SELECT details FROM catalog.runs WHERE dataset = 'hotline.ids'")[0][0])
    assert "public_variant.aggregate: request_id is restricted" in details["public_variant"]["withheld"]


def test_a_grid_variant_publishes_only_listed_open_columns(hub: Hub, tmp_path):
    listed = {"grid_m": 500, "columns": ["status", "address"]}
    with pytest.raises(ManifestError) as refused:
        register(hub, write(tmp_path / "a", "requests", rows(8), columns={"address": {"classification": "sensitive"}},
                            public_variant=listed))
    assert refused.value.problems == {"public_variant.columns.address": (
        "is sensitive; a public variant publishes only public or internal columns without personal data")}

    ingest(hub, activate(hub, write(tmp_path / "b", "requests", rows(8), public_variant={"grid_m": 500,
                                                                                        "columns": ["status"]})),
           run_id="one")
    names = [n for (n,) in query(hub, "SELECT name FROM catalog.columns WHERE dataset = 'hotline.requests_public' "
                                      "ORDER BY position")]
    assert sorted(names) == ["geometry", "status"]  # request_id, category, district: internal but not listed
    assert query(hub, "SELECT count(*) FROM hotline.requests_public") == [(8,)]


def test_a_scan_raised_dataset_keeps_its_variant_withheld_until_acknowledged(hub: Hub, tmp_path):
    phones = rows(12, description=lambda i: f"市民来电1381234{i:04d}" if i % 2 else "路灯不亮")
    entry = activate(hub, write(tmp_path, "calls", phones, public_variant={"grid_m": 500, "columns": ["status"]}))
    ingest(hub, entry, run_id="one")
    assert query(hub, "SELECT classification FROM catalog.datasets WHERE dataset = 'hotline.calls'") == [
        ("sensitive",)]
    assert "hotline.calls_public" not in tables(hub)  # raised by the scan: withheld
    listed = review.raised(hub, "hotline.calls")
    assert listed is not None and "description mobile" in listed.why

    ingest(hub, entry, run_id="two", force=True)  # nobody acknowledged: still withheld
    assert "hotline.calls_public" not in tables(hub)
    review.acknowledge(hub, "hotline.calls", "seen: hotline declares the column next week")
    ingest(hub, entry, run_id="three", force=True)
    assert query(hub, "SELECT count(*) FROM hotline.calls_public") == [(12,)]
    assert {n for (n,) in query(hub, "SELECT name FROM catalog.columns WHERE dataset = 'hotline.calls_public'")} == {
        "geometry", "status"}


def test_the_citys_floor_comes_from_city_yaml(tmp_path):
    (tmp_path / "city.yaml").write_text("name: x\npublic_variant_min_count: 10\n", encoding="utf-8")
    pack = types.SimpleNamespace(root=tmp_path)
    assert variant_floor(pack) == 10 and variant_floor(types.SimpleNamespace(root=tmp_path / "none")) == 5
    standard = types.SimpleNamespace(name="service_request", field_names=["request_id", "district"],
                                     geometry_field=None)
    problems = variant_problems(PublicVariant(aggregate="district", min_count=5), {}, standard, "internal", 10)
    assert problems == {"public_variant.min_count": "5 is below the city's floor of 10: smaller groups single "
                                                    "people out; use min_count: 10 or more"}


def test_a_rollback_does_not_bring_back_what_is_protected_now(hub: Hub, tmp_path):
    """status is graded sensitive after a variant published it: rolling back to that version keeps status
    sensitive and serves no variant (it would publish status again)."""
    from twinhub.catalog.versions import dataset_versions, rollback

    variant = {"grid_m": 500, "columns": ["status"]}
    ingest(hub, activate(hub, write(tmp_path / "a", "requests", rows(8), public_variant=variant)), run_id="open")
    assert "status" in [n for (n,) in query(hub, "SELECT name FROM catalog.columns "
                                                 "WHERE dataset = 'hotline.requests_public'")]
    graded = write(tmp_path / "b", "requests", rows(8), public_variant={"grid_m": 500},
                   columns={"status": {"classification": "sensitive"}})
    ingest(hub, activate(hub, graded, reason="status reveals case outcomes"), run_id="graded")
    assert "status" not in [n for (n,) in query(hub, "SELECT name FROM catalog.columns "
                                                     "WHERE dataset = 'hotline.requests_public'")]
    con = hub.lake.connect(read_only=True)
    try:
        versions = {v["run_id"]: v["version"] for v in dataset_versions(con, "hotline.requests")}
    finally:
        con.close()

    rollback(hub.lake, "hotline.requests", versions["open"], run_id="back")
    assert "hotline.requests_public" not in tables(hub)
    assert query(hub, "SELECT count(*) FROM catalog.datasets WHERE dataset = 'hotline.requests_public'") == [(0,)]
    assert query(hub, "SELECT classification FROM catalog.columns WHERE dataset = 'hotline.requests' "
                      "AND name = 'status'") == [("sensitive",)]
    assert query(hub, "SELECT classification FROM catalog.datasets WHERE dataset = 'hotline.requests'") == [
        ("sensitive",)]
    assert query(hub, "SELECT count(*) FROM hotline.requests") == [(8,)]
