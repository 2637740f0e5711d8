"""The access rule: what one consumer may read of each catalog column.

* Public columns are readable by everyone; a department reads its own
  datasets fully.
* Anything else needs an unexpired grant on that dataset (catalog/grants.py);
  its level is the highest column tier read in clear.
* Above the level, a ``sensitive`` column protected by ``mask`` or
  ``pseudonymize`` is read protected; any other column (unprotected, or
  ``restricted``) may not be used at all, anywhere in a query.
* ``city.<standard>`` layers and ``derived.*`` datasets carry the highest
  tier of their inputs (column by column for city layers) and have grants of
  their own. A table the rule cannot place is treated as restricted.
* Of the hub's own ``catalog.*`` tables, consumers read the descriptive ones
  (:data:`OPEN_META`); the others (the audit log, runs, quarantined rows, ...:
  they hold source values or others' queries) are for stewards.

Column tiers come from ``catalog.columns`` (classification, protection) where
the catalog has them; a column without one has its dataset's tier.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb
from sqlglot import exp

from twinhub.catalog.grants import TIERS, Consumer, Grant
from twinhub.catalog.lake import ALIAS, META_SCHEMA

CLEAR, PROTECTED, BLOCKED = "clear", "protected", "blocked"
PROTECTIONS = ("mask", "pseudonymize")
CITY, DERIVED = "city", "derived"
PROVENANCE = ("department", "dataset")  # the columns a city layer adds to its inputs' (twinhub/layers.py)
# the hub's own tables a consumer reads; any other (audit, runs, quarantine, release notes with label counts
# and extents, row sources with keys, and whatever is added later) is for stewards
OPEN_META = frozenset({"datasets", "columns", "versions", "quality", "report_datasets", "report_departments"})


def rank(tier: str) -> int:
    return TIERS.index(tier) if tier in TIERS else len(TIERS) - 1  # unknown: the highest


def highest(tiers: list[str]) -> str:
    return TIERS[max((rank(t) for t in tiers), default=len(TIERS) - 1)]


@dataclass(frozen=True)
class ColumnTier:
    tier: str
    protection: str | None = None  # mask | pseudonymize | None


@dataclass(frozen=True)
class Decision:
    kind: str  # clear | protected | blocked
    protection: str | None = None
    reason: str = ""


@dataclass
class Tiers:
    """Every catalog table's tier, owner and declared column tiers."""

    datasets: dict[str, str] = field(default_factory=dict)  # table -> tier
    owners: dict[str, str] = field(default_factory=dict)  # departments' datasets -> department
    columns: dict[str, dict[str, ColumnTier]] = field(default_factory=dict)  # table -> column -> tier
    inputs: dict[str, list[str]] = field(default_factory=dict)  # city layer -> the datasets its rows come from

    def column(self, table: str, column: str) -> ColumnTier:
        declared = self.columns.get(table, {}).get(column)
        return declared or ColumnTier(self.datasets.get(table, TIERS[-1]))


def load_tiers(con: duckdb.DuckDBPyConnection, derived_inputs: dict[str, list[str]] | None = None) -> Tiers:
    """Tiers from ``catalog.datasets`` and ``catalog.columns``; ``derived_inputs`` maps each
    ``derived.<name>`` to the tables its SQL reads (the hub knows them, the catalog does not)."""
    tiers = Tiers()
    standards: dict[str, list[str]] = {}
    for dataset, department, tier, standard in con.execute(
        f"SELECT dataset, department, classification, standard FROM {META_SCHEMA}.datasets"
    ).fetchall():
        tiers.datasets[dataset], tiers.owners[dataset] = tier or TIERS[-1], department
        standards.setdefault(standard, []).append(dataset)
    tiers.columns = _declared_columns(con)
    for standard, members in standards.items():
        _inherit(tiers, f"{CITY}.{standard}", members, by_column=True)
        tiers.inputs[f"{CITY}.{standard}"] = sorted(members)
    pending = dict(derived_inputs or {})
    for _ in range(len(pending) + 1):  # derived datasets may read each other: resolve in rounds
        for table, inputs in list(pending.items()):
            if all(i in tiers.datasets or not i.startswith(f"{DERIVED}.") for i in inputs):
                _inherit(tiers, table, inputs, by_column=False)
                del pending[table]
    return tiers


def stricter(then: Tiers, now: Tiers) -> Tiers:
    """Per table and column, the higher of two tiers (a tie: unprotected wins, it is the stricter)."""
    out = Tiers(owners={**then.owners, **now.owners}, inputs={**then.inputs, **now.inputs})
    for table in set(then.datasets) | set(now.datasets):
        out.datasets[table] = highest([t.datasets[table] for t in (then, now) if table in t.datasets])
        names = set(then.columns.get(table, {})) | set(now.columns.get(table, {}))
        out.columns[table] = {c: _stricter_column(then.column(table, c), now.column(table, c)) for c in names}
    return out


def _stricter_column(a: ColumnTier, b: ColumnTier) -> ColumnTier:
    if rank(a.tier) != rank(b.tier):
        return a if rank(a.tier) > rank(b.tier) else b
    return a if a.protection is None else b


