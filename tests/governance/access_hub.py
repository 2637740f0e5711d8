"""A small hub for the review, grants and enforcement tests: three departments published through ingest.

- water.pumping_stations: public
- civil_affairs.elderly_care: internal
- health.care_contacts: a copy of the elderly care homes held by health, internal with
  address sensitive (masked), facility_id sensitive (pseudonymized) and capacity restricted;
  its tier is restricted, so its registration waits for review and the fixture approves it.
"""

from __future__ import annotations

import pathlib
import shutil

import yaml

from twinhub import sample
from twinhub.hub import review
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup

CONTACTS = "health.care_contacts"
CONTACT_COLUMNS = {
    "address": {"classification": "sensitive", "protect": "mask"},
    "facility_id": {"classification": "sensitive", "protect": "pseudonymize"},
    "capacity": {"classification": "restricted", "protect": "none"},
}
KEY = "7e" * 32  # 32 bytes, hex: the least key the hub accepts (catalog/masking.py)


def sample_copy(folder: pathlib.Path, manifest: str, **changes) -> pathlib.Path:
    """A copy of a sample manifest and its source in ``folder``, with manifest keys changed."""
    folder.mkdir(parents=True, exist_ok=True)
    source = sample.CITY / manifest
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    shutil.copy(source.parent / data["source"]["path"], folder)
    data.update(changes)
    path = folder / source.name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def contacts_manifest(folder: pathlib.Path, **changes) -> pathlib.Path:
    keys = dict(department="health", dataset="care_contacts", title="Care home contacts", columns=CONTACT_COLUMNS)
    return sample_copy(folder, "civil_affairs/elderly_care.yaml", **{**keys, **changes})


def build_hub(root: pathlib.Path) -> Hub:
    hub = Hub.open(root / "home")
    for manifest in ("water/pumping_stations.yaml", "civil_affairs/elderly_care.yaml"):
        entry, _ = register(hub, sample.CITY / manifest)
        ingest(hub, lookup(hub, entry.id), run_id=f"first-{entry.id}")
    entry, _ = register(hub, contacts_manifest(root / "contacts"))
    assert entry.review, "a restricted registration waits for review"
    review.approve(hub, CONTACTS, "fixture: health's own copy")
    ingest(hub, lookup(hub, CONTACTS), run_id="first-contacts")
    return hub
