"""`twinhub ui` stops every process it started, on SIGTERM as on Ctrl-C, so a service manager can run it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_twinhub_ui_alone_stops_the_webserver_daemon_and_code_servers(hub, signum, processes):
    port = _free_port()
    # only the twinhub process gets the signal (a service manager's `kill PID`, not the whole group)
    ui = subprocess.Popen([sys.executable, "-m", "twinhub", "--home", str(hub.home), "ui", "--port", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and ui.poll() is None and not _answers(port):
            time.sleep(1)
        assert _answers(port), f"the UI did not come up ({ui.poll()=})"
        time.sleep(2)  # let the daemon and the code server start too
        started = processes.descendants(ui.pid)
        assert len(started) >= 3  # dagster dev, its webserver and daemon (and code servers)
        ui.send_signal(signum)
        assert ui.wait(timeout=60) != 0 or signum == signal.SIGINT
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(map(processes.alive, started)):
            time.sleep(0.2)
        assert [pid for pid in started if processes.alive(pid)] == []
        assert not _answers(port)
        assert not (hub.home / "ui.json").exists()
    finally:
        if ui.poll() is None:
            ui.kill()
        for pid in started | processes.descendants(ui.pid):  # orphans too: a failing run must not leave them
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
