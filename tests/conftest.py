"""Shared fixtures: hubs in temporary homes, the sample city run through Dagster, real-world data."""

from __future__ import annotations

import csv
import importlib.util
import pathlib
import sys
import uuid
from collections.abc import Iterator

import pytest

from twinhub import sample
from twinhub.cli.demo import prepare_demo
from twinhub.hub.home import Hub
from twinhub.pipelines.runner import run_datasets

PG = "dbname=test host=127.0.0.1 port=5432 user=postgres"  # the PostgreSQL of every dev machine and CI
REPO = pathlib.Path(__file__).resolve().parents[1]
REALWORLD = REPO.parent / "shared" / "data" / "realworld"


def _load_bench() -> None:
    """Make the repository's bench/ importable as ``bench``, alone: it is a dev tool, not part of the
    installed package, and the repository root is not put on sys.path (that would also make the old
    top-level ``catalog``, ``standards``… importable and hide a missed ``twinhub.`` prefix)."""
    spec = importlib.util.spec_from_file_location("bench", REPO / "bench" / "__init__.py",
                                                  submodule_search_locations=[str(REPO / "bench")])
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = module
    spec.loader.exec_module(module)


_load_bench()


@pytest.fixture
def hub(tmp_path: pathlib.Path) -> Hub:
    """An empty hub in a temporary home."""
    return Hub.open(tmp_path / "home")


@pytest.fixture(scope="session")
def demo_hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    """The sample city registered and materialized through Dagster in-process, once per session."""
    hub = Hub.open(tmp_path_factory.mktemp("demo") / "home")
    prepare_demo(hub)
    summary = run_datasets(hub)
    assert summary.ok, [o.error for o in summary.outcomes if not o.ok]
    return hub


@pytest.fixture(scope="session")
def truth() -> list[dict]:
    """Every sample source row: true position (EPSG:4490) and what the hub must do with it."""
    with sample.TRUTH.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="session")
def realworld() -> pathlib.Path:
    if not REALWORLD.is_dir():
        pytest.fail(f"real-world datasets not found at {REALWORLD} (shared/ must sit beside the repo)")
    return REALWORLD


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema name in the test PostgreSQL (for a hub's catalog metadata), dropped afterwards."""
    from twinhub.catalog.extensions import connect

    schema = f"twinhub_test_{uuid.uuid4().hex[:10]}"
    yield schema
    con = connect(extensions=("postgres_scanner",))
    try:
        con.execute(f"ATTACH '{PG}' AS pg (TYPE postgres)")
        con.execute(f"CALL postgres_execute('pg', 'DROP SCHEMA IF EXISTS {schema} CASCADE')")
    finally:
        con.close()


class Processes:
    """Processes as /proc shows them: what a command started, and whether each is still running."""

    @staticmethod
    def parents() -> dict[int, int]:
        out = {}
        for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
            try:
                out[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
        return out

    def children(self, pid: int) -> set[int]:
        return {child for child, parent in self.parents().items() if parent == pid}

    def descendants(self, pid: int) -> set[int]:
        """Every living process below ``pid``: children of children included."""
        parents, found, frontier = self.parents(), set(), {pid}
        while frontier:
            frontier = {child for child, parent in parents.items() if parent in frontier} - found
            found |= frontier
        return found

    @staticmethod
    def alive(pid: int) -> bool:
        """Running (a zombie has ended: it only waits for its parent to read its exit status)."""
        try:
            return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False


@pytest.fixture
def processes() -> Processes:
    return Processes()

