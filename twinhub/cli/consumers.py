"""Who a command reads as: ``--as CONSUMER`` resolved to the grants catalog/enforce.py applies.

Shared by ``twinhub query|export|catalog near --as`` and the grants commands. Every refusal is audited.
"""

from __future__ import annotations

import datetime as dt
import importlib
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from twinhub.hub.home import Hub

if TYPE_CHECKING:  # the catalog's modules load duckdb and sqlglot: imported when a command runs
    from twinhub.catalog.enforce import AsConsumer


class _Lazy:
    """A module imported when first used, so listing the CLI's commands stays fast."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self._name), attr)


audit, enforce, grants, review = (_Lazy(m) for m in ("twinhub.catalog.audit", "twinhub.catalog.enforce",
                                                      "twinhub.catalog.grants", "twinhub.hub.review"))


def city_today(hub: Hub) -> dt.date:
    """Today in the city's time zone: the day grant expiry is checked against."""
    return dt.datetime.now(ZoneInfo(hub.city.timezone)).date()


def departments(hub: Hub) -> set[str]:
    """Registered departments (also with registrations pending review, or datasets in the catalog)."""
    from twinhub.hub.registry import registered

    names = {r.manifest.department for r in registered(hub)} | {p.manifest.department for p in review.pending(hub)}
    return names | {t.split(".", 1)[0] for t in tables(hub) if t.split(".", 1)[0] not in ("city", "derived")}


def tables(hub: Hub) -> list[str]:
    """The catalog's tables as ``schema.table``."""
    return grants.catalog_tables(hub.lake) if hub.lake.exists() else []


def derived_inputs(hub: Hub, catalog_tables: list[str]) -> dict[str, list[str]]:
    """``derived.<name>`` -> the tables its SQL reads (a file that no longer parses reads 'unknown')."""
    from twinhub.catalog.guard import QueryRefused, prepare_query
    from twinhub.hub.layers import DERIVED_SCHEMA, derived_dir

    out = {}
    for path in sorted(derived_dir(hub).glob("*.sql")):
        try:
            reads = list(prepare_query(path.read_text(encoding="utf-8"), tables=catalog_tables).tables)
        except QueryRefused:
            reads = ["unknown.unknown"]  # the rule treats an unknown input as restricted
        out[f"{DERIVED_SCHEMA}.{path.stem}"] = reads
    return out


def as_consumer(hub: Hub, name: str, statement: str, today: dt.date | None = None,
                action: str = "query") -> AsConsumer:
    """What ``twinhub query|export|catalog near --as NAME`` runs as; an unknown consumer is refused and audited."""
    try:
        consumer = grants.parse_consumer(name, departments(hub))
    except grants.AccessError as exc:
        refused(hub, action, statement, str(exc))
        raise
    return enforce.AsConsumer(consumer, today or city_today(hub), derived_inputs(hub, tables(hub)))


def refused(hub: Hub, action: str, statement: str, message: str, dataset: str | None = None,
            consumer: str | None = None) -> None:
    """Write a refusal to the audit log."""
    audit.record(hub.lake, audit.AuditEntry(action=action, statement=statement, status="refused", message=message,
                                            tables=[dataset] if dataset else [], consumer=consumer))
