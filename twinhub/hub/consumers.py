"""Who reads: the facts about a hub that resolving a consumer needs (today in the city, departments,
derived datasets' inputs), shared by the CLI's ``--as`` and ``twinhub serve``'s tokens."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from twinhub.hub.home import Hub


def city_today(hub: Hub) -> dt.date:
    """Today in the city's time zone: the day grant and token expiry are checked against."""
    return dt.datetime.now(ZoneInfo(hub.city.timezone)).date()


def tables(hub: Hub) -> list[str]:
    """The catalog's tables as ``schema.table``."""
    from twinhub.catalog.grants import catalog_tables

    return catalog_tables(hub.lake) if hub.lake.exists() else []


def departments(hub: Hub) -> set[str]:
    """Registered departments (also with registrations pending review, or datasets in the catalog)."""
    from twinhub.hub import review
    from twinhub.hub.registry import registered

    names = {r.manifest.department for r in registered(hub)} | {p.manifest.department for p in review.pending(hub)}
    return names | {t.split(".", 1)[0] for t in tables(hub) if t.split(".", 1)[0] not in ("city", "derived")}


def derived_inputs(hub: Hub, catalog_tables: list[str]) -> dict[str, list[str]]:
    """``derived.<name>`` -> the tables its SQL reads (a file that no longer parses reads 'unknown')."""
    from twinhub.catalog.guard import QueryRefused, prepare_query
    from twinhub.hub.layers import DERIVED_SCHEMA, derived_dir

    out = {}
    for path in sorted(derived_dir(hub).glob("*.sql")):
        try:
            reads = list(prepare_query(path.read_text(encoding="utf-8"), tables=catalog_tables).tables)
        except QueryRefused:
            reads = ["unknown.unknown"]  # the access rule treats an unknown input as restricted
        out[f"{DERIVED_SCHEMA}.{path.stem}"] = reads
    return out
