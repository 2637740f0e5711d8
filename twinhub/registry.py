"""The hub's registry: one checked manifest per dataset under ``<home>/registry``.

Registering copies the manifest with its source path made absolute and
records where it came from, so the registry is self-contained and the
Dagster UI can link each dataset back to its manifest file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import threading
from dataclasses import dataclass

import yaml

from twinhub.home import Hub
from twinhub.manifest import Manifest, ManifestError, check_manifest, load_manifest, parse_manifest

META_KEY = "registered"  # registry files carry this extra key beside the manifest's own


@dataclass(frozen=True)
class Registered:
    manifest: Manifest
    path: pathlib.Path  # the registry file
    manifest_path: str  # where the department's manifest was registered from
    registered_at: str
    review: list[str] | None = None  # why it waits for a steward (twinhub/review.py); None: active

    @property
    def id(self) -> str:
        return self.manifest.id


def register(hub: Hub, manifest_path: pathlib.Path) -> tuple[Registered, bool]:
    """Check and register a manifest; returns the entry and whether it replaced one.

    A sensitive or restricted registration (or a reviewed change to an approved one) is
    stored for review instead (twinhub/review.py): the entry's ``review`` says why.
    A refused manifest is written to the audit log (action ``register``, status ``refused``).
    """
    try:
        return _register(hub, manifest_path)
    except ManifestError as exc:
        _audit_refusal(hub, manifest_path, exc)
        raise


def _audit_refusal(hub: Hub, manifest_path: pathlib.Path, exc: ManifestError) -> None:
    from catalog import audit

    try:
        audit.record(hub.lake, audit.AuditEntry(action="register", statement=f"register {manifest_path}",
                                                status="refused", message=str(exc)))
    except Exception as failed:  # the refusal reaches the user even if the log cannot be written
        import logging

        logging.getLogger(__name__).warning("could not audit the refused registration of %s: %s", manifest_path, failed)


def _register(hub: Hub, manifest_path: pathlib.Path) -> tuple[Registered, bool]:
    from twinhub import review
    manifest_path = manifest_path.resolve()
    manifest = load_manifest(manifest_path)
    connector = check_manifest(manifest, hub.pack, manifest_path.parent, str(manifest_path), hub.network_policy, hub.home)
    source = dict(manifest.source, path=str(connector.path)) if connector.path else dict(manifest.source)
    stored = manifest.model_copy(update={"source": source})
    target = hub.registry_dir / manifest.department / f"{manifest.dataset}.yaml"
    replaced = target.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    data = stored.model_dump(exclude_none=True)
    data[META_KEY] = {"from": str(manifest_path), "at": now}
    reasons = review.review_reasons(hub, stored, _load(target).manifest if replaced else None)
    if reasons:
        item = review.submit(hub, data, stored, reasons, replaces=replaced)
        return Registered(stored, item.path, str(manifest_path), now, review=reasons), replaced
    review.withdraw(hub, stored.id, "registered again without needing review")
    tmp = target.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    tmp.replace(target)  # atomic: a reader never sees half a file
    return Registered(stored, target, str(manifest_path), now), replaced


# libyaml's loader is several times faster; definition loading reads every registry file
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read(path: pathlib.Path) -> object:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 - a safe loader


def _entry(path: pathlib.Path, data: object) -> Registered:
    meta = {}
    if isinstance(data, dict):
        meta = data.get(META_KEY) or {}
        data = {k: v for k, v in data.items() if k != META_KEY}
    return Registered(parse_manifest(data, str(path)), path, meta.get("from", str(path)), meta.get("at", ""))


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


def registered(hub: Hub) -> list[Registered]:
    """Every registered dataset, ordered by department and dataset."""
    index_path = hub.registry_dir / INDEX
    index = _read_index(index_path)
    fresh, entries = {}, []
    for path in sorted(hub.registry_dir.glob("*/*.yaml")):
        name = path.relative_to(hub.registry_dir).as_posix()
        stamp = _stamp(path)
        cached = index.get(name)
        data = cached["data"] if isinstance(cached, dict) and cached.get("stamp") == stamp else _read(path)
        fresh[name] = {"stamp": stamp, "data": data}
        entries.append(_entry(path, data))
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


def lookup(hub: Hub, dataset_id: str) -> Registered:
    department, _, name = dataset_id.partition(".")
    path = hub.registry_dir / department / f"{name}.yaml"
    if not name or not path.is_file():
        from twinhub.review import pending_path

        if pending_path(hub, dataset_id).is_file():
            raise NotRegistered(dataset_id, f"{dataset_id} waits for a steward's review and does not run "
                                            f"yet: twinhub review show {dataset_id}")
        known = ", ".join(r.id for r in registered(hub)) or "none yet"
        raise NotRegistered(dataset_id, f"no registered dataset {dataset_id!r}; registered: {known}")
    return _load(path)
