"""What keeps a large registry fast: light imports, the registry's parse cache, a cheap snapshot.

The figures themselves come from ``python -m bench.definitions`` (docs/production.md, Scale);
these tests hold the properties the figures rest on.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner

from bench.definitions import make_hub
from twinhub import sample
from twinhub.cli.main import main
from twinhub.connectors import CONNECTORS, connector_class
from twinhub.hub.registration import register
from twinhub.hub.registry import INDEX, registered
from twinhub.pipelines.factory import build_definitions

REPO = pathlib.Path(__file__).resolve().parents[2]
# needed to run a dataset, never to list the registry or define its assets
RUN_ONLY = {"pandas", "pandera", "geopandas", "pyarrow", "PIL", "pyogrio", "openpyxl", "psycopg", "pymysql"}
PROBE = """
import json, sys
{setup}
heavy = {heavy!r}
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def _imported(setup: str, heavy: set[str], home: pathlib.Path) -> list[str]:
    env = dict(os.environ, TWINHUB_HOME=str(home))
    out = subprocess.run([sys.executable, "-c", PROBE.format(setup=setup, heavy=heavy)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    return json.loads(out.splitlines()[-1])


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory):
    """A hub with 30 registered datasets (copies of one sample registration)."""
    return make_hub(tmp_path_factory.mktemp("scale") / "home", 30)


def test_listing_datasets_imports_no_data_library(many):
    setup = ("from twinhub.cli.main import main\n"
             "try:\n    main(['datasets'], standalone_mode=False)\nexcept SystemExit:\n    pass")
    heavy = RUN_ONLY | {"pyproj", "shapely", "frictionless", "twinhub.cli.catalog"}
    assert _imported(setup, heavy, many.home) == []


def test_loading_definitions_imports_nothing_only_runs_need(many):
    setup = "import twinhub.pipelines.definitions as d\nassert len(d.defs.resolve_asset_graph().get_all_asset_keys()) > 60"
    assert _imported(setup, RUN_ONLY, many.home) == []


def test_every_connector_is_named_by_its_format():
    assert {fmt: connector_class(fmt).name for fmt in CONNECTORS} == {fmt: fmt for fmt in CONNECTORS}


def test_commands_of_other_modules_load_when_asked_for(many):
    runner = CliRunner()
    listing = runner.invoke(main, ["--help"])
    assert listing.exit_code == 0 and {"catalog", "standards", "review"} <= set(listing.output.split())
    shown = runner.invoke(main, ["--home", str(many.home), "catalog", "--help"])
    assert shown.exit_code == 0 and "vacuum" in shown.output  # cli_ops adds it to cli_catalog's group
    from twinhub.catalog.query import DEFAULT_MAX_ROWS

    assert f"(default: {DEFAULT_MAX_ROWS:,}," in " ".join(runner.invoke(main, ["query", "--help"]).output.split())


def test_user_errors_stay_one_line_without_their_modules_imported_first(many):
    result = CliRunner().invoke(main, ["--home", str(many.home), "quarantine", "nope.nothing"])
    assert result.exit_code == 2 and result.output.startswith("error: ")


def test_the_registry_cache_follows_every_file(hub):
    entry, _ = register(hub, sample.CITY / "water" / "pumping_stations.yaml")
    register(hub, sample.CITY / "civil_affairs" / "elderly_care.yaml")
    first = registered(hub)
    index = hub.registry_dir / INDEX
    assert index.is_file() and [r.manifest for r in registered(hub)] == [r.manifest for r in first]
    data = yaml.safe_load(entry.path.read_text(encoding="utf-8"))
    data["title"] = "Pumping stations (renamed)"
    tmp = entry.path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    tmp.replace(entry.path)  # as registering does
    assert [r.manifest.title for r in registered(hub)][-1] == "Pumping stations (renamed)"
    index.write_text("{not json", encoding="utf-8")  # a broken cache is rebuilt, never trusted
    assert [r.manifest.title for r in registered(hub)][-1] == "Pumping stations (renamed)"
    assert set(json.loads(index.read_text(encoding="utf-8"))) == {
        "water/pumping_stations.yaml", "civil_affairs/elderly_care.yaml"}
    entry.path.unlink()
    assert [r.id for r in registered(hub)] == ["civil_affairs.elderly_care"]


def test_the_code_location_snapshot_has_no_per_asset_cron_policy(many):
    """Every process reading the code location rebuilds each asset's freshness policy; a cron one
    walks ~1,000 cron ticks (20-80 ms): at 1,000 datasets the webserver took over a minute."""
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster_shared.serdes import serialize_value

    defs = build_definitions(many)
    snapshot = serialize_value(RepositorySnap.from_def(defs.get_repository_def(), defer_snapshots=True))
    assert "CronFreshnessPolicy" not in snapshot and snapshot.count("TimeWindowFreshnessPolicy") == 30
    published = next(s for s in defs.resolve_all_asset_specs() if s.key == dg.AssetKey(["dept_01", "assets_00001"]))
    assert published.freshness_policy.warn_window.to_timedelta().days == 7  # the sample's weekly cron
