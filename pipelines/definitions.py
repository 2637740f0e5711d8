"""Dagster code location: the definitions for the hub at TWINHUB_HOME (default ~/.twinhub).

Loaded by ``dagster dev -w workspace.yaml``, ``twinhub ui`` and ``twinhub run``. Loading only
reads: a missing home is an error naming the home and ``twinhub init``, never a new folder
(tests/pipelines/test_definitions.py).
"""

from twinhub.hub.home import Hub
from twinhub.pipelines.factory import build_definitions

defs = build_definitions(Hub.open(create=False))
