"""Fixtures of the CLI tests: a hub with one registered (not yet run) dataset."""

from __future__ import annotations

import pathlib

import pytest

from twinhub import sample
from twinhub.hub.home import Hub
from twinhub.hub.registration import register


@pytest.fixture(scope="module")
def water_hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    """water.pumping_stations registered, nothing run: quick to make, and told apart from an empty hub."""
    hub = Hub.open(tmp_path_factory.mktemp("water") / "home")
    register(hub, sample.CITY / "water" / "pumping_stations.yaml")
    return hub


@pytest.fixture
def elsewhere(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Hub:
    """An empty hub that $TWINHUB_HOME points to: a command that ignored --home would read this one."""
    hub = Hub.open(tmp_path / "elsewhere")
    monkeypatch.setenv("TWINHUB_HOME", str(hub.home))
    return hub
