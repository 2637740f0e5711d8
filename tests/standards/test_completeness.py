"""Suspected truncation (issue 16, item 5): twinhub/hub/completeness.py through real runs.

Known truths: a bus-stop export capped at exactly 900 stops in each of 8 districts; an export of exactly
1000 rows; a district's export 5 % the size of the city's other bus-stop datasets. Each is flagged in the
Dagster audit (a WARN check, the dataset still publishes), the run's details, the release notes and the
score. Honest exports of varied sizes, and the sample city, are not flagged.
"""

from __future__ import annotations

import json
import pathlib

import dagster as dg
import pytest
import yaml

from twinhub.cli.demo import prepare_demo
from twinhub.hub import completeness, review
from twinhub.hub.audit import audit_stage
from twinhub.hub.home import Hub
from twinhub.hub.ingest import publish_stage, stage_dataset
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup
from twinhub.pipelines.datasets import published_key, staged_key
from twinhub.pipelines.runner import run_datasets
from twinhub.standards import score

# district as written -> its admin_division code; 8 of Shanghai's districts
DISTRICTS = {"黄浦区": "310101", "徐汇区": "310104", "长宁区": "310105", "静安区": "310106",
             "普陀区": "310107", "虹口区": "310109", "杨浦区": "310110", "浦东新区": "310115"}
CAPPED = [900] * 8  # an API export that stops at 900 stops per district
HONEST = [903, 871, 655, 1210, 402, 388, 977, 514]  # what a city's districts really have: no shared round top
THOUSAND = [137, 129, 118, 101, 133, 127, 126, 129]  # 1000 in all, no group capped
SMALL = [13, 12, 12, 13, 12, 13, 12, 13]  # 100 stops: 5 % of the median of 1900 and 2100
PEERS = {"north": [238, 237, 237, 238, 237, 238, 237, 238], "south": [262, 263, 262, 263, 262, 263, 262, 263]}


def _stops(path: pathlib.Path, per_district: list[int], prefix: str) -> None:
    """A CSV of bus stops, ``per_district[i]`` in the i-th district, at distinct points in central Shanghai."""
    lines = ["站点编号,站点名称,方式,所属区,经度,纬度"]
    n = 0
    for district, count in zip(DISTRICTS, per_district):
        for _ in range(count):
            lines.append(f"{prefix}{n:05d},站{n},公交,{district},{121.40 + (n % 100) * 0.001:.4f},"
                         f"{31.15 + (n // 100) * 0.001:.4f}")
            n += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _hub(tmp_path: pathlib.Path) -> Hub:
    landing = tmp_path / "landing"
    landing.mkdir()
    hub = Hub.open(tmp_path / "home")
    (hub.home / "twinhub.yaml").write_text(yaml.safe_dump({"landing": {"transport": [str(landing)]}}),
                                           encoding="utf-8")
    return Hub.open(hub.home)


def _register(hub: Hub, tmp_path: pathlib.Path, dataset: str, per_district: list[int], **extra) -> str:
    source = tmp_path / "landing" / f"{dataset}.csv"
    _stops(source, per_district, prefix=dataset[:3].upper())
    manifest = tmp_path / f"{dataset}.yaml"
    manifest.write_text(yaml.safe_dump({
        "department": "transport", "dataset": dataset, "title": f"Bus stops ({dataset})", "standard": "transit_stop",
        "source": {"format": "csv", "path": str(source), "x": "经度", "y": "纬度", "crs": "EPSG:4326"},
        "fields": {"stop_id": "站点编号", "name": "站点名称", "mode": "方式", "district": "所属区"}, **extra,
    }, allow_unicode=True), encoding="utf-8")
    register(hub, manifest)
    return f"transport.{dataset}"


def _run(hub: Hub, dataset: str) -> tuple[dict, dict]:
    """Stage, audit and publish as the Dagster op does; the completeness audit's facts and the run's details."""
    entry = lookup(hub, dataset)
    staged = stage_dataset(hub, entry, run_id=f"run-{dataset}")
    audits = {a.name: a for a in audit_stage(staged.stage, entry.manifest.quality, None)}
    assert not audits["completeness"].blocking
    publish_stage(hub, entry, run_id=f"run-{dataset}")
    return audits["completeness"], _details(hub, dataset)


def _details(hub: Hub, dataset: str) -> dict:
    con = hub.lake.connect(read_only=True)
    try:
        row = con.execute("SELECT details FROM catalog.runs WHERE dataset = ? AND status = 'published' "
                          "ORDER BY finished_at DESC LIMIT 1", [dataset]).fetchone()
        notes = con.execute("SELECT summary, notes FROM catalog.release_notes WHERE dataset = ?", [dataset]).fetchone()
    finally:
        con.close()
    return {**json.loads(row[0]), "release_notes": (notes[0], json.loads(notes[1]))}


