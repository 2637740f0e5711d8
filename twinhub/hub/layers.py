"""Cross-department tables the hub builds from published datasets.

- The unified city layer of a standard, ``city.<standard>``: every department's
  dataset of that standard in one table, with ``department`` and ``dataset``
  columns saying where each row comes from.
- Derived datasets, ``derived.<name>``: a steward's SELECT in the catalog's SQL,
  kept as ``<home>/derived/<name>.sql``. It passes the same guard as any query
  (one SELECT over catalog tables, allow-listed functions), and the tables it
  reads are its dependencies.
"""

from __future__ import annotations

import graphlib
import hashlib
import json
import pathlib
import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from twinhub.catalog.guard import prepare_query
from twinhub.catalog.lake import ALIAS, Lake, with_retry
from twinhub.errors import UserError
from twinhub.hub.home import Hub
from twinhub.hub.registry import NotRegistered, Registered, lookup, registered
from twinhub.standards.tiers import highest

CITY_SCHEMA = "city"
DERIVED_SCHEMA = "derived"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class LayerError(UserError, ValueError):
    pass


@dataclass(frozen=True)
class DerivedDataset:
    name: str
    path: pathlib.Path
    sql: str
    reads: tuple[str, ...]  # catalog tables it reads, "schema.table"

    @property
    def id(self) -> str:
        return f"{DERIVED_SCHEMA}.{self.name}"


LAYER_COMMENT = "twinhub inputs "  # + the fingerprint of the SELECT and its inputs' versions


def _replace_table(lake: Lake, schema: str, name: str, select: str, inputs: list[str] | tuple[str, ...]) -> int:
    """``schema.name`` becomes the result of ``select``, in one transaction; returns its row count.

    Nothing is written when neither ``select`` nor any of its ``inputs`` changed
    since the table was last built: an unchanged run makes no new catalog version.
    """
    con = lake.connect()
    target = exp.Table(this=exp.to_identifier(name, quoted=True), db=exp.to_identifier(schema, quoted=True))
    count = exp.select(exp.Count(this=exp.Star())).from_(target.copy()).sql(dialect="duckdb")
    try:
        with_retry(lambda: con.execute(exp.Create(this=exp.Table(this=exp.to_identifier(schema, quoted=True)),
                                                  kind="SCHEMA", exists=True).sql(dialect="duckdb")))
        fingerprint = LAYER_COMMENT + _fingerprint(select, lake.table_versions(con, list(inputs)))
        built = con.execute(
            "SELECT comment FROM duckdb_tables() WHERE database_name = ? AND schema_name = ? AND table_name = ?",
            [ALIAS, schema, name],
        ).fetchone()
        if built and built[0] == fingerprint:
            return con.execute(count).fetchone()[0]
        create = exp.Create(this=target.copy(), kind="TABLE", replace=True,
                            expression=sqlglot.parse_one(select, read="duckdb")).sql(dialect="duckdb")
        comment = exp.Comment(this=target.copy(), kind="TABLE",
                              expression=exp.Literal.string(fingerprint)).sql(dialect="duckdb")

        def replace() -> int:
            con.execute("BEGIN")
            try:
                con.execute(create)
                con.execute(comment)
                rows = con.execute(count).fetchone()[0]
                con.execute("COMMIT")
                return rows
            except BaseException:
                con.execute("ROLLBACK")
                raise

        return with_retry(replace, what=f"building {schema}.{name}")
    finally:
        con.close()


def _fingerprint(select: str, versions: dict[str, object]) -> str:
    facts = json.dumps({"select": select, "inputs": versions}, sort_keys=True, default=str)
    return hashlib.sha256(facts.encode()).hexdigest()


def published(lake: Lake, dataset_ids: list[str]) -> list[str]:
    """Which of ``dataset_ids`` have a table in the catalog."""
    con = lake.connect(read_only=True)
    try:
        tables = set(Lake.tables(con))
    finally:
        con.close()
    return [d for d in dataset_ids if d in tables]


def build_city_layer(hub: Hub, standard: str, entries: list[Registered]) -> int:
    """``city.<standard>``: the published datasets of ``standard`` in one table."""
    fields = hub.pack.standard(standard).field_names
    sources = published(hub.lake, [e.id for e in entries])
    if not sources:
        raise LayerError(f"no dataset of standard {standard} is published yet")
    select = city_layer_select(sources, fields)
    return _replace_table(hub.lake, CITY_SCHEMA, standard, select, sources)


