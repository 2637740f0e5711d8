"""One reading of a schedule: the score, `twinhub report`, the DCAT frequency and Dagster's freshness agree.

The oracle is Dagster's own schedule iterator (the one that fires the runs): the mean interval between its
ticks over 28 years (2001-2028: whole weeks and whole leap cycles), in the schedule's timezone.
"""

from __future__ import annotations

import ast
import datetime as dt
import pathlib
import zoneinfo

import pytest
from dagster._utils.schedules import cron_string_iterator  # the test's oracle; the hub itself reads crons once

from twinhub.catalog.cadence import cadence
from twinhub.catalog.report import expected_interval_hours
from twinhub.pipelines.automation import policy_for
from twinhub.standards.score import cadence_seconds

CRONS = [
    ("0 * * * *", "UTC"),  # hourly
    ("0 2 * * *", "Asia/Shanghai"),  # daily at 2 (the sample's elderly care)
    ("30 2 * * 1", "Asia/Shanghai"),  # weekly (the sample's pumping stations)
    ("0 3 1 * *", "Asia/Shanghai"),  # monthly: Dagster's smallest interval says 28 days
    ("30 2 * * *", "Europe/Berlin"),  # daily where clocks change: Dagster's smallest interval says 23 hours
]


def _oracle(cron: str, timezone: str) -> dt.timedelta:
    tz = zoneinfo.ZoneInfo(timezone)
    start, end = dt.datetime(2001, 1, 1, tzinfo=tz), dt.datetime(2029, 1, 1, tzinfo=tz)
    ticks = 0
    for tick in cron_string_iterator(start.timestamp(), cron, timezone):
        if tick >= end:
            break
        ticks += 1
    return (end - start) / ticks


@pytest.mark.parametrize("cron, timezone", CRONS)
def test_score_report_dcat_and_dagster_read_a_schedule_alike(cron, timezone):
    expected = _oracle(cron, timezone)
    score = cadence_seconds(cron, timezone)
    report = expected_interval_hours(cron) * 3600
    dcat = cadence(cron)[1].total_seconds()
    policy = policy_for(cron)
    dagster_warn = policy.warn_window.to_timedelta().total_seconds()
    assert score == report == dcat == dagster_warn == pytest.approx(expected.total_seconds(), abs=1e-3)
    assert policy.fail_window.to_timedelta().total_seconds() == pytest.approx(1.5 * score, abs=1e-3)


def test_an_unreadable_schedule_has_no_cadence_anywhere():
    assert cadence_seconds("0 0 L * *") is None and expected_interval_hours("0 0 L * *") is None
    assert policy_for("0 0 L * *") is None and cadence("0 0 L * *") == ("IRREG", None)


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return [node.module or ""] if isinstance(node, ast.ImportFrom) else []


def test_no_private_dagster_api_outside_the_orchestration_layer():
    """Dagster's private modules (``dagster._…``) change without notice: only pipelines/ may lean on them."""
    repo = pathlib.Path(__file__).resolve().parents[2]
    found = []
    for folder in ("twinhub", "catalog", "connectors", "standards"):
        for path in (repo / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                found += [f"{path.relative_to(repo)}:{node.lineno} {name}" for name in _imported(node)
                          if name.startswith("dagster._")]
    assert found == []
