"""Run the service: uvicorn, one process or several workers, on the hub named by TWINHUB_HOME."""

from __future__ import annotations

import os
import pathlib

from twinhub.hub.home import ENV_HOME, Hub

ENV_DAGSTER_URL = "TWINHUB_DAGSTER_URL"  # where the map links Dagster assets (twinhub serve --dagster-url)


def app_from_env():
    """The app factory uvicorn's workers call: each opens the hub of TWINHUB_HOME (read-only use)."""
    from twinhub.serve.app import create_app

    return create_app(Hub.open(pathlib.Path(os.environ[ENV_HOME]), create=False),
                      dagster_url=os.environ.get(ENV_DAGSTER_URL) or None)


def serve(hub: Hub, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve ``hub`` until SIGTERM or Ctrl-C (uvicorn stops its workers and finishes open requests)."""
    import uvicorn

    os.environ[ENV_HOME] = str(hub.home)
    uvicorn.run("twinhub.serve.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False, server_header=False, proxy_headers=False,
                timeout_graceful_shutdown=10)
