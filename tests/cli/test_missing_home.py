"""A mistyped --home is refused by every reading command and leaves nothing behind; only the commands
that make a hub (init, register, demo) create one."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from twinhub.cli.main import main


@pytest.mark.parametrize("args", [
    ["datasets"], ["query", "SELECT 1"], ["catalog", "search", "x"], ["grants", "list"], ["tokens", "list"],
    ["review", "list"], ["ledger"], ["standards", "score"],
])
def test_a_reading_command_on_a_missing_home_is_refused_and_creates_nothing(tmp_path, args):
    home = tmp_path / "hoem"
    result = CliRunner().invoke(main, ["--home", str(home), *args])
    assert result.exit_code == 2, result.output
    assert "is not a twinhub home: run `twinhub init" in result.output
    assert not home.exists()


def test_init_creates_the_home(tmp_path):
    home = tmp_path / "home"
    result = CliRunner().invoke(main, ["--home", str(home), "init"])
    assert result.exit_code == 0, result.output
    assert (home / "twinhub.yaml").is_file()
    assert CliRunner().invoke(main, ["--home", str(home), "datasets"]).exit_code == 0
