"""A small generated facility dataset in a temporary hub, and helpers to run the real CLI and read the catalog.

Every test here causes its fault for real: a killed process, a full
filesystem, a dropped connection, a second process on the same dataset.
"""

from __future__ import annotations

import csv
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import yaml

from twinhub.hub.home import Hub
from twinhub.hub.registration import register

REPO = pathlib.Path(__file__).resolve().parents[2]
DATASET = "emergency.drill_points"
BAD_EVERY = 7  # every 7th source row has a negative capacity: quarantined, never published


def write_source(path: pathlib.Path, rows: int, version: int = 1) -> pathlib.Path:
    """``rows`` shelters inside the sample city; names end in ``v<version>`` so readers can tell versions apart."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "name", "type", "capacity", "lon", "lat"])
        for i in range(1, rows + 1):
            capacity = -5 if i % BAD_EVERY == 0 else 100 + i
            out.writerow([f"D-{i:06d}", f"drill point {i} v{version}", "shelter", capacity,
                          f"{121.30 + (i % 300) * 0.001:.6f}", f"{31.10 + (i // 300) * 0.001:.6f}"])
    return path


def expected(rows: int) -> tuple[int, int]:
    """(published, quarantined) for a source of ``rows`` rows."""
    quarantined = rows // BAD_EVERY
    return rows - quarantined, quarantined


def write_manifest(folder: pathlib.Path, source: pathlib.Path, name: str = "drill_points", **source_keys) -> pathlib.Path:
    data = {
        "department": "emergency", "dataset": name, "title": "Drill points", "description": "Generated for tests.",
        "standard": "facility",
        "source": {"format": "csv", "path": str(source), "crs": "EPSG:4490", "x": "lon", "y": "lat", **source_keys},
        "fields": {"facility_id": "id", "name": "name", "category": "type", "capacity": "capacity"},
        "classification": "public",
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def configure(hub: Hub, **settings) -> None:
    """Add top-level settings (e.g. chunk_rows) to the hub's twinhub.yaml."""
    config = hub.home / "twinhub.yaml"
    with config.open("a", encoding="utf-8") as fh:
        for key, value in settings.items():
            fh.write(f"\n{key}: {value}\n")


@pytest.fixture
def drill(tmp_path: pathlib.Path):
    """A hub with the drill dataset registered (60 rows, chunks of 10 rows), nothing published."""
    hub = Hub.open(tmp_path / "home")
    configure(hub, chunk_rows=10)
    hub = Hub.open(tmp_path / "home")  # re-read the configuration
    source = write_source(tmp_path / "drill.csv", 60)
    register(hub, write_manifest(tmp_path, source))
    return hub, source


def cli(home: pathlib.Path, *args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    """Start ``python -m twinhub --home HOME ARGS`` in its own session (so a kill reaches all of it)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    full_env.pop("TWINHUB_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "twinhub", "--home", str(home), *args], cwd=REPO, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **popen)


def run_cli(home: pathlib.Path, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = cli(home, *args, env=env)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def wait_for(marker: pathlib.Path, proc: subprocess.Popen, timeout: float = 180) -> None:
    """Wait until the paused process wrote ``marker``; fail with its output if it ended instead."""
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the process ended (exit {proc.returncode}) before its fault point:\n{out}\n{err}")
        if time.monotonic() > deadline:
            kill(proc)
            pytest.fail(f"no fault point reached within {timeout} s")
        time.sleep(0.1)


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the process and everything it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate(timeout=60)


def served(hub: Hub, dataset: str = DATASET) -> dict:
    """What a reader sees now: rows, distinct keys, and rows per version suffix of the name."""
    department, name = dataset.split(".")
    con = hub.lake.connect(read_only=True)
    try:
        rows, keys = con.execute(f"SELECT count(*), count(DISTINCT facility_id) FROM {department}.{name}").fetchone()
        versions = dict(con.execute(f"SELECT regexp_extract(name, 'v[0-9]+$'), count(*) FROM {department}.{name} "
                                    "GROUP BY 1").fetchall())
        snapshots = con.execute("SELECT count(*) FROM lake.snapshots()").fetchone()[0]
    finally:
        con.close()
    return {"rows": rows, "keys": keys, "versions": versions, "snapshots": snapshots}


def stage_folders(hub: Hub) -> list[pathlib.Path]:
    return sorted(p for p in hub.staging_dir.glob("*/*/*") if p.is_dir())


PG = "dbname=test host=127.0.0.1 port=5432 user=postgres"


@pytest.fixture
def drill_pg(tmp_path: pathlib.Path, pg_schema: str):
    """The drill hub with its catalog metadata in a fresh PostgreSQL schema (dropped afterwards)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "twinhub.yaml").write_text(yaml.safe_dump({"catalog": {"metadata": f"postgres:{PG}", "schema": pg_schema},
                                                       "chunk_rows": 10}), encoding="utf-8")
    hub = Hub.open(home)
    hub.init()
    source = write_source(tmp_path / "drill.csv", 60)
    register(hub, write_manifest(tmp_path, source))
    yield hub, source
