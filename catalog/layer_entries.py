"""Catalog entries for the tables the hub builds, which ``catalog.datasets`` does not list:
city layers (``city.<standard>``) and derived tables (``derived.<name>``).

An entry is synthesized from the access rule (catalog/access.py ``load_tiers``): a derived table
carries the highest tier of its inputs, a city layer its inputs' tiers column by column. For open
exports a city layer keeps only the rows of inputs open exports may carry (``_rows``, a condition on
its ``department`` and ``dataset`` columns), and its tiers are those of these inputs alone: a
restricted input's rows never leave, and do not close the rest of the layer either.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlglot import exp

from twinhub.catalog.access import CITY, DERIVED, Tiers, load_tiers
from twinhub.catalog.lake import ALIAS, META_SCHEMA

BUILT = (CITY, DERIVED)  # the schemas of the tables the hub builds


def built_tables(con) -> list[str]:
    """The city layers and derived tables in the lake."""
    return [f"{s}.{t}" for s, t in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name IN (?, ?) "
        "ORDER BY 1, 2", [ALIAS, CITY, DERIVED]).fetchall()]


def synthesized(con, table: str, derived_inputs: dict[str, list[str]] | None,
                never_open: Collection[str]) -> dict | None:
    """The entry of a city layer or derived table (None when ``table`` is neither).

    Beside the columns of ``catalog.datasets``: ``_columns`` (column -> tier), ``_rows`` (a city
    layer's rows open exports may carry, a sqlglot condition: :func:`rows_of`) and ``_inputs``."""
    if table not in built_tables(con):
        return None
    schema, name = table.split(".", 1)
    tiers = load_tiers(con, derived_inputs)
    columns = [c for c, in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? AND table_name = ? "
        "ORDER BY column_index", [ALIAS, schema, name]).fetchall()]
    entries = _dataset_entries(con)
    if schema == CITY:
        inputs = [i for i in tiers.inputs.get(table, []) if tiers.datasets.get(i) not in never_open]
        if inputs:
            tiers = tiers_of(tiers, table, inputs)
        entry = {"title": f"City layer: {name}", "standard": name, "_rows": rows_of(inputs),
                 "description": f"Every department's {name} dataset in one table, with the department and dataset "
                                f"each row comes from: {', '.join(inputs) or 'none open'}."}
    else:
        inputs = list((derived_inputs or {}).get(table, []))
        entry = {"title": f"Derived: {name}", "standard": None,
                 "description": f"Derived by the hub from {', '.join(inputs) or 'its inputs'}."}
    sources = [entries[d] for d in _base_datasets(tiers, derived_inputs or {}, inputs) if d in entries]
    first = sources[0] if sources else next(iter(entries.values()), {})
    updated = [s["updated_at"] for s in sources if s.get("updated_at") is not None]
    entry.update(dataset=table, department=schema, classification=tiers.datasets.get(table, "restricted"),
                 standard_version=first.get("standard_version") if schema == CITY else None,
                 target_crs=first.get("target_crs"), updated_at=max(updated) if updated else None,
                 _inputs=inputs, _columns={c: tiers.column(table, c).tier for c in columns})
    return entry


def tiers_of(tiers: Tiers, layer: str, inputs: list[str]) -> Tiers:
    """The layer's tiers had it only ``inputs``: the same rule as load_tiers, on fewer inputs."""
    from twinhub.catalog.access import _inherit  # the rule itself, not a copy of it

    out = Tiers(datasets=dict(tiers.datasets), owners=dict(tiers.owners), columns=dict(tiers.columns),
                inputs={**tiers.inputs, layer: inputs})
    _inherit(out, layer, inputs, by_column=True)
    return out


def rows_of(inputs: list[str]) -> exp.Expression:
    """``("department" = 'a' AND "dataset" = 'x') OR ...``: a city layer's rows of ``inputs``; none: FALSE."""
    condition: exp.Expression = exp.false()
    for dataset in inputs:
        department, name = dataset.split(".", 1)
        one = exp.and_(exp.EQ(this=exp.column("department", quoted=True), expression=exp.Literal.string(department)),
                       exp.EQ(this=exp.column("dataset", quoted=True), expression=exp.Literal.string(name)))
        condition = exp.or_(condition, one)
    return condition


def _base_datasets(tiers: Tiers, derived_inputs: dict[str, list[str]], inputs: list[str], depth: int = 0) -> list[str]:
    """The departments' datasets ``inputs`` come from (through city layers and derived tables)."""
    out: list[str] = []
    for i in inputs:
        if depth < 8 and i in tiers.inputs:
            out += _base_datasets(tiers, derived_inputs, tiers.inputs[i], depth + 1)
        elif depth < 8 and i in derived_inputs:
            out += _base_datasets(tiers, derived_inputs, derived_inputs[i], depth + 1)
        else:
            out.append(i)
    return list(dict.fromkeys(out))


def _dataset_entries(con) -> dict[str, dict]:
    cursor = con.execute(f"SELECT * FROM {META_SCHEMA}.datasets ORDER BY dataset")
    names = [d[0] for d in cursor.description]
    entries = [dict(zip(names, row)) for row in cursor.fetchall()]
    return {e["dataset"]: e for e in entries}
