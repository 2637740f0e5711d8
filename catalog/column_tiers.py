"""Column tiers in the catalog: ``catalog.columns``' classification, protection and personal_data.

Written inside the publishing transaction (after catalog/notes.py has rewritten
the dataset's rows of ``catalog.columns``), read by exports (columns above the
open audience are left out) and by query-time enforcement (catalog/access.py).
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from twinhub.catalog.lake import META_SCHEMA, Lake
from twinhub.standards.tiers import ColumnTier, rank

OPEN_AUDIENCE = "public"  # who reads open exports
OPEN_UP_TO = "internal"  # open exports keep columns up to this tier; sensitive and restricted ones are left out


def record(con: duckdb.DuckDBPyConnection, dataset: str, tiers: Iterable[ColumnTier]) -> None:
    """Set each column's tier, protection and personal data on the dataset's ``catalog.columns`` rows."""
    for t in tiers:
        con.execute(
            f"UPDATE {META_SCHEMA}.columns SET classification = ?, protection = ?, personal_data = ? "
            "WHERE dataset = ? AND name = ?",
            [t.classification, t.protection, ",".join(t.personal_data) or None, dataset, t.name],
        )


def without_protected_labels(facts: dict | None, tiers: Iterable[ColumnTier]) -> dict | None:
    """Release-note facts without the value counts of personal or sensitive columns: a free-text
    column with few distinct values would otherwise put its raw values in ``catalog.release_notes``."""
    protected = {t.name for t in tiers if t.personal_data or rank(t.classification) > rank(OPEN_UP_TO)}
    if facts is None or not protected:
        return facts
    return {**facts, "labels": {k: v for k, v in facts["labels"].items() if k not in protected}}


def read(con: duckdb.DuckDBPyConnection, dataset: str, at: str = "") -> dict[str, dict]:
    """name -> {classification, protection, personal_data} of the dataset's columns that carry a tier
    (none for a catalog, or a version ``at``, from before column tiers existed)."""
    have = con.execute(f"SELECT * FROM {META_SCHEMA}.columns {at} LIMIT 0").description
    if "personal_data" not in [d[0] for d in have]:
        return {}
    rows = con.execute(
        f"SELECT name, classification, protection, personal_data FROM {META_SCHEMA}.columns {at} "
        "WHERE dataset = ? AND classification IS NOT NULL ORDER BY position", [dataset]).fetchall()
    return {name: {"classification": tier, "protection": protection, "personal_data": personal}
            for name, tier, protection, personal in rows}


def read_lake(lake: Lake, dataset: str) -> dict[str, dict]:
    """:func:`read` on a read-only connection of its own."""
    con = lake.connect(read_only=True)
    try:
        return read(con, dataset)
    finally:
        con.close()


def write(con: duckdb.DuckDBPyConnection, dataset: str, tiers: dict[str, dict]) -> None:
    """Set tiers as :func:`read` returns them (a rollback carries its version's tiers over)."""
    for name, t in tiers.items():
        con.execute(f"UPDATE {META_SCHEMA}.columns SET classification = ?, protection = ?, personal_data = ? "
                    "WHERE dataset = ? AND name = ?", [t["classification"], t["protection"], t["personal_data"],
                                                       dataset, name])


def withheld_from_open(con: duckdb.DuckDBPyConnection, dataset: str) -> set[str]:
    """The dataset's columns that open exports leave out: classified above ``OPEN_UP_TO``; a column
    without a recorded tier (a catalog from before column tiers) counts at the dataset's tier."""
    tiers = read(con, dataset)
    row = con.execute(f"SELECT classification FROM {META_SCHEMA}.datasets WHERE dataset = ?", [dataset]).fetchone()
    fallback = row[0] if row and row[0] else "restricted"
    department, name = dataset.split(".", 1)
    columns = [c for c, in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = 'lake' AND schema_name = ? AND table_name = ?",
        [department, name]).fetchall()]
    return {c for c in columns
            if rank(tiers.get(c, {}).get("classification") or fallback) > rank(OPEN_UP_TO)}


def withheld_by(tiers: dict[str, str]) -> set[str]:
    """Of ``column -> tier``, the columns open exports leave out (a city layer's or derived table's)."""
    return {c for c, tier in tiers.items() if rank(tier) > rank(OPEN_UP_TO)}
