"""Column tiers in the catalog: ``catalog.columns``' classification, protection and personal_data.

Written inside the publishing transaction (after catalog/notes.py has rewritten
the dataset's rows of ``catalog.columns``), read by exports (columns above the
open audience are left out) and by query-time enforcement (catalog/access.py).
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from catalog.lake import META_SCHEMA, Lake
from standards.tiers import ColumnTier, rank

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


def read(con: duckdb.DuckDBPyConnection, dataset: str) -> dict[str, dict]:
    """name -> {classification, protection, personal_data} of the dataset's columns that carry a tier
    (none for a catalog made before column tiers existed)."""
    if not con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE database_name = 'lake' AND schema_name = ? "
        "AND table_name = 'columns' AND column_name = 'personal_data'", [META_SCHEMA]).fetchone()[0]:
        return {}
    rows = con.execute(
        f"SELECT name, classification, protection, personal_data FROM {META_SCHEMA}.columns "
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


def withheld_from_open(con: duckdb.DuckDBPyConnection, dataset: str) -> set[str]:
    """The dataset's columns that open exports leave out (classified above ``OPEN_UP_TO``)."""
    return {name for name, t in read(con, dataset).items() if rank(t["classification"]) > rank(OPEN_UP_TO)}
