"""The hub's registry: one checked manifest per dataset under ``<home>/registry``.

Registering copies the manifest with its source path made absolute and
records where it came from, so the registry is self-contained and the
Dagster UI can link each dataset back to its manifest file.
"""

from __future__ import annotations

import json
import os
import pathlib
import threading
from dataclasses import dataclass

import yaml

from twinhub.hub.home import Hub
from twinhub.hub.manifest import Manifest, ManifestError, parse_manifest

META_KEY = "registered"  # registry files carry this extra key beside the manifest's own
RETIRED_KEY = "retired"  # {at, by, reason}: a steward retired the dataset (twinhub.hub.retire); registering revives it


@dataclass(frozen=True)
class Registered:
    manifest: Manifest
    path: pathlib.Path  # the registry file
    manifest_path: str  # where the department's manifest was registered from
    registered_at: str
    review: list[str] | None = None  # why it waits for a steward (twinhub/review.py); None: active
    retired: dict | None = None  # {at, by, reason} once retired (twinhub.hub.retire): it no longer runs

    @property
    def id(self) -> str:
        return self.manifest.id


def entry_path(hub: Hub, dataset_id: str) -> pathlib.Path:
    """Where the registry file of an approved dataset lives."""
    department, _, name = dataset_id.partition(".")
    return hub.registry_dir / department / f"{name}.yaml"


def review_dir(hub: Hub) -> pathlib.Path:
    return hub.home / "review"


def pending_path(hub: Hub, dataset_id: str) -> pathlib.Path:
    """Where a registration waiting for a steward's review lives (twinhub.hub.review)."""
    return review_dir(hub) / "pending" / f"{dataset_id}.yaml"


def write_entry(path: pathlib.Path, data: dict) -> None:
    """Write a registry or pending file atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    tmp.replace(path)


def load_entry(path: pathlib.Path) -> Registered:
    return _load(path)


# libyaml's loader is several times faster; definition loading reads every registry file
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read(path: pathlib.Path) -> object:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 - a safe loader


def _entry(path: pathlib.Path, data: object) -> Registered:
    meta, retired = {}, None
    if isinstance(data, dict):
        meta, retired = data.get(META_KEY) or {}, data.get(RETIRED_KEY) or None
        data = {k: v for k, v in data.items() if k not in (META_KEY, RETIRED_KEY)}
    return Registered(parse_manifest(data, str(path)), path, meta.get("from", str(path)), meta.get("at", ""),
                      retired=retired)


def _load(path: pathlib.Path) -> Registered:
    return _entry(path, _read(path))


# Parsing a thousand YAML files is most of reading the registry, so their parsed content is kept
# in this JSON file keyed by each file's inode, size and mtime: a cache (the YAML files stay the
# truth), checked file by file on every read; registering replaces a file, which changes its inode.
INDEX = ".index.json"


def _stamp(path: pathlib.Path) -> list[int]:
    st = path.stat()
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def _read_index(path: pathlib.Path) -> dict:
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return index if isinstance(index, dict) else {}


def _write_index(path: pathlib.Path, index: dict) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(json.dumps(index, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)  # atomic; concurrent readers each write a complete index
    except (OSError, TypeError, ValueError):  # read-only, or a value JSON cannot hold: no cache
        tmp.unlink(missing_ok=True)


def registered(hub: Hub, include_retired: bool = False) -> list[Registered]:
    """Every registered dataset that runs (with ``include_retired``, the retired too), by department and dataset."""
    index_path = hub.registry_dir / INDEX
    index = _read_index(index_path)
    fresh, entries = {}, []
    for path in sorted(hub.registry_dir.glob("*/*.yaml")):
        name = path.relative_to(hub.registry_dir).as_posix()
        stamp = _stamp(path)
        cached = index.get(name)
        data = cached["data"] if isinstance(cached, dict) and cached.get("stamp") == stamp else _read(path)
        fresh[name] = {"stamp": stamp, "data": data}
        entry = _entry(path, data)
        if include_retired or entry.retired is None:
            entries.append(entry)
    if fresh != index:
        _write_index(index_path, fresh)
    return entries


class NotRegistered(ManifestError):
    """A dataset id that names no registry entry (unknown, or pending review): one line, not a manifest's problems."""

    def __init__(self, dataset_id: str, message: str):
        super().__init__(dataset_id, {"dataset": message})
        self.message = message

    def __str__(self) -> str:
        return self.message


def lookup(hub: Hub, dataset_id: str, include_retired: bool = False) -> Registered:
    """The registry entry of ``dataset_id``; a retired one (it no longer runs) only with ``include_retired``."""
    department, _, name = dataset_id.partition(".")
    path = hub.registry_dir / department / f"{name}.yaml"
    if not name or not path.is_file():
        if pending_path(hub, dataset_id).is_file():
            raise NotRegistered(dataset_id, f"{dataset_id} waits for a steward's review and does not run "
                                            f"yet: twinhub review show {dataset_id}")
        known = ", ".join(r.id for r in registered(hub)) or "none yet"
        raise NotRegistered(dataset_id, f"no registered dataset {dataset_id!r}; registered: {known}")
    entry = _load(path)
    if entry.retired is not None and not include_retired:
        raise NotRegistered(dataset_id, retired_message(entry))
    return entry


def retired_message(entry: Registered) -> str:
    """Why a retired dataset does not run, and how to bring it back."""
    r = entry.retired or {}
    return (f"{entry.id} is retired (since {r.get('at', '?')} by {r.get('by', '?')}: {r.get('reason', '')}) and no "
            f"longer runs; its versions stay readable. To bring it back, register its manifest again: "
            f"twinhub register {entry.manifest_path}")
