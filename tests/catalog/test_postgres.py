"""From one machine to several: DuckLake metadata in the real PostgreSQL on this machine, by configuration alone."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap

import pytest
import yaml

from twinhub import sample
from twinhub.catalog.info import dataset_info
from twinhub.catalog.lake import CatalogConfigError, Lake
from twinhub.catalog.query import run_query
from twinhub.hub.home import Hub, HubError
from twinhub.hub.ingest import ingest
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup

PG = "dbname=test host=127.0.0.1 port=5432 user=postgres"
ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def pg_hub(tmp_path, pg_schema):
    """A hub whose catalog metadata is a fresh PostgreSQL schema (dropped afterwards), data in a shared folder."""
    home = tmp_path / "home"
    home.mkdir()
    config = {"catalog": {"metadata": f"postgres:{PG}", "schema": pg_schema, "data": str(tmp_path / "shared" / "data"),
                          "previews": str(tmp_path / "shared" / "previews")}}
    (home / "twinhub.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    hub = Hub.open(home)
    hub.init()
    return hub


@pytest.mark.parametrize("config, message", [
    ({"metadata": "postgres:dbname=x password=secret"}, "must not be written in twinhub.yaml"),
    ({"metadata": "postgres://u:secret@host/db"}, "must not be written in twinhub.yaml"),
    ({"metadata": "mysql:db"}, "is not supported"),
    ({"schema": "Bad-Name"}, "not a lower-case SQL name"),
    ({"metdata": "postgres:dbname=x"}, "catalog.metdata: unknown key"),
    ("postgres:dbname=x", "expected a mapping"),
])
def test_bad_catalog_configuration_is_named_by_its_key(tmp_path, config, message):
    with pytest.raises(CatalogConfigError, match=message):
        Lake.from_config(tmp_path / "catalog", config)


def test_a_bad_configuration_is_a_hub_error_naming_the_file(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "twinhub.yaml").write_text("catalog: {metadata: 'postgres:dbname=x password=p'}\n", encoding="utf-8")
    with pytest.raises(HubError, match=r"twinhub.yaml: catalog.metadata: a password must not"):
        Hub.open(home).lake  # noqa: B018


def test_the_secret_never_reaches_the_connection_string(tmp_path):
    lake = Lake.from_config(tmp_path / "catalog", {"metadata": f"postgres:{PG}", "schema": "s"})
    assert lake.uri == f"ducklake:postgres:{PG}" and lake.metadata is None and lake.schema == "s"
    assert lake.data == tmp_path / "catalog" / "data"


@pytest.mark.slow
def test_publish_query_and_time_travel_with_postgres_metadata(pg_hub):
    register(pg_hub, sample.CITY / "water" / "pumping_stations.yaml")
    first = ingest(pg_hub, lookup(pg_hub, "water.pumping_stations"), run_id="pg-1")
    second = ingest(pg_hub, lookup(pg_hub, "water.pumping_stations"), run_id="pg-2", force=True)
    assert pg_hub.lake.metadata is None and pg_hub.lake.exists()
    rows = run_query(pg_hub.lake, "SELECT count(*) FROM water.pumping_stations").rows
    assert rows == [(first.rows_published,)]
    old = run_query(pg_hub.lake, "SELECT run_id FROM catalog.runs", as_of=first.snapshot_id).rows
    assert old == [("pg-1",)]
    versions = dataset_info(pg_hub.lake, "water.pumping_stations")["versions"]
    assert [v["version"] for v in versions] == [second.snapshot_id, first.snapshot_id]
    assert all(v["preview"] and v["preview"].startswith(str(pg_hub.lake.previews)) for v in versions)
    assert not (pg_hub.catalog_dir / "metadata.sqlite").exists()  # nothing fell back to SQLite


WORKER = textwrap.dedent(
    """
    import sys
    from twinhub.catalog.query import run_query
    from twinhub.hub.home import Hub
    from twinhub.hub.ingest import ingest
    from twinhub.hub.registry import lookup
    hub, dataset, tag = Hub.open(sys.argv[1]), sys.argv[2], sys.argv[3]
    for i in range(2):
        ingest(hub, lookup(hub, dataset), run_id=f"{tag}-{i}", force=True)
        n = run_query(hub.lake, "SELECT count(*) FROM water.pumping_stations UNION ALL "
                                "SELECT count(*) FROM emergency.shelters", department=tag).rows
        assert all(r[0] > 0 for r in n), n
    print("ok", tag)
    """
)


@pytest.mark.slow
def test_two_processes_publish_and_query_through_postgres_at_once(pg_hub):
    for path in (sample.CITY / "water" / "pumping_stations.yaml", sample.CITY / "emergency" / "shelters.yaml"):
        entry, _ = register(pg_hub, path)
        ingest(pg_hub, lookup(pg_hub, entry.id), run_id=f"seed-{entry.id}")
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(pg_hub.home), dataset, tag], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for dataset, tag in (("water.pumping_stations", "a"), ("emergency.shelters", "b"))
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n---\n".join(outputs)  # whole, not pytest's shortened list
    for dataset, tag in (("water.pumping_stations", "a"), ("emergency.shelters", "b")):
        versions = dataset_info(pg_hub.lake, dataset)["versions"]
        assert [v["run_id"] for v in versions[:2]] == [f"{tag}-1", f"{tag}-0"]
        assert len({v["version"] for v in versions}) == 3  # each publish its own snapshot
    audit = run_query(pg_hub.lake, "SELECT department, count(*) FROM catalog.audit WHERE department IN ('a', 'b') "
                                   "GROUP BY 1 ORDER BY 1").rows
    assert audit == [("a", 2), ("b", 2)]
