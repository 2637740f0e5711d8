"""One meaning per option, wherever it is written (docs/cli.md)."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from twinhub.catalog.guard import DIALECT_ALIASES, SUPPORTED_DIALECTS
from twinhub.cli.main import _add_command_modules, main


def cli(*args: str, **kwargs):
    return CliRunner().invoke(main, list(args), **kwargs)


def commands(group: click.Group = main, path: tuple[str, ...] = ()):
    """(path, command) of every command of the CLI, groups and their subcommands."""
    _add_command_modules()
    for name, command in sorted(group.commands.items()):
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


# --------------------------------------------------------------------------- --home before or after


@pytest.mark.parametrize("place", ["before", "after", "after="])
def test_home_is_read_before_or_after_the_command(water_hub, elsewhere, place):
    home = str(water_hub.home)
    args = {"before": ["--home", home, "datasets", "--format", "json"],
            "after": ["datasets", "--home", home, "--format", "json"],
            "after=": ["datasets", "--format", "json", f"--home={home}"]}[place]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert [r["dataset"] for r in json.loads(result.output)] == ["water.pumping_stations"]


def test_home_after_a_subcommand_of_a_group(water_hub, elsewhere):
    """grants list names the hub's departments when it refuses an unknown consumer: water's, not the empty one's."""
    result = cli("grants", "list", "--consumer", "nobody", "--home", str(water_hub.home))
    assert result.exit_code == 2 and "registered department (water)" in result.output, result.output


def test_home_given_twice_differently_is_refused(water_hub, elsewhere):
    result = cli("--home", str(water_hub.home), "datasets", "--home", str(elsewhere.home))
    assert result.exit_code == 2 and "--home given twice" in result.output


@pytest.mark.parametrize("path", [p for p, _ in commands()], ids=" ".join)
def test_every_command_takes_home_after_its_name(path, tmp_path):
    """``twinhub demo --home DIR`` among them (the README's spelling): an unknown option would fail to parse."""
    result = cli(*path, "--home", str(tmp_path / "home"), "--help")
    assert result.exit_code == 0 and "No such option" not in result.output, result.output


# --------------------------------------------------------------------------- --format is output rendering


def test_format_means_output_rendering_on_every_command():
    for path, command in commands():
        formats = [p for p in command.params if "--format" in getattr(p, "opts", ()) and not p.hidden]
        for option in formats:
            assert set(option.type.choices) <= {"table", "json", "csv"}, (path, option.type.choices)


@pytest.mark.parametrize("args, hint", [
    (["export", "water.pumping_stations", "--format", "geojson"], "--file-format geojson"),
    (["export-catalog", "--format", "stac"], "--metadata-format stac"),
    (["catalog", "search", "pump", "--department", "water"], "--published-by water"),
])
def test_an_old_spelling_fails_with_a_hint_to_the_new_one(water_hub, args, hint):
    result = cli("--home", str(water_hub.home), *args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and hint in result.output and len(result.output.splitlines()) == 1


# --------------------------------------------------------------------------- one list of SQL dialects


@pytest.mark.parametrize("dialect", [*SUPPORTED_DIALECTS, *DIALECT_ALIASES, "Redshift"])
def test_query_takes_every_dialect_of_the_guard(water_hub, dialect):
    result = cli("--home", str(water_hub.home), "query", "--dialect", dialect, "--format", "json", "SELECT 41 + 1 AS n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"n": 42}]


def test_an_unknown_dialect_is_refused_with_the_guards_list(water_hub):
    result = cli("--home", str(water_hub.home), "query", "--dialect", "dbase", "SELECT 1")
    assert result.exit_code == 2
    assert all(d in result.output for d in SUPPORTED_DIALECTS) and "mariadb (mysql)" in result.output


def test_the_cli_reference_lists_the_guards_dialects():
    """docs/cli.md names the dialects as the guard has them (the guard's list is the one that counts)."""
    import pathlib
    import re

    text = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    dialects = re.search(r"^- dialects: (.+)$", text, re.M).group(1).split(", ")
    aliases = {}  # "postgresql, postgis (postgres), mssql, ..." -> {"postgresql": "postgres", ...}
    for names, dialect in re.findall(r"([\w, ]+?) \((\w+)\)", re.search(r"^- aliases: (.+)$", text, re.M).group(1)):
        aliases.update({name: dialect for name in names.strip(", ").split(", ")})
    assert dialects == list(SUPPORTED_DIALECTS)
    assert aliases == DIALECT_ALIASES


def test_command_modules_import_the_shared_options_never_main():
    """main registers the command modules; were one to import main back, the CLI would be a cycle again."""
    import ast
    import pathlib

    import twinhub.cli

    importers = []
    for path in sorted(pathlib.Path(twinhub.cli.__path__[0]).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if "twinhub.cli.main" in names:
                importers.append(path.name)
    assert importers == []
