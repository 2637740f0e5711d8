"""`twinhub tokens` and `twinhub serve` as a steward and a service manager use them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from .conftest import free_port

pytestmark = pytest.mark.slow


def twinhub(home, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twinhub", "--home", str(home), *args], capture_output=True,
                          text=True, timeout=120)


def test_a_steward_issues_lists_and_revokes_a_token_that_the_server_then_refuses(served_hub, server):
    issued = twinhub(served_hub.home, "tokens", "issue", "water", "--until", "2099-12-31", "--note", "QGIS desk 4")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    request = urllib.request.Request(f"{server}/collections", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    listed = json.loads(twinhub(served_hub.home, "tokens", "list", "--format", "json").stdout)
    mine = [t for t in listed if t["note"] == "QGIS desk 4"]
    assert len(mine) == 1 and mine[0]["state"] == "active" and token not in json.dumps(listed)
    assert twinhub(served_hub.home, "tokens", "revoke", mine[0]["id"], "--reason", "desk moved").returncode == 0
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401
    unknown = twinhub(served_hub.home, "tokens", "issue", "nobody", "--until", "2099-12-31")
    assert unknown.returncode == 2 and "unknown consumer" in unknown.stderr


def test_serve_with_workers_stops_every_process_on_sigterm(served_hub, processes):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "twinhub", "--home", str(served_hub.home), "serve",
                                "--port", str(port), "--workers", "2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/conformance", timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        started = processes.descendants(process.pid)
        assert len(started) >= 2  # the workers
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) is not None
        deadline = time.monotonic() + 20  # uvicorn gives open requests up to 10 s
        while time.monotonic() < deadline and any(processes.alive(p) for p in started):
            time.sleep(0.2)
        assert [p for p in started if processes.alive(p)] == []
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/conformance", timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
        for pid in started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
