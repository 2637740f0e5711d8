"""`twinhub rollback DATASET vN` rebuilds at once the city layer and the derived tables that read the dataset:
a SELECT right after the rollback reads the restored version's rows, not the rolled-back ones."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from twinhub.catalog.query import run_query
from twinhub.cli.demo import prepare_demo
from twinhub.cli.main import main
from twinhub.hub.home import Hub
from twinhub.hub.locks import hold_dataset
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup

from .conftest import copy_sample

pytestmark = pytest.mark.slow  # two runs of the sample city through Dagster

DATASET = "civil_affairs.elderly_care"
PER_DATASET = "SELECT dataset, count(*) AS n FROM city.facility GROUP BY dataset"
TOTAL = "SELECT sum(n) AS total FROM derived.facilities_per_dataset"  # a derived table reading a derived table
REMOVED = ("MZ-0002,", "MZ-0004,", "MZ-0006,", "MZ-0007,")  # published rows of version 1 that v2 drops


def twinhub(hub: Hub, *args: str):
    result = CliRunner().invoke(main, ["--home", str(hub.home), *args])
    return result


def select(hub: Hub, sql: str, as_of: int | None = None) -> list[tuple]:
    return sorted(run_query(hub.lake, sql, as_of=as_of).rows, key=repr)


def query(hub: Hub, sql: str) -> list[dict]:
    """What a steward reads with `twinhub query` right now."""
    result = twinhub(hub, "query", sql, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture(scope="module")
def rolled(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The sample city with two more derived tables over city.facility; elderly care published (v1), four
    of its rows deleted at the source and published again (v2), then rolled back to v1 (v3)."""
    root = tmp_path_factory.mktemp("rollback_layers")
    hub = Hub.open(root / "home")
    prepare_demo(hub)
    manifest = copy_sample(root / "source", "civil_affairs/elderly_care.yaml")
    register(hub, manifest)  # elderly care read from a copy this test edits
    (hub.home / "derived" / "facilities_per_dataset.sql").write_text(PER_DATASET, encoding="utf-8")
    (hub.home / "derived" / "facility_total.sql").write_text(TOTAL, encoding="utf-8")
    first = twinhub(hub, "run", "--all")
    assert first.exit_code == 0, first.output
    csv = manifest.parent / "elderly_care.csv"
    lines = csv.read_text(encoding="gbk").splitlines()
    csv.write_text("\n".join(x for x in lines if not x.startswith(REMOVED)) + "\n", encoding="gbk")
    second = twinhub(hub, "run", DATASET)
    assert second.exit_code == 0, second.output
    v2_rows = select(hub, f"SELECT facility_id FROM {DATASET}")
    layer_v2 = query(hub, "SELECT facility_id FROM city.facility WHERE dataset = 'elderly_care'")
    back = twinhub(hub, "rollback", DATASET, "v1", "--reason", "the source lost four homes by mistake")
    assert back.exit_code == 0, back.output
    versions = json.loads(twinhub(hub, "catalog", "show", DATASET, "--format", "json").output)["versions"]
    return {"hub": hub, "output": back.output, "v2_rows": v2_rows, "layer_v2": layer_v2,
            "snapshots": {v["number"]: v["snapshot"] for v in versions if v["number"]}}


def test_the_city_layer_serves_the_restored_versions_rows_at_once(rolled):
    hub, v1 = rolled["hub"], rolled["snapshots"][1]
    restored = select(hub, f"SELECT facility_id FROM {DATASET}", as_of=v1)
    assert sorted((r["facility_id"],) for r in rolled["layer_v2"]) == rolled["v2_rows"] != restored  # v2 was served
    layer = query(hub, "SELECT facility_id FROM city.facility WHERE dataset = 'elderly_care'")
    assert sorted((r["facility_id"],) for r in layer) == restored == select(hub, f"SELECT facility_id FROM {DATASET}")
    assert {"MZ-0002", "MZ-0004"} <= {r["facility_id"] for r in layer}  # rows only version 1 had
    others = "SELECT dataset, facility_id FROM city.facility WHERE dataset <> 'elderly_care'"
    assert select(hub, others) == select(hub, others, as_of=rolled["snapshots"][2])  # other departments untouched


def test_derived_tables_reading_the_layer_or_the_dataset_are_rebuilt_inputs_first(rolled):
    hub, output = rolled["hub"], rolled["output"]
    built = [line.split()[1] for line in output.splitlines() if line.startswith("rebuilt ")]
    assert built[0] == "city.facility"
    assert set(built) == {"city.facility", "derived.facilities_per_dataset", "derived.facility_total",
                          "derived.care_homes_near_shelters"}  # the last reads civil_affairs.elderly_care itself
    assert built.index("derived.facilities_per_dataset") < built.index("derived.facility_total")
    counts = {r["dataset"]: r["n"] for r in query(hub, "SELECT * FROM derived.facilities_per_dataset")}
    assert counts == dict(select(hub, PER_DATASET))  # the same SELECT over the layer as served now
    assert counts["elderly_care"] == len(select(hub, f"SELECT 1 FROM {DATASET}"))
    assert [int(r["total"]) for r in query(hub, "SELECT total FROM derived.facility_total")] == [sum(counts.values())]
    sql = (hub.home / "derived" / "care_homes_near_shelters.sql").read_text(encoding="utf-8")
    near = "SELECT care_home_id, shelter_id FROM derived.care_homes_near_shelters"
    assert select(hub, near) == sorted(((r[0], r[3]) for r in run_query(hub.lake, sql).rows), key=repr)


def test_the_rollback_names_versions_per_dataset_beside_their_snapshots(rolled):
    snapshots, output = rolled["snapshots"], rolled["output"]
    assert sorted(snapshots) == [1, 2, 3] and snapshots[1] < snapshots[2] < snapshots[3]
    assert f"{DATASET}: v3 (snapshot {snapshots[3]}) serves the rows of v1 (snapshot {snapshots[1]})" in output
    listed = {r["dataset"]: r for r in json.loads(twinhub(rolled["hub"], "datasets", "--format", "json").output)}
    row = listed[DATASET]
    assert (row["last_run"], row["served"]) == ("rollback", f"v3 (snapshot {snapshots[3]})")
    assert row["published"] == len(select(rolled["hub"], f"SELECT 1 FROM {DATASET}", as_of=snapshots[1]))


def test_no_rollback_while_a_run_of_the_dataset_holds_its_lock(rolled):
    hub = rolled["hub"]
    with hold_dataset(hub, lookup(hub, DATASET).manifest, "run-in-progress"):
        refused = twinhub(hub, "rollback", DATASET, "v2")
    assert refused.exit_code == 2 and f"{DATASET}: publish in progress (run run-in-progress" in refused.output
    versions = json.loads(twinhub(hub, "catalog", "show", DATASET, "--format", "json").output)["versions"]
    assert [v["number"] for v in versions if v["number"]] == [3, 2, 1]  # nothing was rolled back
