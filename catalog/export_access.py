"""What an export made for one consumer (``twinhub export DATASET --as CONSUMER``) may hold,
and what ``twinhub catalog near --as CONSUMER`` shows of each dataset (:func:`near_view`).

The query rule (catalog/access.py) column by column, with two things stricter for a file
that leaves the hub: a dataset that is not public needs the consumer's own department or an
unexpired grant (a file is not refused column by column), and ``restricted`` columns are
never written, whatever the grant (restricted datasets are refused before: catalog/export.py).

A city layer unions one standard's datasets: its file carries only the rows of the inputs the
consumer may read (``Access.readable_inputs``, as ``twinhub query --as``), never a restricted
input's, and its columns are tiered by those inputs alone (as the open export's are:
catalog/layer_entries.py), then decided for the consumer on the layer, as a query decides them.

    >>> ConsumerView(withheld={"capacity"}, protected={"phone": "mask"}).protected["phone"]
    'mask'
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import duckdb

from twinhub.catalog.access import BLOCKED, PROTECTED, Access
from twinhub.catalog.lake import Lake
from twinhub.errors import UserError

NEVER_IN_FILES = "restricted"


@dataclass
class ConsumerView:
    withheld: set[str] = field(default_factory=set)  # left out of the file
    protected: dict[str, str] = field(default_factory=dict)  # column -> mask | pseudonymize
    inputs: list[str] | None = None  # a city layer's inputs whose rows the file carries; None: every row
    tier: str | None = None  # the tier of what the file carries


class ConsumerRefused(UserError, ValueError):
    """The consumer may not have this dataset as a file; the message says who may give a grant."""


def consumer_view(con: duckdb.DuckDBPyConnection, lake: Lake, dataset: str, columns: list[str], who) -> ConsumerView:
    """``who`` (catalog.enforce.AsConsumer)'s view of ``dataset``'s ``columns``; raise ConsumerRefused."""
    access: Access = who.access(con, lake)
    inputs = None
    if dataset in access.tiers.inputs:  # a city layer: its readable inputs' rows, tiered by them
        access, inputs = _layer_access(access, dataset)
    else:
        _needs_grant(access, dataset)
    view = ConsumerView(inputs=inputs, tier=access.tiers.datasets.get(dataset))
    for column in columns:
        decision = _decided(access, dataset, column)
        if decision.kind == BLOCKED or access.tiers.column(dataset, column).tier == NEVER_IN_FILES:
            view.withheld.add(column)
        elif decision.kind == PROTECTED:
            view.protected[column] = decision.protection or "mask"
    if len(view.withheld) == len(columns):
        raise ConsumerRefused(f"{who.consumer.name} may read none of {dataset}'s columns in a file: "
                              f"{_decided(access, dataset, '*').reason or 'they are restricted'}")
    return view


def _layer_access(access: Access, layer: str) -> tuple[Access, list[str]]:
    """The consumer's access to ``layer`` had it only the inputs whose rows it may have in a file."""
    from twinhub.catalog.layer_entries import tiers_of

    inputs = [i for i in access.readable_inputs(layer) or []
              if access.tiers.datasets.get(i, NEVER_IN_FILES) != NEVER_IN_FILES]
    if not inputs:
        who = access.consumer.name
        raise ConsumerRefused(f"{who} may read none of {layer}'s datasets ({', '.join(access.tiers.inputs[layer])}) "
                              f"in a file: a steward can grant one of them, or the layer: "
                              f"twinhub grants add {who} {layer} --until YYYY-MM-DD --level internal")
    return replace(access, tiers=tiers_of(access.tiers, layer, inputs)), inputs


def _needs_grant(access: Access, dataset: str) -> None:
    if access.tiers.datasets.get(dataset) == "public":
        return
    if access.consumer.department and access.tiers.owners.get(dataset) == access.consumer.department:
        return
    grant = access.grant(dataset)
    if grant is None or not grant.active(access.today):
        raise ConsumerRefused(access.decide(dataset, "*").reason)


def _decided(access: Access, dataset: str, column: str):
    from twinhub.catalog.enforce import _protectable  # a pseudonymized column without the key is withheld

    try:
        from twinhub.catalog.masking import protect_sql
    except ImportError:
        protect_sql = None
    protect = None if protect_sql is None else lambda sql, how: protect_sql(sql, how, dataset=dataset)
    return _protectable(dataset, column, access.decide(dataset, column), protect)


def near_view(access: Access, dataset: str, columns: list[str], geometry: str) -> ConsumerView | None:
    """What ``access``'s consumer sees of ``dataset`` in a search around a point, by the query rule;
    None when it may not search the dataset at all (no grant, or its geometry is not readable in clear)."""
    try:
        _needs_grant(access, dataset)
    except ConsumerRefused:
        return None
    if _decided(access, dataset, geometry).kind != "clear":
        return None
    view = ConsumerView()
    for column in columns:
        decision = _decided(access, dataset, column)
        if decision.kind == BLOCKED:
            view.withheld.add(column)
        elif decision.kind == PROTECTED:
            view.protected[column] = decision.protection or "mask"
    return view
