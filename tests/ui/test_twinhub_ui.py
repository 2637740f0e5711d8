"""`twinhub ui` serves the hub's code location (webserver and daemon) on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ASSETS = '{"query": "{ assetNodes { assetKey { path } groupName } }"}'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: str) -> dict:
    request = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@contextlib.contextmanager
def running_ui(home):
    """`twinhub ui` on a free loopback port; yields its GraphQL URL; stopped like a service manager would."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "twinhub", "--home", str(home), "ui", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{port}/graphql", process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.slow
def test_twinhub_ui_serves_every_dataset_in_its_department_group(demo_hub):
    with running_ui(demo_hub.home) as (url, process):
        deadline, nodes = time.monotonic() + 120, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                nodes = _post(url, ASSETS)["data"]["assetNodes"]
                if nodes:
                    break
            except (OSError, KeyError, TypeError):
                pass
            time.sleep(1)
        assert nodes, f"the UI did not come up: {process.poll()=}"
        groups = {"/".join(n["assetKey"]["path"]): n["groupName"] for n in nodes}
        assert {key: group for key, group in groups.items() if not key.endswith("_staged")} == {
            "city/facility": "city",
            "derived/care_homes_near_shelters": "derived",
            "civil_affairs/elderly_care": "civil_affairs",
            "emergency/shelters": "emergency",
            "health/health_centres": "health",
            "water/pumping_stations": "water",
        }
        assert len(groups) == 10  # each dataset with its staging asset


@pytest.mark.slow
def test_a_new_registration_appears_in_the_running_ui_without_a_restart(hub):
    from twinhub import sample

    subprocess.run([sys.executable, "-m", "twinhub", "--home", str(hub.home), "register",
                    str(sample.CITY / "water" / "pumping_stations.yaml")], check=True)
    def keys() -> set[str]:
        try:
            return {"/".join(n["assetKey"]["path"]) for n in _post(url, ASSETS)["data"]["assetNodes"]}
        except (OSError, KeyError, TypeError):
            return set()

    with running_ui(hub.home) as (url, _):
        deadline = time.monotonic() + 120
        while "water/pumping_stations" not in keys() and time.monotonic() < deadline:
            time.sleep(1)
        assert "water/pumping_stations" in keys(), "the UI did not come up"
        registered = subprocess.run(
            [sys.executable, "-m", "twinhub", "--home", str(hub.home), "register",
             str(sample.CITY / "emergency" / "shelters.yaml")], capture_output=True, text=True, check=True)
        assert f"the Dagster UI at {url.removesuffix('/graphql')} reloaded the registry" in registered.stderr
        assert "emergency/shelters" in keys()  # no restart, no wait: reloaded before register returned
    assert not (hub.home / "ui.json").exists()  # `twinhub ui` cleans up after itself
