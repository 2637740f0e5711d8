"""Dagster code location: the definitions for the hub at TWINHUB_HOME (default ~/.twinhub).

Loaded by ``dagster dev -w workspace.yaml``, ``twinhub ui`` and ``twinhub run``.
"""

from twinhub.hub.home import Hub
from twinhub.pipelines.factory import build_definitions

defs = build_definitions(Hub.open())
