"""Attack (issue 15, finding 8): the staging asset's check metadata (``failing_rows_sample``) carried raw
restricted values into Dagster's database and UI. Run the real asset checks in-process and read what
Dagster stored."""

from __future__ import annotations

import json

import dagster as dg

from twinhub.hub.home import Hub
from twinhub.hub.redact import redact_sample
from twinhub.pipelines.runner import run_datasets

from .governance_city import activate, resident_id, rows, write

SECRET_ID = resident_id("310104", "19520403", "589")


def test_check_metadata_is_redacted_by_column_tier(hub: Hub, tmp_path):
    # opened_at of row 3 cannot be read as a time: its raw value (an ID number) is the failing row's value
    data = rows(12, opened=lambda i: f"身份证{SECRET_ID}" if i == 3 else "2024-05-01 10:00")
    activate(hub, write(tmp_path, "cases", data, classification="restricted",
                        columns={"category": {"classification": "internal"}}))
    assert run_datasets(hub, ["hotline.cases"]).ok
    key = dg.AssetKey(["hotline", "cases_staged"])
    with dg.DagsterInstance.from_config(str(hub.dagster_home)) as instance:
        records = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(key, "schema")])
        metadata = next(iter(records.values())).evaluation.metadata
        published = instance.get_latest_materialization_event(dg.AssetKey(["hotline", "cases"]))
        preview = published.asset_materialization.metadata["map_preview"].value
    assert "data:image/png" not in preview and preview == "map preview withheld: the locations are restricted"
    sample = metadata["failing_rows_sample"].value
    stored = json.dumps(sample, ensure_ascii=False)
    assert SECRET_ID not in stored and SECRET_ID[6:14] not in stored
    reason = next(r for row in sample for r in row["reasons"] if r["column"] == "opened_at")
    assert reason["value"] == "[redacted: restricted]"


def test_redaction_follows_the_columns_tier_and_the_scan():
    privacy = {"classification": "sensitive", "columns": {
        "category": {"classification": "internal"}, "description": {"classification": "sensitive"}}}
    sample = [{"source_row": 1, "reasons": [
        {"check": "label_unmapped", "column": "category", "value": "路灯", "message": "'路灯' has no code"},
        {"check": "type", "column": "description", "value": "13812345678", "message": "'13812345678' too long"},
        {"check": "duplicate_key", "column": "category, description", "value": "路灯, 13812345678",
         "message": "category, description '路灯, 13812345678' appears in 2 rows"},
        {"check": "required", "column": "经度", "value": "121.4", "message": "x is missing"}]}]
    seen = [(r["value"], r["message"]) for r in redact_sample(sample, privacy)[0]["reasons"]]
    assert seen == [("路灯", "'路灯' has no code"),  # internal: as the source wrote it
                    ("[redacted: sensitive]", "'[redacted: sensitive]' too long"),
                    ("[redacted: sensitive]", "category, description '[redacted: sensitive]' appears in 2 rows"),
                    ("[redacted: sensitive]", "x is missing")]  # a source column: the dataset's tier
