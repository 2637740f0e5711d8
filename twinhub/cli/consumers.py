"""Who a command reads as: ``--as CONSUMER`` resolved to the grants catalog/enforce.py applies.

Shared by ``twinhub query|export|catalog near --as`` and the grants commands. The facts it needs about
the hub (today in the city, its departments, derived datasets' inputs) come from twinhub.hub.consumers,
which ``twinhub serve`` uses too. Every refusal is audited.
"""

from __future__ import annotations

import datetime as dt
import importlib
from typing import TYPE_CHECKING

from twinhub.hub.consumers import city_today, departments, derived_inputs, tables
from twinhub.hub.home import Hub

if TYPE_CHECKING:  # the catalog's modules load duckdb and sqlglot: imported when a command runs
    from twinhub.catalog.enforce import AsConsumer

__all__ = ["as_consumer", "audit", "city_today", "departments", "derived_inputs", "enforce", "grants", "refused",
           "review", "tables"]


class _Lazy:
    """A module imported when first used, so listing the CLI's commands stays fast."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self._name), attr)


audit, enforce, grants, review = (_Lazy(m) for m in ("twinhub.catalog.audit", "twinhub.catalog.enforce",
                                                      "twinhub.catalog.grants", "twinhub.hub.review"))


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
