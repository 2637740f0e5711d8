"""A query DuckDB cannot run as written (a misspelt column in the audit log a steward reads) is one line,
without the hub's own wrapping of the SQL, exit 2, and audited as an error."""

from __future__ import annotations

from click.testing import CliRunner

from twinhub import sample
from twinhub.catalog.query import run_query
from twinhub.cli.main import main
from twinhub.hub.home import Hub
from twinhub.hub.registration import register


def test_a_misspelt_column_is_one_line_and_audited(tmp_path):
    hub = Hub.open(tmp_path / "home")
    register(hub, sample.CITY / "water/pumping_stations.yaml")  # a catalog with its audit log
    run_query(hub.lake, "SELECT 1")
    result = CliRunner().invoke(main, ["--home", str(hub.home), "query",
                                       "SELECT happened_at, outcome FROM catalog.audit"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: the query failed: Binder Error: Referenced column "outcome"')
    assert "DESCRIBE" not in result.output and "TWINHUB_DEBUG" not in result.output
    [(status, message)] = run_query(hub.lake, "SELECT status, message FROM catalog.audit WHERE status = 'error'").rows
    assert message == lines[0].removeprefix("error: ")
