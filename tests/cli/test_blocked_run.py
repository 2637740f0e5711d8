"""A run the audit blocks: `twinhub run` says which check blocked it, shows failing rows with their reasons and
the version that stays served; `twinhub quarantine DATASET --run RUN_ID` lists the rows its audit recorded."""

from __future__ import annotations

import json
import pathlib
import re
import shutil

import pytest
import yaml
from click.testing import CliRunner

from twinhub import sample
from twinhub.cli.main import main
from twinhub.hub.home import Hub

pytestmark = pytest.mark.slow  # two runs through Dagster

DATASET = "emergency.shelters"


def twinhub(hub: Hub, *args: str):
    return CliRunner().invoke(main, ["--home", str(hub.home), *args])


def copy_sample(folder: pathlib.Path, manifest: str, **changes) -> pathlib.Path:
    """The sample manifest and its source copied into ``folder``, with manifest keys changed."""
    folder.mkdir(parents=True)
    source = sample.CITY / manifest
    data = {**yaml.safe_load(source.read_text(encoding="utf-8")), **changes}
    shutil.copy(source.parent / data["source"]["path"], folder)
    (folder / source.name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return folder / source.name


@pytest.fixture(scope="module")
def blocked(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Shelters published once (v1, 5 rows quarantined), then registered with no schema failure allowed:
    the same source's next run is blocked by the schema audit."""
    root = tmp_path_factory.mktemp("blocked")
    hub = Hub.open(root / "home")
    assert twinhub(hub, "register", str(copy_sample(root / "ok", "emergency/shelters.yaml"))).exit_code == 0
    assert twinhub(hub, "run", DATASET).exit_code == 0
    served = json.loads(twinhub(hub, "catalog", "show", DATASET, "--format", "json").output)["versions"][0]
    held = json.loads(twinhub(hub, "quarantine", DATASET, "--format", "json").output)  # v1's quarantine: the oracle
    strict = copy_sample(root / "strict", "emergency/shelters.yaml", quality={"max_schema_failure_share": 0.0})
    assert twinhub(hub, "register", str(strict)).exit_code == 0
    run = twinhub(hub, "run", DATASET)
    run_id = re.search(r"dagster run: (\S+)", run.stderr).group(1)
    return {"hub": hub, "run": run, "run_id": run_id, "served": served, "held": held}


def _schema_rows(held: list[dict], checks: set[str]) -> set[int]:
    return {r["source_row"] for r in held if {x["check"] for x in r["reasons"]} & checks}


def test_the_run_says_what_blocked_it_and_what_stays_served(blocked):
    run, served = blocked["run"], blocked["served"]
    assert run.exit_code == 1
    table = {line.split()[0]: line for line in run.stdout.splitlines() if line.startswith(DATASET)}
    assert re.search(rf"BLOCKED .*v1 \(snapshot {served['snapshot']}\)", table[DATASET])
    assert (f"{DATASET} blocked: not published: blocked by the audit (schema); v1 (snapshot {served['snapshot']}) "
            f"stays served ({served['rows_published']} published, {served['rows_quarantined']} quarantined)"
            ) in run.stderr
    figures = re.search(r"blocked by schema: rows_failing (\d+), share_failing ([\d.]+), max_share 0.0", run.stderr)
    assert figures, run.stderr
    per_check = dict(re.findall(r"(\w+) (\d+)", re.search(r"rows failing per check: (.*)", run.stderr).group(1)))
    expected = _schema_rows(blocked["held"], set(per_check))  # the same source rows v1 quarantined for them
    assert int(figures.group(1)) == len(expected) > 0
    shown = {int(n) for n in re.findall(r"source row (\d+): ", run.stderr)}
    assert shown == expected  # fewer than the five shown per check: every one
    assert f"twinhub quarantine {DATASET} --run {blocked['run_id']}" in run.stderr


def test_the_quarantine_of_a_blocked_run_lists_the_failing_rows_with_reasons(blocked):
    hub, run_id = blocked["hub"], blocked["run_id"]
    listed = twinhub(hub, "quarantine", DATASET, "--run", run_id, "--format", "json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    per_check = set(re.findall(r"(\w+) \d+", re.search(r"rows failing per check: (.*)", blocked["run"].stderr).group(1)))
    assert {r["source_row"] for r in rows} == _schema_rows(blocked["held"], per_check)
    v1 = {r["source_row"]: {x["check"] for x in r["reasons"]} for r in blocked["held"]}
    assert all({x["check"] for x in r["reasons"]} <= v1[r["source_row"]] for r in rows)  # the same reasons
    table = twinhub(hub, "quarantine", DATASET, "--run", run_id)
    assert f"run {run_id} was blocked by schema" in table.output and "stage was discarded" in table.output


def test_quarantine_of_a_published_run_and_of_an_unknown_run(blocked):
    hub, served = blocked["hub"], blocked["served"]
    by_run = twinhub(hub, "quarantine", DATASET, "--run", served["run_id"], "--format", "json")
    assert by_run.exit_code == 0 and json.loads(by_run.output) == blocked["held"]
    unknown = twinhub(hub, "quarantine", DATASET, "--run", "no-such-run")
    assert unknown.exit_code == 2 and f"{DATASET} has no such run" in unknown.output
    assert f"{blocked['run_id']} (blocked)" in unknown.output  # the newest runs, to pick from


def test_datasets_shows_the_version_that_stays_served_after_a_blocked_run(blocked):
    hub, served = blocked["hub"], blocked["served"]
    row = {r["dataset"]: r for r in json.loads(twinhub(hub, "datasets", "--format", "json").output)}[DATASET]
    assert row["last_run"] == "blocked"
    assert (row["served"], row["published"], row["quarantined"]) == (
        f"v1 (snapshot {served['snapshot']})", served["rows_published"], served["rows_quarantined"])
