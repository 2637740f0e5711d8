"""Attack (issue 15, finding 3): a leaked version stays readable with --as-of. ``versions.purge`` removes
it from history: its snapshot, the rows readable as of it, and its Parquet files on disk, audited."""

from __future__ import annotations

import datetime as dt
import pathlib
import time

import pytest

from twinhub.catalog.lake import UnknownVersion
from twinhub.catalog.query import run_query
from twinhub.catalog.versions import PurgeRefused, dataset_versions, purge, rollback
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest

from .governance_city import activate, query, rows, write

LEAK = "LEAKED-"


def _files_at(hub: Hub, version: int) -> list[pathlib.Path]:
    """The Parquet files of hotline.cases readable as of ``version``."""
    schema = hub.lake.metadata_schema
    found = query(hub, f"""SELECT f.path, f.path_is_relative FROM {schema}.ducklake_data_file f
                           JOIN {schema}.ducklake_table t USING (table_id)
                           WHERE t.table_name = 'cases' AND f.begin_snapshot <= ?
                             AND (f.end_snapshot IS NULL OR f.end_snapshot > ?)""", [version, version])
    return [hub.lake.data / "hotline" / "cases" / p if relative else pathlib.Path(p) for p, relative in found]


@pytest.fixture
def leaked(hub: Hub, tmp_path):
    """hotline.cases: version 1 clean, version 2 leaked (40 rows: in Parquet, not inlined), then rolled back."""
    ingest(hub, activate(hub, write(tmp_path / "v1", "cases", rows(40))), run_id="clean")
    ingest(hub, activate(hub, write(tmp_path / "v2", "cases", rows(40, description=lambda i: f"{LEAK}{i}"))),
           run_id="leak")
    con = hub.lake.connect(read_only=True)
    try:
        versions = {v["run_id"]: v["version"] for v in dataset_versions(con, "hotline.cases")}
    finally:
        con.close()
    during = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.05)
    rollback(hub.lake, "hotline.cases", versions["clean"], run_id="back")
    return hub, versions, during


def test_purge_removes_the_leaked_version_its_rows_and_its_files(leaked):
    hub, versions, during = leaked
    leak = versions["leak"]
    files = _files_at(hub, leak)
    assert files and all(f.is_file() for f in files)
    sql = "SELECT count(*) FROM hotline.cases WHERE description LIKE 'LEAKED-%'"
    assert run_query(hub.lake, sql, as_of=leak).rows == [(40,)]  # the attack: the leak is still readable

    result = purge(hub.lake, "hotline.cases", leak, reason="descriptions held residents' notes", actor="steward")
    assert leak in result.snapshots
    assert not any(f.exists() for f in files)  # gone from disk
    assert {str(f) for f in files} <= set(result.files)
    with pytest.raises(UnknownVersion):
        run_query(hub.lake, sql, as_of=leak)
    assert run_query(hub.lake, sql, as_of=during).rows == [(0,)]  # that moment now reads the version before
    assert run_query(hub.lake, sql).rows == [(0,)]
    assert run_query(hub.lake, "SELECT count(*) FROM hotline.cases").rows == [(40,)]  # the served version stays
    con = hub.lake.connect(read_only=True)
    try:
        assert leak not in [v["version"] for v in dataset_versions(con, "hotline.cases")]
    finally:
        con.close()
    audited = query(hub, "SELECT status, statement, actor FROM catalog.audit WHERE action = 'purge'")
    assert audited == [("ok", f"purge hotline.cases version {leak}: descriptions held residents' notes", "steward")]


def test_the_served_version_and_a_purge_without_reason_are_refused(leaked):
    hub, versions, _ = leaked
    con = hub.lake.connect(read_only=True)
    try:
        served = dataset_versions(con, "hotline.cases")[0]["version"]
    finally:
        con.close()
    with pytest.raises(PurgeRefused, match="serves now"):
        purge(hub.lake, "hotline.cases", served, reason="oops")
    with pytest.raises(PurgeRefused, match="give the reason"):
        purge(hub.lake, "hotline.cases", versions["leak"], reason=" ")
    assert run_query(hub.lake, "SELECT count(*) FROM hotline.cases", as_of=versions["leak"]).rows == [(40,)]
    assert [s for (s,) in query(hub, "SELECT status FROM catalog.audit WHERE action = 'purge'")] == ["refused"] * 2


def test_purge_through_the_cli_also_removes_the_tiles_servers_kept(leaked):
    """Vector tiles drawn from the leaked rows, kept on disk for `twinhub serve`'s workers, go with them."""
    from click.testing import CliRunner

    from twinhub.cli.main import main
    from twinhub.serve.tilecache import TileCache, tiles_folder

    hub, versions, _ = leaked
    TileCache(tiles_folder(hub.home)).put("f" * 32, f"{LEAK}tile".encode(), snapshot=versions["leak"])
    assert any(p.is_file() for p in tiles_folder(hub.home).rglob("*"))
    result = CliRunner().invoke(main, ["--home", str(hub.home), "catalog", "purge", "hotline.cases", "--version",
                                       str(versions["leak"]), "--reason", "residents' notes", "--yes"])
    assert result.exit_code == 0, result.output
    assert not tiles_folder(hub.home).exists()
