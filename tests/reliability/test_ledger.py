"""The reconciliation ledger and the trace of one source row, through the real CLI commands."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from twinhub.catalog.lake import META_SCHEMA, META_VIEWS
from twinhub.cli.main import main
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.ledger import ledger, trace
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup

from .conftest import BAD_EVERY, DATASET, write_source


def _cli(hub, *args):
    return CliRunner().invoke(main, ["--home", str(hub.home), *args])


def test_the_ledger_accounts_for_every_row_of_every_run(drill):
    hub, source = drill
    ingest(hub, lookup(hub, DATASET), run_id="v1")  # 60 rows: 52 conform, 8 quarantined
    write_source(source, 80, version=2)
    ingest(hub, lookup(hub, DATASET), run_id="v2")  # every name changes, 20 more rows
    write_source(source, 30, version=2)
    ingest(hub, lookup(hub, DATASET), run_id="v3")  # 50 rows gone
    ingest(hub, lookup(hub, DATASET), run_id="v4")  # nothing changed
    runs = {r["run_id"]: r for r in ledger(hub.lake, DATASET)}
    figures = lambda r: tuple(r[k] for k in ("rows_read", "rows_published", "rows_quarantined", "rows_added",  # noqa: E731
                                             "rows_updated", "rows_deleted", "rows_unchanged"))
    assert figures(runs["v1"]) == (60, 52, 8, 52, 0, 0, 0)
    assert figures(runs["v2"]) == (80, 69, 11, 17, 52, 0, 0)
    assert figures(runs["v3"]) == (30, 26, 4, 0, 0, 43, 26)
    assert runs["v4"]["status"] == "unchanged" and runs["v4"]["version"] is None
    assert all(runs[r]["balanced"] for r in ("v1", "v2", "v3"))

    shown = _cli(hub, "ledger", DATASET, "--format", "json")
    assert shown.exit_code == 0, shown.output
    assert [r["run_id"] for r in json.loads(shown.output)] == ["v4", "v3", "v2", "v1"]
    every = _cli(hub, "ledger")
    assert every.exit_code == 0 and DATASET in every.output


def test_the_ledger_flags_a_run_whose_rows_do_not_add_up(drill):
    hub, _ = drill
    ingest(hub, lookup(hub, DATASET), run_id="v1")
    con = hub.lake.connect()
    try:  # a run that lost a row (what the ledger is there to catch)
        con.execute(f"INSERT INTO {META_SCHEMA}.runs (run_id, dataset, status, finished_at, rows_read, rows_published, "
                    "rows_quarantined) VALUES ('lossy', ?, 'published', now(), 60, 51, 8)", [DATASET])
    finally:
        con.close()
    shown = _cli(hub, "ledger", DATASET)
    assert shown.exit_code == 1
    assert f"{DATASET} run lossy: 60 rows read but 51 published + 8 quarantined" in shown.output


def test_trace_follows_a_source_row_to_its_key_or_its_quarantine_reasons(drill):
    hub, source = drill
    ingest(hub, lookup(hub, DATASET), run_id="v1")
    write_source(source, 80, version=2)
    ingest(hub, lookup(hub, DATASET), run_id="v2")

    published = trace(hub.lake, DATASET, 3)
    assert (published.outcome, published.run_id, published.key) == ("published", "v2", {"facility_id": "D-000003"})
    assert published.row["name"] == "drill point 3 v2"
    old = trace(hub.lake, DATASET, 3, run_id="v1")  # the version before, read at its snapshot
    assert old.outcome == "published" and old.row["name"] == "drill point 3 v1"
    quarantined = trace(hub.lake, DATASET, 14)
    assert quarantined.outcome == "quarantined" and quarantined.reasons[0]["check"] == "minimum"
    assert trace(hub.lake, DATASET, 81).outcome == "not read"
    assert trace(hub.lake, DATASET, 70, run_id="v1").outcome == "not read"  # v1 had 60 rows

    shown = _cli(hub, "trace", DATASET, "--row", "14")
    assert shown.exit_code == 0, shown.output
    assert "source row 14 of emergency.drill_points run v2" in shown.output and "quarantined" in shown.output
    shown = _cli(hub, "trace", DATASET, "--row", "3", "--run", "v1")
    assert "published under key facility_id='D-000003'" in shown.output and "drill point 3 v1" in shown.output
    missing = _cli(hub, "trace", DATASET, "--row", "3", "--run", "nope")
    assert missing.exit_code == 2 and "did not publish a version still held" in missing.output


FILTERS = [{"keep": "TRY_CAST(capacity AS INTEGER) >= 0", "reason": "negative capacities are planning placeholders"},
           {"keep": "NOT ends_with(id, '5')", "reason": "ids ending in 5 are exercises"}]


def _register_with_filters(hub, tmp_path) -> None:
    path = tmp_path / "drill_points.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump({**data, "filter": FILTERS}, allow_unicode=True), encoding="utf-8")
    register(hub, path)


def test_filtered_rows_balance_the_ledger_across_chunks_and_trace_names_their_filter(drill, tmp_path):
    hub, _ = drill  # 60 rows in chunks of 10
    _register_with_filters(hub, tmp_path)
    ingest(hub, lookup(hub, DATASET), run_id="f1")
    negative = [i for i in range(1, 61) if i % BAD_EVERY == 0]  # row 35 fails both: the first filter counts it
    fives = [i for i in range(1, 61) if i % 10 == 5 and i not in negative]
    (run,) = ledger(hub.lake, DATASET)
    assert (run["rows_read"], run["rows_filtered"], run["rows_quarantined"], run["rows_published"]) == (
        60, len(negative) + len(fives), 0, 60 - len(negative) - len(fives))
    assert run["balanced"]
    for row, reason in [(14, FILTERS[0]["reason"]), (35, FILTERS[0]["reason"]), (15, FILTERS[1]["reason"])]:
        found = trace(hub.lake, DATASET, row)
        assert (found.outcome, found.filter_reason) == ("filtered", reason)
    assert trace(hub.lake, DATASET, 16).outcome == "published"
    shown = _cli(hub, "trace", DATASET, "--row", "15")
    assert shown.exit_code == 0 and f"filtered: {FILTERS[1]['reason']}" in shown.output
    listed = _cli(hub, "ledger", DATASET, "--format", "json")
    assert json.loads(listed.output)[0]["rows_filtered"] == len(negative) + len(fives)


def test_a_catalog_from_before_filters_is_migrated_and_its_old_runs_still_balance(drill, tmp_path):
    hub, _ = drill
    ingest(hub, lookup(hub, DATASET), run_id="old")
    con = hub.lake.connect()
    try:  # the catalog as a twinhub without filters left it: no rows_filtered, views of revision 4
        for name, sql in META_VIEWS.items():
            con.execute(f"CREATE OR REPLACE VIEW {META_SCHEMA}.{name} AS "
                        + sql.replace(",\n               coalesce(r.rows_filtered, 0) AS rows_filtered", ""))
            con.execute(f"COMMENT ON VIEW {META_SCHEMA}.{name} IS 'twinhub views 4'")
        con.execute(f"ALTER TABLE {META_SCHEMA}.runs DROP COLUMN rows_filtered")
    finally:
        con.close()
    assert ledger(hub.lake, DATASET)[0]["balanced"]  # read before any upgrade: as it was
    hub = Hub.open(hub.home)  # a new process: its first writing connection upgrades the catalog
    _register_with_filters(hub, tmp_path)
    ingest(hub, lookup(hub, DATASET), run_id="new")
    runs = {r["run_id"]: r for r in ledger(hub.lake, DATASET)}
    assert runs["old"]["rows_filtered"] == 0 and runs["old"]["balanced"]  # NULL in the old row: none filtered
    assert runs["new"]["rows_filtered"] == 13 and runs["new"]["balanced"]
    con = hub.lake.connect(read_only=True)
    try:
        assert con.execute(f"SELECT run_id, rows_filtered FROM {META_SCHEMA}.quality").fetchall() == [("new", 13)]
    finally:
        con.close()
