"""Exit codes (docs/cli.md): 0 done, 1 failed or an unexpected error (with the TWINHUB_DEBUG hint), 2 the user's to fix."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import twinhub.cli.catalog
from twinhub.cli.main import exposure_warning, main


def cli(hub, *args: str, **kwargs):
    return CliRunner().invoke(main, ["--home", str(hub.home), *args], **kwargs)


@pytest.mark.parametrize("args, says", [
    (["quarantine", "nope.nothing"], "'nope.nothing' is not in the catalog"),
    (["catalog", "show", "nope.nothing"], "'nope.nothing' is not in the catalog"),
    (["query", "DROP TABLE water.pumping_stations"], "read-only"),
    (["query", "--as-of", "yesterday", "SELECT 1"], "neither a version nor a time"),
    (["export", "nope.nothing"], "'nope.nothing' is not in the catalog"),
    (["catalog", "near", "121.47", "31.23", "--radius", "0"], "--radius must be between 0 and 100000 metres"),
    (["catalog", "near", "121.47", "91", "--radius", "10"], "is not a position"),
    (["rollback", "nope.nothing", "--to", "1"], "nope.nothing"),
    (["standards", "show", "no_such_standard"], "no_such_standard"),
    (["run", "nope.nothing"], "no registered dataset 'nope.nothing'"),
])
def test_a_user_error_exits_2_with_its_one_line(water_hub, args, says):
    result = cli(water_hub, *args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and says in result.output
    assert "Traceback" not in result.output and "TWINHUB_DEBUG" not in result.output


@pytest.fixture
def buggy_near(monkeypatch: pytest.MonkeyPatch):
    """A bug inside a catalog command: a ValueError nobody meant (the catalog commands once showed it as exit 2)."""
    def near(*args, **kwargs):
        raise ValueError("math domain error")

    monkeypatch.setattr(twinhub.cli.catalog, "near_features", near)


def test_an_unexpected_error_in_a_catalog_command_exits_1_with_the_debug_hint(water_hub, buggy_near, monkeypatch):
    monkeypatch.delenv("TWINHUB_DEBUG", raising=False)
    result = cli(water_hub, "catalog", "near", "121.47", "31.23", "--radius", "10")
    assert result.exit_code == 1, result.output
    assert result.output == "error: ValueError: math domain error\n(set TWINHUB_DEBUG=1 to see where)\n"


def test_twinhub_debug_shows_where_an_unexpected_error_came_from(water_hub, buggy_near, monkeypatch):
    monkeypatch.setenv("TWINHUB_DEBUG", "1")
    result = cli(water_hub, "catalog", "near", "121.47", "31.23", "--radius", "10")
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)


def test_a_usage_error_exits_2(water_hub):
    result = cli(water_hub, "run")  # neither DATASETS nor --all nor --failed
    assert result.exit_code == 2 and "name DATASETS to run" in result.output


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("::", False), ("10.1.2.3", False), ("192.168.0.5", False), ("hub.city.internal", False),
])
def test_the_ui_warns_when_it_serves_beyond_loopback(host, loopback):
    """``twinhub ui --host`` other than loopback prints the no-authentication warning (docs/production.md)."""
    warning = exposure_warning(host)
    if loopback:
        assert warning is None
    else:
        assert "no authentication" in warning and "reverse proxy" in warning and "docs/production.md" in warning
