"""``twinhub demo``: the bundled sample city registered into a hub."""

from __future__ import annotations

import shutil

from twinhub import sample
from twinhub.hub.home import Hub
from twinhub.hub.registration import register
from twinhub.hub.registry import Registered


def prepare_demo(hub: Hub, fresh: bool = False) -> list[Registered]:
    """Register the sample city's manifests; with ``fresh``, empty the registry and catalog first."""
    if fresh:
        for path in (hub.registry_dir, hub.catalog_dir):
            shutil.rmtree(path, ignore_errors=True)
        hub.init()
    entries = [register(hub, path)[0] for path in sample.manifests()]
    derived = hub.home / "derived"
    derived.mkdir(exist_ok=True)
    for sql in sample.DERIVED.glob("*.sql"):  # a cross-department dataset defined in SQL
        shutil.copy(sql, derived / sql.name)
    return entries
