"""`twinhub retire DATASET --reason TEXT` (twinhub/hub/retire.py): no more runs, out of the city layer and
open exports, history kept, audited; registering the manifest again brings it back."""

from __future__ import annotations

import json
import pathlib

import pytest
from click.testing import CliRunner

from twinhub.catalog.versions import dataset_versions
from twinhub.cli.demo import prepare_demo
from twinhub.cli.main import main
from twinhub.hub.home import Hub
from twinhub.hub.registry import lookup, registered
from twinhub.pipelines.factory import build_definitions
from twinhub.pipelines.runner import run_datasets

RETIRED = "water.pumping_stations"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    """A fresh sample city, run once, of which this module retires one dataset."""
    hub = Hub.open(tmp_path_factory.mktemp("retire") / "home")
    prepare_demo(hub)
    assert run_datasets(hub).ok
    return hub


def _cli(hub: Hub, *args: str):
    return CliRunner().invoke(main, [*args, "--home", str(hub.home)])


def _fetch(hub: Hub, sql: str, params: list | None = None) -> list[tuple]:
    con = hub.lake.connect(read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def dataset_versions_of(hub: Hub) -> int:
    con = hub.lake.connect(read_only=True)
    try:
        return dataset_versions(con, RETIRED)[0]["version"]
    finally:
        con.close()


def _layer_by_dataset(hub: Hub) -> dict[str, int]:
    return dict(_fetch(hub, "SELECT department || '.' || dataset, count(*) FROM lake.city.facility GROUP BY 1"))


def test_retire_stops_runs_rebuilds_the_layer_keeps_history_and_is_audited(hub, tmp_path):
    before = _layer_by_dataset(hub)
    assert before.get(RETIRED), before  # the oracle: it fed the city layer before
    versions = _fetch(hub, "SELECT count(*) FROM catalog.runs WHERE dataset = ?", [RETIRED])[0][0]

    result = _cli(hub, "retire", RETIRED, "--reason", "replaced by the new SCADA feed")
    assert result.exit_code == 0, result.output
    assert "rebuilt city.facility" in result.output

    entry = lookup(hub, RETIRED, include_retired=True)
    assert entry.retired["reason"] == "replaced by the new SCADA feed" and entry.retired["by"] and entry.retired["at"]
    assert RETIRED not in {e.id for e in registered(hub)}

    # no more runs: not in the definitions (assets, schedules, sensors) and `twinhub run` refuses it
    defs = build_definitions(hub)
    keys = {".".join(k.path) for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert not any(k.startswith(RETIRED) for k in keys) and "emergency.shelters" in keys
    graph = defs.resolve_asset_graph()
    scheduled = {".".join(k.path) for s in defs.schedules for k in s.job.selection.resolve(graph)}
    assert scheduled and not any(k.startswith(RETIRED) for k in scheduled)
    assert "landing_water" not in {s.name for s in defs.sensors} and "landing_emergency" in {s.name for s in defs.sensors}
    refused = _cli(hub, "run", RETIRED)
    assert refused.exit_code == 2 and "is retired" in refused.output and "twinhub register" in refused.output

    # the layer it fed was rebuilt at once without it; the others' rows are all there
    after = _layer_by_dataset(hub)
    assert RETIRED not in after and after == {k: v for k, v in before.items() if k != RETIRED}

    # its history stays: its table, versions and runs
    assert _fetch(hub, "SELECT count(*) FROM lake.water.pumping_stations")[0][0] > 0
    con = hub.lake.connect(read_only=True)
    try:
        assert dataset_versions(con, RETIRED)
    finally:
        con.close()
    assert _fetch(hub, "SELECT count(*) FROM catalog.runs WHERE dataset = ?", [RETIRED])[0][0] == versions

    quarantined = _cli(hub, "quarantine", RETIRED, "--format", "json")
    assert quarantined.exit_code == 0 and json.loads(quarantined.output), quarantined.output  # stewards still read it
    as_of = _cli(hub, "query", "SELECT count(*) AS n FROM water.pumping_stations", "--as-of",
                 str(dataset_versions_of(hub)), "--format", "json")
    assert as_of.exit_code == 0 and json.loads(as_of.output)[0]["n"] > 0, as_of.output

    # audited
    audited = _fetch(hub, f"SELECT message, tables FROM {hub.lake.audit_table} WHERE action = 'retire'")
    assert audited and audited[-1][0] == "replaced by the new SCADA feed" and RETIRED in audited[-1][1]

    # `twinhub datasets` lists it as retired
    listed = {r["dataset"]: r for r in json.loads(_cli(hub, "datasets", "--format", "json").output)}
    assert listed[RETIRED]["last_run"].startswith("retired") and listed["emergency.shelters"]["last_run"] == "published"

    # open exports leave it out, the others stay
    out = tmp_path / "open"
    exported = _cli(hub, "export-catalog", "--metadata-format", "datapackage", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    names = {r["name"] for r in json.loads((out / "datapackage.json").read_text())["resources"]}
    assert RETIRED not in names and "emergency.shelters" in names

    # retiring it again is refused
    again = _cli(hub, "retire", RETIRED, "--reason", "twice")
    assert again.exit_code == 2 and "already retired" in again.output


def test_a_dataset_a_derived_dataset_reads_is_not_retired(hub):
    result = _cli(hub, "retire", "emergency.shelters", "--reason", "gone")
    assert result.exit_code == 2 and "derived.care_homes_near_shelters reads it" in result.output
    assert lookup(hub, "emergency.shelters").retired is None


def test_registering_again_brings_it_back(hub):
    if lookup(hub, RETIRED, include_retired=True).retired is None:  # this test alone: retire it first
        assert _cli(hub, "retire", RETIRED, "--reason", "test").exit_code == 0
    manifest = pathlib.Path(lookup(hub, RETIRED, include_retired=True).manifest_path)
    result = _cli(hub, "register", str(manifest))
    assert result.exit_code == 0, result.output
    assert lookup(hub, RETIRED).retired is None and RETIRED in {e.id for e in registered(hub)}
    ran = _cli(hub, "run", RETIRED, "--force")
    assert ran.exit_code == 0, ran.output
    assert RETIRED in _layer_by_dataset(hub)
