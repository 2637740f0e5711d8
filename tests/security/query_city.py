"""A small hub for the query attack tests, published through the real registration, review and ingest.

- water.pumping_stations: public
- civil_affairs.elderly_care: internal
- health.care_contacts: restricted by its capacity column (a copy of the care homes: address sensitive and masked, facility_id
  sensitive and pseudonymized, capacity restricted); its registration is approved by review
- city.facility: the three as one layer
"""

from __future__ import annotations

import pathlib
import shutil

import yaml

from twinhub import sample
from twinhub.hub import review
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.layers import build_city_layer
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup, registered

CONTACTS = "health.care_contacts"
CARE = "civil_affairs.elderly_care"
PUMPS = "water.pumping_stations"
CONTACT_COLUMNS = {
    "address": {"classification": "sensitive", "protect": "mask"},
    "facility_id": {"classification": "sensitive", "protect": "pseudonymize"},
    "capacity": {"classification": "restricted", "protect": "none"},
}


def _copy(folder: pathlib.Path, manifest: str, **changes) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    source = sample.CITY / manifest
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    shutil.copy(source.parent / data["source"]["path"], folder)
    data.update(changes)
    path = folder / source.name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def build_city(root: pathlib.Path) -> Hub:
    hub = Hub.open(root / "home")
    for manifest in ("water/pumping_stations.yaml", "civil_affairs/elderly_care.yaml"):
        entry, _ = register(hub, _copy(root / manifest.split("/")[0], manifest))
        ingest(hub, lookup(hub, entry.id), run_id=f"first-{entry.id}")
    contacts = _copy(root / "contacts", "civil_affairs/elderly_care.yaml", department="health",
                     dataset="care_contacts", title="Care home contacts", columns=CONTACT_COLUMNS)
    register(hub, contacts)
    review.approve(hub, CONTACTS, "fixture: health's own copy")
    ingest(hub, lookup(hub, CONTACTS), run_id="first-contacts")
    build_city_layer(hub, "facility", registered(hub))
    return hub
