"""A served hub: the sample city published, and `twinhub serve`'s app on a loopback port (uvicorn)."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from twinhub.catalog import tokens
from twinhub.catalog.grants import Consumer, Grant, save_grant
from twinhub.cli.demo import prepare_demo
from twinhub.hub.home import Hub
from twinhub.pipelines.runner import run_datasets


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_shelter_fewer(hub: Hub) -> str:
    """A publish, as far as the catalog is concerned: emergency.shelters one row fewer, in a new snapshot;
    returns the removed shelter's id."""
    con = hub.lake.connect()
    try:
        first = con.execute("SELECT min(facility_id) FROM emergency.shelters").fetchone()[0]
        con.execute("DELETE FROM emergency.shelters WHERE facility_id = ?", [first])
    finally:
        con.close()
    return first


@pytest.fixture(scope="module")
def served_hub(tmp_path_factory) -> Hub:
    """The sample city, published; the serve tests' own (they add grants and tokens)."""
    hub = Hub.open(tmp_path_factory.mktemp("served") / "home")
    prepare_demo(hub)
    assert run_datasets(hub).ok
    return hub


@pytest.fixture(scope="module")
def health_token(served_hub) -> str:
    """A token of the health department, granted the civil affairs' internal elderly care dataset."""
    today = dt.date.today()
    save_grant(served_hub.lake, Grant("health", "civil_affairs.elderly_care", "internal",
                                      today + dt.timedelta(days=30), "steward", today.isoformat()))
    text, _ = tokens.issue_token(served_hub.lake, Consumer("health"), today + dt.timedelta(days=30), today)
    return text


@pytest.fixture(scope="module")
def server(served_hub) -> Iterator[str]:
    """`twinhub.serve` in its own process on a free loopback port; yields its base URL."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "twinhub", "--home", str(served_hub.home), "serve",
                                "--port", str(port), "--dagster-url", "http://127.0.0.1:3000"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/conformance", timeout=2).close()
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"the server exited: {process.stdout.read()}")
            time.sleep(0.3)
    yield url
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