def _inherit(tiers: Tiers, table: str, inputs: list[str], by_column: bool) -> None:
    """A table built from ``inputs`` carries their highest tier; a city layer, column by column."""
    tiers.datasets[table] = highest([tiers.datasets.get(i, TIERS[-1]) for i in inputs])
    if not by_column:
        return
    names = {c for i in inputs for c in tiers.columns.get(i, {})}
    merged = {}
    for name in names:
        parts = [tiers.column(i, name) for i in inputs]
        protections = {p.protection for p in parts}
        common = protections.pop() if len(protections) == 1 else None  # protected alike in every input, or not
        merged[name] = ColumnTier(highest([p.tier for p in parts]), common)
    if merged:  # which department and dataset a row comes from: no more than any of its readable columns tell
        least = TIERS[min(rank(c.tier) for c in merged.values())]
        merged.update({c: ColumnTier(least) for c in PROVENANCE})
    tiers.columns[table] = merged


def _declared_columns(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, ColumnTier]]:
    """Column tiers from ``catalog.columns`` if this catalog records them (older ones do not)."""
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? AND table_name = ?",
        [ALIAS, META_SCHEMA, "columns"],
    ).fetchall()}
    if "classification" not in have:
        return {}
    name = exp.column("column_name" if "column_name" in have else "name")
    protection = exp.column("protection") if "protection" in have else exp.null()
    select = exp.select(exp.column("dataset"), name, exp.column("classification"), protection) \
        .from_(exp.table_("columns", db=META_SCHEMA)).where(exp.column("classification").is_(exp.null()).not_())
    out: dict[str, dict[str, ColumnTier]] = {}
    for dataset, column, tier, protect in con.execute(select.sql(dialect="duckdb")).fetchall():
        out.setdefault(dataset, {})[column] = ColumnTier(tier, protect if protect in PROTECTIONS else None)
    return out


@dataclass
class Access:
    """What ``consumer`` may read on ``today``, given the catalog's ``tiers`` and the consumer's ``grants``."""

    consumer: Consumer
    tiers: Tiers
    grants: list[Grant]
    today: dt.date

    def grant(self, table: str) -> Grant | None:
        return next((g for g in self.grants if g.dataset == table and g.consumer == self.consumer.name), None)

    def decide(self, table: str, column: str) -> Decision:
        schema = table.split(".", 1)[0]
        if schema == META_SCHEMA:
            return self._meta(table)
        tier = self.tiers.column(table, column)
        if tier.tier == "public":
            return Decision(CLEAR)
        if self.consumer.department and self.tiers.owners.get(table) == self.consumer.department:
            return Decision(CLEAR)
        grant = self.grant(table)
        if grant is None or not grant.active(self.today):
            return Decision(BLOCKED, reason=self._refusal(table, column, tier.tier, grant))
        if rank(tier.tier) <= rank(grant.level):
            return Decision(CLEAR)
        if tier.protection in PROTECTIONS and tier.tier != "restricted":
            return Decision(PROTECTED, protection=tier.protection)
        return Decision(BLOCKED, reason=self._refusal(table, column, tier.tier, grant))

    def readable_inputs(self, table: str) -> list[str] | None:
        """For a city layer, the input datasets whose rows the consumer may read; None for any other
        table (every row). An input's rows are readable when the input is public, of the consumer's own
        department, granted to the consumer, or classified no higher than the consumer's grant on the
        layer: an internal grant on the layer does not open the rows of a restricted input.
        """
        if table not in self.tiers.inputs:
            return None
        layer = self.grant(table)
        level = rank(layer.level) if layer is not None and layer.active(self.today) else -1
        return [d for d in self.tiers.inputs[table]
                if rank(self.tiers.datasets.get(d, TIERS[-1])) <= level or self._reads_rows_of(d)]

    def _reads_rows_of(self, dataset: str) -> bool:
        if self.tiers.datasets.get(dataset) == "public":
            return True
        if self.consumer.department and self.tiers.owners.get(dataset) == self.consumer.department:
            return True
        grant = self.grant(dataset)
        return grant is not None and grant.active(self.today)

    def _meta(self, table: str) -> Decision:
        if table.split(".", 1)[1] in OPEN_META:
            return Decision(CLEAR)
        return Decision(BLOCKED, reason=f"{self.consumer.name} may not read {table}: it is for the hub's stewards "
                                        "(it holds source values or other consumers' queries)")

    def _refusal(self, table: str, column: str, tier: str, grant: Grant | None) -> str:
        who, what = self.consumer.name, table if column == "*" else f"{table}.{column}"
        until = "--until YYYY-MM-DD"
        if grant is None:
            return (f"{who} may not read {what} ({tier}): {who} has no grant on {table}; a steward can give one: "
                    f"twinhub grants add {who} {table} {until} --level {tier}")
        if not grant.active(self.today):
            return (f"{who} may not read {what} ({tier}): its grant on {table} expired on {grant.until}; "
                    f"a steward can renew it: twinhub grants renew {who} {table} {until}")
        return (f"{who} may not read {what} ({tier}): its grant on {table} allows up to {grant.level}; "
                f"a {tier} grant would allow it: twinhub grants add {who} {table} {until} --level {tier}")
