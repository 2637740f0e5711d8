"""Roll a dataset back to an earlier version, and rebuild at once the city layer and derived tables
that read it (catalog/versions.py restores the rows; this adds what the hub builds from them).

A version is named by its number for the dataset (``v3``, as ``twinhub catalog show`` lists it) or by
its catalog snapshot (``snapshot=21``, what a bare number meant before versions were numbered).
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass

from twinhub.catalog.runs import version_label
from twinhub.catalog.versions import AmbiguousVersion, RollbackResult, dataset_versions, find_version, parse_version
from twinhub.catalog.versions import rollback as restore
from twinhub.hub.home import Hub
from twinhub.hub.layers import rebuild_downstream
from twinhub.hub.locks import hold_dataset
from twinhub.hub.registry import NotRegistered, lookup


@dataclass(frozen=True)
class RolledBack:
    result: RollbackResult
    rebuilt: list[str]  # city layers and derived tables rebuilt from the restored rows


def rollback(hub: Hub, dataset: str, version: str | None = None, snapshot: int | None = None,
             reason: str = "", run_id: str | None = None) -> RolledBack:
    """Serve ``dataset``'s ``version`` (``v3``) or the version at catalog ``snapshot`` again, as a new
    version; then rebuild what reads it."""
    if (version is None) == (snapshot is None):
        raise AmbiguousVersion(f"name one version of {dataset}: twinhub rollback {dataset} v3 "
                               "(or --snapshot N for a catalog snapshot)")
    con = hub.lake.connect(read_only=True)
    try:
        if version is not None:
            target = find_version(con, dataset, number=_number(con, dataset, version))
        else:
            target = find_version(con, dataset, snapshot=snapshot)
    finally:
        con.close()
    run_id = run_id or f"rollback-{uuid.uuid4()}"
    with _held(hub, dataset, run_id):  # not while a run of the dataset stages or publishes
        result = restore(hub.lake, dataset, target["version"], run_id, reason)
        return RolledBack(result, rebuild_downstream(hub, dataset))


def _held(hub: Hub, dataset: str, run_id: str) -> contextlib.AbstractContextManager:
    """The dataset's lock (twinhub/hub/locks.py), as a run takes it; none for a dataset the registry no
    longer lists (nothing runs it)."""
    try:
        entry = lookup(hub, dataset, include_retired=True)
    except NotRegistered:
        return contextlib.nullcontext()
    return hold_dataset(hub, entry.manifest, run_id)


def _number(con, dataset: str, text: str) -> int:
    """``v3`` -> 3; a bare number is refused, saying what it would name either way for this dataset."""
    try:
        return parse_version(text)
    except AmbiguousVersion:
        n = int(text)
        known = dataset_versions(con, dataset)
        as_number = next((version_label(v["number"], v["version"]) for v in known if v["number"] == n), None)
        as_snapshot = next((version_label(v["number"], v["version"]) for v in known if v["version"] == n), None)
        raise AmbiguousVersion(
            f"{dataset}: a bare {n} is ambiguous now that versions are numbered per dataset "
            f"(`twinhub catalog show {dataset}`): write v{n} for its version {n} "
            f"({as_number or 'it has none'}), or --snapshot {n} for its version at catalog snapshot {n}, what a "
            f"bare number meant before ({as_snapshot or 'it has none'})") from None