def city_layer_select(sources: list[str], fields: list[str]) -> str:
    """``SELECT '<department>' AS department, '<dataset>' AS dataset, <fields> FROM <source> UNION ALL ...``,
    built as a syntax tree (names are identifiers, the provenance values literals).

        >>> print(city_layer_select(["water.p"], ["name"]))
        SELECT 'water' AS "department", 'p' AS "dataset", "name" FROM "water"."p"
    """
    selects = []
    for source in sources:
        department, dataset = source.split(".", 1)
        selects.append(exp.select(
            exp.alias_(exp.Literal.string(department), exp.to_identifier("department", quoted=True)),
            exp.alias_(exp.Literal.string(dataset), exp.to_identifier("dataset", quoted=True)),
            *(exp.column(exp.to_identifier(f, quoted=True)) for f in fields),
        ).from_(exp.Table(this=exp.to_identifier(dataset, quoted=True), db=exp.to_identifier(department, quoted=True))))
    union = selects[0]
    for select in selects[1:]:
        union = exp.union(union, select, distinct=False)
    return union.sql(dialect="duckdb")


def derived_dir(hub: Hub) -> pathlib.Path:
    return hub.home / "derived"


def derived_datasets(hub: Hub, known_tables: set[str]) -> list[DerivedDataset]:
    """Every ``<home>/derived/*.sql``, checked by the query guard against ``known_tables``."""
    out = []
    for path in sorted(derived_dir(hub).glob("*.sql")):
        name = path.stem
        if not NAME.match(name):
            raise LayerError(f"{path}: the file name becomes the table derived.{name}; use lower-case letters, "
                             "digits and _")
        sql = path.read_text(encoding="utf-8")
        prepared = prepare_query(sql, dialect="duckdb", tables=known_tables)
        out.append(DerivedDataset(name=name, path=path, sql=prepared.sql, reads=prepared.tables))
    return out


def build_derived(hub: Hub, derived: DerivedDataset) -> int:
    return _replace_table(hub.lake, DERIVED_SCHEMA, derived.name, derived.sql, derived.reads)


def highest_classification(levels: list[str]) -> str:
    """When in doubt, grade higher: a table built from several inherits the highest tier."""
    return highest(levels)


def known_tables(hub: Hub) -> set[str]:
    """The tables a derived dataset may read: running datasets, their city layers, derived tables."""
    running = registered(hub)
    known = {e.id for e in running} | {f"{CITY_SCHEMA}.{e.manifest.standard}" for e in running}
    return known | {f"{DERIVED_SCHEMA}.{p.stem}" for p in derived_dir(hub).glob("*.sql")}


def rebuild_downstream(hub: Hub, dataset_id: str) -> list[str]:
    """Rebuild, now, what reads ``dataset_id``'s served rows: the city layer of its standard (if built)
    and every derived table reading the dataset or that layer, directly or through another derived
    table (inputs first). What a rollback calls: the city layers would otherwise serve the rolled-back
    rows until the next run. Returns the tables rebuilt, in build order."""
    try:
        entry = lookup(hub, dataset_id, include_retired=True)
    except NotRegistered:  # in the catalog, no longer in the registry: in no city layer
        entry = None
    changed = {dataset_id}
    rebuilt = []
    layer = f"{CITY_SCHEMA}.{entry.manifest.standard}" if entry else ""
    if entry and entry.retired is None and published(hub.lake, [layer]):
        build_city_layer(hub, entry.manifest.standard,
                         [e for e in registered(hub) if e.manifest.standard == entry.manifest.standard])
        changed.add(layer)
        rebuilt.append(layer)
    built = derived_datasets(hub, known_tables(hub))
    exists = set(published(hub.lake, [d.id for d in built]))  # one not built yet waits for its next run
    derived = {d.id: d for d in built if d.id in exists}
    order = graphlib.TopologicalSorter({i: [t for t in d.reads if t in derived] for i, d in derived.items()})
    for table in order.static_order():  # a derived table after the derived tables it reads
        if changed & set(derived[table].reads):
            build_derived(hub, derived[table])
            changed.add(table)
            rebuilt.append(table)
    return rebuilt
