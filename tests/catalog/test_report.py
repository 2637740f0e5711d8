"""twinhub report: reuse across departments, latency, freshness and quarantine, from the audit log and runs."""

from __future__ import annotations

import datetime as dt

import pytest

from twinhub.catalog.cadence import cadence
from twinhub.catalog.export import export_dataset
from twinhub.catalog.query import run_query
from twinhub.catalog.report import build_report, dataset_figures
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup

from .conftest import copy_sample, publish_sample

CARE = "civil_affairs.elderly_care"
WATER = "water.pumping_stations"
SCHEDULES = {CARE: "0 2 * * *", WATER: "0 6 * * 1"}


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Hub:
    root = tmp_path_factory.mktemp("report")
    hub = Hub.open(root / "home")
    publish_sample(hub, "water/pumping_stations.yaml")
    manifest = copy_sample(root / "care", "civil_affairs/elderly_care.yaml")
    register(hub, manifest)
    ingest(hub, lookup(hub, CARE), run_id="c1")
    ingest(hub, lookup(hub, CARE), run_id="c1-again")  # unchanged: confirms, publishes nothing
    csv = manifest.parent / "elderly_care.csv"
    csv.write_bytes(csv.read_bytes() + "MZ-0200,新的养老院,养老院,徐汇区,某路1号,10,121.43,31.2\n".encode("gbk"))
    ingest(hub, lookup(hub, CARE), run_id="c2")  # the source changed: a new version
    for department, sql in [
        ("water", f"SELECT count(*) FROM {WATER}"),  # the owner itself: not reuse
        ("emergency", f"SELECT name FROM {WATER}"),
        ("emergency", f"SELECT p.name FROM {WATER} p JOIN {CARE} c ON ST_DWithin(p.geometry, c.geometry, 0.02)"),
        ("health", f"SELECT category FROM {WATER}"),
        (None, f"SELECT 1 FROM {CARE}"),  # unknown consumer: counted as a query, not as reuse
    ]:
        run_query(hub.lake, sql, department=department)
    export_dataset(hub.lake, WATER, "csv", root, department="health")
    return hub


def _rows(report, column: str = "dataset") -> dict[str, dict]:
    frame = report.datasets if column == "dataset" else report.departments
    return {r[column]: r for r in frame.to_dict("records")}


def test_reuse_counts_consumers_from_other_departments_only(hub):
    rows = _rows(build_report(hub.lake, SCHEDULES))
    water, care = rows[WATER], rows[CARE]
    assert (water["queries"], water["queries_other_departments"], water["exports_other_departments"],
            water["consuming_departments"]) == (4, 3, 1, 2)
    assert (care["queries"], care["queries_other_departments"], care["consuming_departments"]) == (2, 1, 1)


def test_latency_is_measured_from_the_last_run_that_saw_the_old_source(hub):
    runs = dict(run_query(hub.lake, f"SELECT run_id, finished_at FROM catalog.runs WHERE dataset = '{CARE}'").rows)
    expected = (runs["c2"] - runs["c1-again"]).total_seconds() / 3600
    care = _rows(build_report(hub.lake, SCHEDULES))[CARE]
    assert care["change_to_publish_hours"] == pytest.approx(expected, rel=1e-6)
    assert care["source_changes"] == 1 and care["versions"] == 2
    assert _rows(build_report(hub.lake, SCHEDULES))[WATER]["source_changes"] == 0


@pytest.mark.parametrize("days_later, care, water", [
    (0, "fresh", "fresh"),
    (1.4, "fresh", "fresh"),  # within 1.5 daily intervals
    (2, "stale", "fresh"),  # daily cadence missed; weekly still fine
    (11, "stale", "stale"),
])
def test_freshness_against_the_declared_cadence(hub, days_later, care, water):
    now = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days_later)
    rows = _rows(build_report(hub.lake, SCHEDULES, now=now))
    assert (rows[CARE]["freshness"], rows[WATER]["freshness"]) == (care, water)
    assert _rows(build_report(hub.lake, {}, now=now))[CARE]["freshness"] == "no schedule"


def test_quarantined_share_and_department_totals(hub):
    report = build_report(hub.lake, SCHEDULES)
    latest = run_query(hub.lake, "SELECT rows_quarantined, rows_read FROM catalog.runs WHERE run_id = 'c2'").rows[0]
    assert _rows(report)[CARE]["quarantined_share"] == pytest.approx(latest[0] / latest[1])
    water = _rows(report, "department")["water"]
    assert (water["datasets"], water["queries_other_departments"], water["exports_other_departments"]) == (1, 3, 1)
    assert water["published_last_7_days"] == 1 and water["stale_datasets"] == 0


def test_saved_report_is_queryable_as_catalog_tables(hub):
    build_report(hub.lake, SCHEDULES, save=True)
    rows = run_query(hub.lake, "SELECT dataset, queries_other_departments, freshness FROM catalog.report_datasets "
                               "ORDER BY 1").rows
    assert rows == [(CARE, 1, "fresh"), (WATER, 3, "fresh")]
    departments = run_query(hub.lake, "SELECT department FROM catalog.report_departments ORDER BY 1").rows
    assert departments == [("civil_affairs",), ("water",)]


def test_dataset_figures_are_plain_numbers(hub):
    figures = dataset_figures(hub.lake, WATER, SCHEDULES[WATER])
    assert figures["queries_other_departments"] == 3 and isinstance(figures["quarantined_share"], float)
    assert figures["expected_interval_hours"] == 168.0


@pytest.mark.parametrize("cron, code, hours", [
    ("0 2 * * *", "DAILY", 24), ("0 * * * *", "HOURLY", 1), ("0 */6 * * *", "OTHER", 6),
    ("0 8,20 * * *", "TWICE_A_DAY", 12), ("0 6 * * 1", "WEEKLY", 168), ("0 1 1 * *", "MONTHLY", 730.5),
    ("0 1 1 1,4,7,10 *", "QUARTERLY", 2191.5), ("0 1 1 1 *", "ANNUAL", 8766), ("@daily", "DAILY", 24), ("every day", "IRREG", None), (None, "IRREG", None),
])
def test_cadence_of_a_cron_schedule(cron, code, hours):
    got_code, interval = cadence(cron)
    assert got_code == code
    assert (interval.total_seconds() / 3600 if interval else None) == hours
