"""Retire a dataset: it stops running and leaves the city layers and open exports; its history stays.

The registry entry keeps the manifest and gains a ``retired: {at, by, reason}`` block
(twinhub.hub.registry.RETIRED_KEY): the registry's readers then leave it out of the Dagster
definitions, schedules, sensors and ``twinhub run``. Its versions, ``--as-of`` reads and quarantine
stay in the catalog. The city layer of its standard is rebuilt at once without it (dropped when it
was the layer's only input), and so are the derived datasets reading that layer. Registering the
manifest again brings the dataset back, through review as any registration.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlglot import exp

from twinhub.catalog import audit
from twinhub.catalog.lake import with_retry
from twinhub.errors import UserError
from twinhub.hub.home import Hub
from twinhub.hub.layers import (
    CITY_SCHEMA,
    LayerError,
    build_city_layer,
    build_derived,
    derived_datasets,
    known_tables,
    published,
)
from twinhub.hub.registry import RETIRED_KEY, Registered, _read, lookup, registered, write_entry


class RetireError(UserError, ValueError):
    """The dataset cannot be retired as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Retired:
    entry: Registered
    rebuilt: list[str]  # city layers and derived tables rebuilt without it
    dropped: list[str]  # city layers it was the only input of


def retire(hub: Hub, dataset_id: str, reason: str, actor: str | None = None) -> Retired:
    """Retire ``dataset_id`` for ``reason`` (audited), and rebuild the city layer it fed."""
    if not reason.strip():
        raise RetireError("--reason: say why the dataset is retired (it is kept in the registry and the audit log)")
    entry = lookup(hub, dataset_id, include_retired=True)
    if entry.retired is not None:
        raise RetireError(f"{dataset_id} is already retired (since {entry.retired.get('at')}); "
                          f"register its manifest again to bring it back: twinhub register {entry.manifest_path}")
    _refuse_if_derived_reads(hub, dataset_id)
    by = actor or audit.current_actor()
    block = {"at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "by": by, "reason": reason.strip()}
    data = _read(entry.path)
    data[RETIRED_KEY] = block
    write_entry(entry.path, data)
    rebuilt, dropped = _rebuild_layer(hub, entry.manifest.standard)
    audit.record(hub.lake, audit.AuditEntry(
        action="retire", statement=f"retire {dataset_id}", tables=[dataset_id, *rebuilt, *dropped],
        message=reason.strip(), actor=by, department=entry.manifest.department))
    return Retired(lookup(hub, dataset_id, include_retired=True), rebuilt, dropped)


def _refuse_if_derived_reads(hub: Hub, dataset_id: str) -> None:
    """A derived dataset reading ``dataset_id`` itself would lose its input (and the definitions their SQL check)."""
    readers = [d for d in derived_datasets(hub, known_tables(hub)) if dataset_id in d.reads]
    if readers:
        raise RetireError(f"{dataset_id} cannot be retired: " + "; ".join(
            f"{d.id} reads it ({d.path})" for d in readers) + "; edit or remove those SQL files first")


def _rebuild_layer(hub: Hub, standard: str) -> tuple[list[str], list[str]]:
    """Rebuild ``city.<standard>`` from the datasets still running (drop it if none is published), then
    the derived datasets that read it. Returns the tables rebuilt and dropped."""
    layer = f"{CITY_SCHEMA}.{standard}"
    if layer not in published(hub.lake, [layer]):
        return [], []
    members = [e for e in registered(hub) if e.manifest.standard == standard]
    try:
        build_city_layer(hub, standard, members)
    except LayerError:  # it was the layer's only published input
        _drop(hub, CITY_SCHEMA, standard)
        return [], [layer]
    rebuilt = [layer]
    for derived in derived_datasets(hub, known_tables(hub)):
        if layer in derived.reads:
            build_derived(hub, derived)
            rebuilt.append(derived.id)
    return rebuilt, []


def _drop(hub: Hub, schema: str, name: str) -> None:
    drop = exp.Drop(this=exp.Table(this=exp.to_identifier(name, quoted=True), db=exp.to_identifier(schema, quoted=True)),
                    kind="TABLE", exists=True).sql(dialect="duckdb")
    con = hub.lake.connect()
    try:
        with_retry(lambda: con.execute(drop))
    finally:
        con.close()
