"""A hub with three departments published straight through twinhub.hub.ingest (no Dagster), once per session."""

from __future__ import annotations

import pathlib
import shutil

import pytest
import yaml

from twinhub import sample
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup

SAMPLES = ("water/pumping_stations.yaml", "emergency/shelters.yaml", "civil_affairs/elderly_care.yaml")


def publish_sample(hub: Hub, manifest: str, run_id: str | None = None):
    entry, _ = register(hub, sample.CITY / manifest)
    return ingest(hub, lookup(hub, entry.id), run_id=run_id or f"first-{entry.id}")


def copy_sample(folder: pathlib.Path, manifest: str, **changes) -> pathlib.Path:
    """A copy of a sample manifest and its source in ``folder``, with manifest keys changed."""
    folder.mkdir(parents=True, exist_ok=True)
    source = sample.CITY / manifest
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    shutil.copy(source.parent / data["source"]["path"], folder)
    data.update(changes)
    path = folder / source.name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def city(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    """Water, emergency and civil affairs published once; tests may only add audit rows to it."""
    hub = Hub.open(tmp_path_factory.mktemp("city") / "home")
    for manifest in SAMPLES:
        publish_sample(hub, manifest)
    return hub
