"""A department proposes a vocabulary code, a steward decides, the next vocabulary version carries it (issue 16 item 7).

Driven through the CLI as the department and the steward would; the hub's pack is the shipped one, never
copied or edited: the accepted code lives in the hub home's overlay (<home>/vocabularies/).
"""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

from twinhub.catalog import audit
from twinhub.catalog.query import run_query
from twinhub.cli.main import main
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.registry import lookup
from twinhub.standards.pack import DEFAULT_PACK, load_pack

ME = audit.current_actor()
STOPS = [("T1", "外滩观光隧道浦西站", "缆车轨道", 121.4903, 31.2410), ("T2", "外滩观光隧道浦东站", "缆车轨道", 121.4975, 31.2406),
         ("T3", "陆家嘴站", "地铁", 121.5015, 31.2380)]


def cli(hub: Hub, *args: str):
    return CliRunner().invoke(main, ["--home", str(hub.home), *args], catch_exceptions=False)


def transport_hub(tmp_path: pathlib.Path, stewards: list[str] | None = None) -> Hub:
    """A hub where this account speaks for transport (and is its steward unless ``stewards`` says otherwise)."""
    landing = tmp_path / "landing"
    landing.mkdir(exist_ok=True)
    hub = Hub.open(tmp_path / "home")
    governance: dict = {"departments": {"transport": [ME], "water": ["someone_else"]}}
    if stewards is not None:
        governance["stewards"] = stewards
    (hub.home / "twinhub.yaml").write_text(yaml.safe_dump({"landing": {"transport": [str(landing)]},
                                                           "governance": governance}), encoding="utf-8")
    return Hub.open(hub.home)


