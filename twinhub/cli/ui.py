"""The Dagster UI of a hub: start it, and tell a running one that the registry changed.

``twinhub ui`` records where it serves in ``<home>/ui.json``; ``twinhub
register`` reads it and asks that webserver (GraphQL) to reload the code
location, so a new dataset appears without a restart.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

from twinhub.hub.home import ENV_HOME, Hub

LOCATION = "twinhub.pipelines.definitions"  # the code location's name when loaded with `-m twinhub.pipelines.definitions`
STATE = "ui.json"


def serve(hub: Hub, host: str, port: int) -> int:
    """Run ``dagster dev`` (webserver and daemon) on ``hub`` until it stops; returns its exit code."""
    env = dict(os.environ, **{ENV_HOME: str(hub.home), "DAGSTER_HOME": str(hub.dagster_home)})
    cmd = [sys.executable, "-m", "dagster", "dev", "-m", LOCATION, "-h", host, "-p", str(port)]
    state = hub.home / STATE
    state.write_text(json.dumps({"host": host, "port": port, "pid": os.getpid()}), encoding="utf-8")
    # a service manager stops us with SIGTERM: exit through `finally` so the state file goes too
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        return subprocess.call(cmd, env=env)
    finally:
        state.unlink(missing_ok=True)
        signal.signal(signal.SIGTERM, previous)


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