@pytest.mark.parametrize(("n", "capped"), [
    (900, True), (1000, True), (65535, True), (1048576, True), (100, True), (4096, True),
    (937, False), (99, False), (40, False), (1001, False), (65534, False),
])
def test_round_caps(n, capped):
    assert completeness.round_cap(n) is capped


@pytest.mark.slow
def test_totals_and_far_smaller_exports_are_flagged_and_honest_ones_are_not(tmp_path):
    hub = _hub(tmp_path)
    ids = {name: _register(hub, tmp_path, name, counts) for name, counts in
           [("north", PEERS["north"]), ("south", PEERS["south"]), ("honest", HONEST), ("thousand", THOUSAND),
            ("small", SMALL)]}
    results = {name: _run(hub, i) for name, i in ids.items()}

    for name in ("north", "south", "honest"):  # 1900, 2100 and 5920 stops of varied districts
        audit, details = results[name]
        assert audit.passed and audit.facts["signs"] == [], name
        assert details["truncation"]["suspected"] is False and "notes" not in details["score"]
        assert "suspected truncation" not in details["release_notes"][0]

    audit, details = results["thousand"]
    assert not audit.passed and audit.facts["signs"] == ["total_cap"]
    assert details["truncation"]["findings"][0]["rows"] == 1000
    assert "suspected truncation: the source has exactly 1000 rows" in details["release_notes"][0]

    audit, details = results["small"]
    assert not audit.passed and audit.facts["signs"] == ["far_smaller"]
    finding = details["truncation"]["findings"][0]
    assert (finding["rows"], finding["peers"], finding["share_of_median"]) == (100, 4, pytest.approx(100 / 2000))
    assert details["release_notes"][1]["suspected_truncation"] == [finding["message"]]


@pytest.mark.slow
def test_a_capped_protected_column_is_flagged_without_its_values(tmp_path):
    hub = _hub(tmp_path)
    dataset = _register(hub, tmp_path, "hidden", CAPPED, columns={"district": {"classification": "sensitive"}})
    review.approve(hub, dataset, "test: reviewed")  # a sensitive column waits for a steward
    audit, details = _run(hub, dataset)
    assert not audit.passed
    (finding,) = audit.facts["findings"]
    assert (finding["column"], finding["cap"], finding["groups_at_cap"], finding["groups"]) == ("district", 900, 8, [])
    text = json.dumps([audit.facts, details["truncation"], details["release_notes"]], ensure_ascii=False)
    assert "values not shown" in text and not any(code in text for code in DISTRICTS.values())


@pytest.mark.slow
def test_an_export_capped_per_district_is_a_warning_in_dagster_and_the_sample_city_is_not(tmp_path):
    hub = _hub(tmp_path)
    prepare_demo(hub)
    capped = _register(hub, tmp_path, "bus_stops", CAPPED)
    summary = run_datasets(hub)
    assert summary.ok  # a warning: every dataset published, the capped one included

    entry = lookup(hub, capped)
    with dg.DagsterInstance.from_config(str(hub.dagster_home)) as instance:
        checks = {}
        for e in [entry, *(lookup(hub, m) for m in ("emergency.shelters", "water.pumping_stations",
                                                   "civil_affairs.elderly_care", "health.health_centres"))]:
            record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
                [dg.AssetCheckKey(staged_key(e), "completeness")])
            checks[e.id] = next(iter(record.values())).evaluation
        published = instance.get_latest_materialization_event(published_key(entry))
    assert published.asset_materialization.metadata["rows_published"].value == 7200

    flagged = checks.pop(capped)
    assert not flagged.passed and flagged.severity == dg.AssetCheckSeverity.WARN
    findings = flagged.metadata["findings"].value
    assert [(f["sign"], f["column"], f["cap"]) for f in findings] == [("group_cap", "district", 900)]
    assert findings[0]["groups"] == sorted(DISTRICTS.values())  # the 8 capped districts, named
    assert all(e.passed for e in checks.values()), checks  # the sample city: no flags

    details = _details(hub, capped)
    assert details["truncation"]["suspected"] and details["score"]["notes"] == [score.TRUNCATION_NOTE]
    assert details["score"]["parts"]["completeness"] == pytest.approx(score.TRUNCATION_FACTOR)
    assert "8 of 8 district groups have exactly 900 rows" in details["release_notes"][0]
    for dataset in checks:
        assert _details(hub, dataset)["truncation"]["suspected"] is False
