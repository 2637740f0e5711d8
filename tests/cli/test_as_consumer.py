"""``--as CONSUMER`` on every command that reads data: honoured through the enforcement of ``query --as``, or refused."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from twinhub.cli.main import _add_command_modules, main

# Commands that read the catalog's data or the source records behind it.
HONOURED = {("query",), ("export",), ("catalog", "near")}
REFUSED = {("quarantine",), ("trace",), ("catalog", "show"), ("catalog", "search"), ("labels", "review"),
           ("export-catalog",)}


def cli(hub, *args: str):
    return CliRunner().invoke(main, ["--home", str(hub.home), *args])


def _command(path: tuple[str, ...]) -> click.Command:
    _add_command_modules()
    command: click.Command = main
    for name in path:
        command = command.commands[name]
    return command


@pytest.mark.parametrize("path", sorted(HONOURED | REFUSED), ids=" ".join)
def test_every_reading_command_takes_as(path):
    assert any("--as" in getattr(p, "opts", ()) for p in _command(path).params)


@pytest.mark.parametrize("args", [
    ["quarantine", "water.pumping_stations"],
    ["trace", "water.pumping_stations", "--row", "1"],
    ["catalog", "show", "water.pumping_stations"],
    ["catalog", "search", "pump"],
    ["labels", "review"],
    ["export-catalog", "--metadata-format", "stac"],
], ids=lambda a: " ".join(a[:2]))
def test_a_command_that_cannot_read_as_a_consumer_refuses_as(water_hub, args):
    result = cli(water_hub, *args, "--as", "water")
    assert result.exit_code == 2, result.output
    assert "cannot read as a consumer yet" in result.output and "refused rather than ignored" in result.output


INTERNAL = "civil_affairs.elderly_care"  # internal: another department reads it only with a grant


@pytest.mark.parametrize("args", [
    ["query", f"SELECT name FROM {INTERNAL}"],
    ["export", INTERNAL, "--file-format", "csv", "--out", "{tmp}/care.csv"],
], ids=lambda a: a[0])
def test_reading_as_a_consumer_goes_through_its_grants(demo_hub, tmp_path, args):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    as_steward = cli(demo_hub, *args)
    assert as_steward.exit_code == 0, as_steward.output
    if args[0] == "export":
        (tmp_path / "care.csv").unlink()
    as_water = cli(demo_hub, *args, "--as", "water")
    assert as_water.exit_code == 2, as_water.output
    assert as_water.output.startswith("error: ") and INTERNAL in as_water.output


def test_near_as_a_consumer_leaves_out_what_it_may_not_read(demo_hub):
    args = ["catalog", "near", "121.47", "31.23", "--radius", "20000", "--format", "json"]
    everything = {r["dataset"] for r in json.loads(cli(demo_hub, *args).output)}
    as_water = cli(demo_hub, *args, "--as", "water")
    assert as_water.exit_code == 0, as_water.output
    seen = {r["dataset"] for r in json.loads(as_water.output)}
    assert INTERNAL in everything and INTERNAL not in seen and "water.pumping_stations" in seen


@pytest.mark.parametrize("args", [["query", "SELECT 1"], ["export", INTERNAL],
                                  ["catalog", "near", "121.47", "31.23", "--radius", "10"]], ids=lambda a: a[0])
def test_an_unknown_consumer_is_refused(demo_hub, args):
    result = cli(demo_hub, *args, "--as", "nobody")
    assert result.exit_code == 2 and "unknown consumer 'nobody'" in result.output
