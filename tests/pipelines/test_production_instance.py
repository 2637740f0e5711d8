"""deploy/dagster.yaml: the production instance starts on the real PostgreSQL and runs the sample city."""

from __future__ import annotations

import pathlib
import shutil
import uuid

import dagster as dg
import psycopg2
import pytest

from twinhub.cli.demo import prepare_demo
from twinhub.hub.home import Hub
from twinhub.pipelines.runner import run_datasets

REPO = pathlib.Path(__file__).resolve().parents[2]
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}


@pytest.fixture
def dagster_database(monkeypatch):
    name = f"twinhub_dagster_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(**PG)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    for key, value in {"HOST": PG["host"], "PORT": str(PG["port"]), "USER": PG["user"], "PASSWORD": "",
                       "DB": name}.items():
        monkeypatch.setenv(f"TWINHUB_DAGSTER_PG_{key}", value)
    yield name
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


@pytest.mark.slow
def test_the_sample_city_runs_on_the_production_instance(tmp_path, dagster_database):
    hub = Hub.open(tmp_path / "home")
    shutil.copy(REPO / "deploy" / "dagster.yaml", hub.dagster_home / "dagster.yaml")
    prepare_demo(hub)
    summary = run_datasets(hub)
    assert summary.ok, [o.error for o in summary.outcomes]

    with dg.DagsterInstance.from_config(str(hub.dagster_home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        run = instance.get_run_by_id(summary.run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        materialized = instance.get_latest_materialization_event(dg.AssetKey(["water", "pumping_stations"]))
        assert materialized.asset_materialization.metadata["rows_published"].value == 13

    with psycopg2.connect(**{**PG, "dbname": dagster_database}) as con, con.cursor() as cur:
        cur.execute("SELECT count(*) FROM runs WHERE run_id = %s", [summary.run_id])
        assert cur.fetchone()[0] == 1  # the run is in PostgreSQL, not in a file under the hub home
