"""The Dagster UI of a hub: start it, and tell a running one that the registry changed.

``twinhub ui`` records where it serves in ``<home>/ui.json``; ``twinhub
register`` reads it and asks that webserver (GraphQL) to reload the code
location, so a new dataset appears without a restart.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request

from twinhub.hub.home import ENV_HOME, Hub

LOCATION = "twinhub.pipelines.definitions"  # the code location's name when loaded with `-m twinhub.pipelines.definitions`
STATE = "ui.json"


STOP_GRACE_S = 20.0  # how long Dagster's processes get to stop on SIGTERM before they are killed


class _Stop(Exception):
    def __init__(self, signum: int):
        self.signum = signum


def serve(hub: Hub, host: str, port: int) -> int:
    """Run ``dagster dev`` (webserver and daemon) on ``hub`` until it stops; returns its exit code.

    Dagster runs in a process group of its own. SIGTERM (a service manager, ``kill``) and SIGINT
    (Ctrl-C) are passed to the whole group, and whatever is left after STOP_GRACE_S is killed: no
    webserver, daemon or code server outlives ``twinhub ui`` still answering on the port.
    """
    env = dict(os.environ, **{ENV_HOME: str(hub.home), "DAGSTER_HOME": str(hub.dagster_home)})
    cmd = [sys.executable, "-m", "dagster", "dev", "-m", LOCATION, "-h", host, "-p", str(port)]
    state = hub.home / STATE

    def stop(signum, _frame):
        raise _Stop(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    process = None
    try:
        process = subprocess.Popen(cmd, env=env, start_new_session=True)
        state.write_text(json.dumps({"host": host, "port": port, "pid": os.getpid()}), encoding="utf-8")
        return process.wait()
    except _Stop as stopped:
        return stop_group(process, stopped.signum) if process else 128 + stopped.signum
    finally:
        if process is not None and process.poll() is None:  # an error of our own: leave nothing running
            stop_group(process, signal.SIGTERM)
        state.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_group(process: subprocess.Popen, signum: int, grace_s: float = STOP_GRACE_S) -> int:
    """Send ``signum`` to ``process``'s group, wait up to ``grace_s``, then SIGKILL what is left of it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # stragglers of the group (code servers), even after the leader
    process.wait()
    return 128 + signum


def running_ui(hub: Hub) -> tuple[str, int] | None:
    """Host and port of this hub's UI if one is serving now."""
    try:
        state = json.loads((hub.home / STATE).read_text(encoding="utf-8"))
        os.kill(state["pid"], 0)
        host = "127.0.0.1" if state["host"] in ("0.0.0.0", "::") else state["host"]
        with urllib.request.urlopen(f"http://{host}:{state['port']}/server_info", timeout=3):
            return host, int(state["port"])
    except (OSError, ValueError, KeyError):
        return None


def reload_ui(hub: Hub) -> str | None:
    """Ask a running UI to reload the code location; returns its address, or None if none runs."""
    address = running_ui(hub)
    if address is None:
        return None
    from dagster_graphql import DagsterGraphQLClient

    host, port = address
    info = DagsterGraphQLClient(host, port_number=port, timeout=60).reload_repository_location(LOCATION)
    if info.failure_type is not None:
        raise RuntimeError(f"the Dagster UI at {host}:{port} could not reload: {info.message}")
    return f"http://{host}:{port}"
