"""Dagster code location: the definitions for the hub at TWINHUB_HOME (default ~/.twinhub).

Loaded by ``dagster dev -w workspace.yaml``, ``twinhub ui`` and ``twinhub run``.
"""

from pipelines.factory import build_definitions
from twinhub.home import Hub

defs = build_definitions(Hub.open())