def stops_manifest(tmp_path: pathlib.Path, labels: dict | None = None) -> pathlib.Path:
    landing = tmp_path / "landing"
    lines = ["站点编号,站点名称,方式,经度,纬度"] + [",".join(map(str, s)) for s in STOPS]
    (landing / "tunnel_stops.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = tmp_path / "stops.yaml"
    path.write_text(yaml.safe_dump({
        "department": "transport", "dataset": "tunnel_stops", "title": "Sightseeing tunnel stops",
        "standard": "transit_stop", "labels": labels or {},
        "source": {"format": "csv", "path": str(landing / "tunnel_stops.csv"), "x": "经度", "y": "纬度", "crs": "EPSG:4326"},
        "fields": {"stop_id": "站点编号", "name": "站点名称", "mode": "方式"}}, allow_unicode=True), encoding="utf-8")
    return path


PROPOSE = ("review", "propose-code", "transit_mode", "cable_tram", "--department", "transport",
           "--label", "en=Cable tram", "--label", "zh=缆车轨道", "--synonym", "观光隧道",
           "--reason", "the Bund sightseeing tunnel runs cable cars")


@pytest.mark.slow
def test_a_proposed_code_is_usable_only_once_a_steward_accepts_it(tmp_path):
    hub = transport_hub(tmp_path)
    manifest = stops_manifest(tmp_path, labels={"mode": {"缆车轨道": "cable_tram"}})
    before = cli(hub, "register", str(manifest))
    assert before.exit_code == 2 and "'cable_tram' is not a code of vocabulary transit_mode" in before.output

    proposed = cli(hub, *PROPOSE)
    assert proposed.exit_code == 0, proposed.output
    listed = cli(hub, "review", "list", "--format", "json")
    (row,) = [r for r in json.loads(listed.output) if r["kind"] == "code"]
    assert row["dataset"] == "code:transit_mode.cable_tram" and row["submitted_by"] == ME
    pending = cli(hub, "register", str(manifest))  # pending is not usable either
    assert pending.exit_code == 2 and "'cable_tram' is not a code of vocabulary transit_mode" in pending.output
    assert f"(proposed by {ME} for transport, waiting for a steward: twinhub review show code:transit_mode.cable_tram)" \
        in pending.output
    assert cli(hub, "standards", "vocabulary", "transit_mode", "--format", "json").output.count("cable_tram") == 0

    accepted = cli(hub, "review", "approve", "code:transit_mode.cable_tram", "--reason", "a real mode of ours")
    assert accepted.exit_code == 0, accepted.output
    assert "accepted cable_tram into transit_mode 1.1.0" in accepted.output

    # the next version of the vocabulary, from the hub's overlay: the shipped pack is untouched
    assert "cable_tram" not in (DEFAULT_PACK / "vocabularies" / "transit_mode.yaml").read_text(encoding="utf-8")
    assert load_pack().vocabulary("transit_mode").version == "1.0.0"
    listing = cli(hub, "standards", "list").output
    assert any(line.split()[:2] == ["transit_mode", "1.1.0"] for line in listing.splitlines())
    shown = json.loads(cli(hub, "standards", "vocabulary", "transit_mode", "--format", "json").output)
    (code,) = [c for c in shown if c["code"] == "cable_tram"]
    assert code["labels"] == "Cable tram / 缆车轨道" and code["origin"].startswith(f"accepted by {ME} at ")
    assert "for transport" in code["origin"]

    registered = cli(hub, "register", str(manifest))
    assert registered.exit_code == 0, registered.output
    run = ingest(Hub.open(hub.home), lookup(Hub.open(hub.home), "transport.tunnel_stops"), run_id="r1")
    assert (run.rows_read, run.rows_published, run.rows_quarantined) == (3, 3, 0)
    rows = run_query(hub.lake, "SELECT stop_id, mode FROM transport.tunnel_stops ORDER BY 1").rows
    assert [tuple(r) for r in rows] == [("T1", "cable_tram"), ("T2", "cable_tram"), ("T3", "metro")]

    history = json.loads(cli(hub, "review", "codes", "--format", "json").output)
    assert [(h["decision"], h["by"], h["department"]) for h in history] == [
        ("proposed", ME, "transport"), ("accepted", ME, "transport")]
    assert history[1]["version"] == "1.1.0" and history[1]["reason"] == "a real mode of ours"
    actions = run_query(hub.lake, "SELECT action, actor, statement FROM catalog.audit WHERE action LIKE 'review-%' "
                                  "ORDER BY happened_at").rows
    assert [tuple(a[:2]) for a in actions][-2:] == [("review-proposed", ME), ("review-accepted", ME)]
    assert "code:transit_mode.cable_tram" in actions[-1][2]


def test_the_label_of_an_accepted_code_maps_without_labels_and_a_second_code_bumps_again(tmp_path):
    hub = transport_hub(tmp_path)
    assert cli(hub, *PROPOSE).exit_code == 0
    assert cli(hub, "review", "approve", "code:transit_mode.cable_tram", "--reason", "ok").exit_code == 0
    from twinhub.standards.labels import lookup_table, normalize

    table = lookup_table(Hub.open(hub.home).pack.vocabulary("transit_mode"))
    assert table[normalize("缆车轨道")] == "cable_tram" and table[normalize("观光隧道")] == "cable_tram"
    second = cli(hub, "review", "propose-code", "transit_mode", "autonomous_shuttle", "--department", "transport",
                 "--label", "zh=自动驾驶接驳车", "--broader", "bus", "--reason", "Lingang pilot")
    assert second.exit_code == 0, second.output
    assert "1.2.0" in cli(hub, "review", "approve", "code:transit_mode.autonomous_shuttle", "--reason", "ok").output
    vocabulary = Hub.open(hub.home).pack.vocabulary("transit_mode")
    assert vocabulary.version == "1.2.0" and vocabulary.concept("autonomous_shuttle").broader == "bus"


def test_a_rejected_code_is_not_usable_and_its_decision_is_audited(tmp_path):
    hub = transport_hub(tmp_path)
    assert cli(hub, *PROPOSE).exit_code == 0
    rejected = cli(hub, "review", "reject", "code:transit_mode.cable_tram", "--reason", "it is a cable car: use cable_car")
    assert rejected.exit_code == 0, rejected.output
    assert not (hub.home / "vocabularies" / "transit_mode.yaml").exists()
    assert Hub.open(hub.home).pack.vocabulary("transit_mode").concept("cable_tram") is None
    refused = cli(hub, "register", str(stops_manifest(tmp_path, labels={"mode": {"缆车轨道": "cable_tram"}})))
    assert refused.exit_code == 2 and "'cable_tram' is not a code of vocabulary transit_mode" in refused.output
    history = json.loads(cli(hub, "review", "codes", "--format", "json").output)
    assert [(h["decision"], h["reason"]) for h in history][-1] == ("rejected", "it is a cable car: use cable_car")
    again = cli(hub, "review", "approve", "code:transit_mode.cable_tram", "--reason", "changed my mind")
    assert again.exit_code == 2 and "no pending code proposal" in again.output


@pytest.mark.slow
def test_two_stewards_accepting_at_once_lose_no_code(tmp_path):
    """Four `twinhub review approve` processes started together: each acceptance sees the one before."""
    hub = transport_hub(tmp_path)
    codes = ["funicular", "monorail", "water_taxi", "airport_shuttle"]
    for code in codes:
        result = cli(hub, "review", "propose-code", "transit_mode", code, "--department", "transport",
                     "--label", f"en={code.replace('_', ' ').title()}", "--reason", "ours")
        assert result.exit_code == 0, result.output
    approvals = [subprocess.Popen([sys.executable, "-m", "twinhub", "--home", str(hub.home), "review", "approve",
                                   f"code:transit_mode.{code}", "--reason", "accepted in parallel"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for code in codes]
    outputs = [process.communicate(timeout=300)[0] for process in approvals]
    assert [process.returncode for process in approvals] == [0, 0, 0, 0], outputs
    versions = [re.search(r"into transit_mode (\d+\.\d+\.\d+)", out).group(1) for out in outputs]
    assert sorted(versions) == ["1.1.0", "1.2.0", "1.3.0", "1.4.0"]  # each acceptance saw the one before
    vocabulary = Hub.open(hub.home).pack.vocabulary("transit_mode")
    assert vocabulary.version == "1.4.0" and all(vocabulary.concept(c) is not None for c in codes)
