"""Cross-department assets: a unified city layer per standard, and derived SQL datasets.

Both are downstream of the department datasets they read, so the lineage
graph shows where every city-wide table comes from; the city layers carry
column lineage back to each department's columns. They refresh on their own
when an input is published (eager automation condition).
"""

from __future__ import annotations

import dagster as dg

from twinhub.hub.home import Hub
from twinhub.hub.layers import (
    CITY_SCHEMA,
    DERIVED_SCHEMA,
    DerivedDataset,
    build_city_layer,
    build_derived,
    derived_datasets,
    highest_classification,
)
from twinhub.hub.registry import Registered


def _key(table: str) -> dg.AssetKey:
    return dg.AssetKey(table.split(".", 1))


def city_layer_asset(hub: Hub, standard_name: str, entries: list[Registered],
                     schema: dg.TableSchema) -> dg.AssetsDefinition:
    standard = hub.pack.standard(standard_name)
    inputs = [_key(e.id) for e in entries]
    columns = [dg.TableColumn("department", "string", "The department that published the row."),
               dg.TableColumn("dataset", "string", "The department's dataset the row comes from."),
               *schema.columns]
    lineage = dg.TableColumnLineage(deps_by_column={
        c: [dg.TableColumnDep(asset_key=k, column_name=c) for k in inputs] for c in standard.field_names
    })

    @dg.asset(
        key=[CITY_SCHEMA, standard_name], group_name=CITY_SCHEMA, deps=inputs, kinds={"duckdb"},
        description=f"**{standard.title}, city-wide**: every department's {standard_name} datasets in one "
                    f"table ({', '.join(e.id for e in entries)}).",
        tags={"standard": standard_name, "classification": highest_classification(
            [e.manifest.tier for e in entries])},
        metadata={"dagster/column_schema": dg.TableSchema(columns=columns),
                  "dagster/column_lineage": lineage,
                  "dagster/table_name": f"lake.{CITY_SCHEMA}.{standard_name}"},
        automation_condition=dg.AutomationCondition.eager(),
    )
    def _layer():
        rows = build_city_layer(hub, standard_name, entries)
        return dg.MaterializeResult(metadata={"dagster/row_count": rows})

    return _layer


def derived_asset(hub: Hub, derived: DerivedDataset, classification: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=[DERIVED_SCHEMA, derived.name], group_name=DERIVED_SCHEMA, deps=[_key(t) for t in derived.reads],
        kinds={"duckdb", "sql"}, tags={"classification": classification},
        description=f"Derived dataset defined in `{derived.path.name}`:\n\n```sql\n{derived.path.read_text()}\n```",
        metadata={"dagster/table_name": f"lake.{derived.id}", "sql_file": dg.MetadataValue.path(str(derived.path))},
        automation_condition=dg.AutomationCondition.eager(),
    )
    def _derived():
        return dg.MaterializeResult(metadata={"dagster/row_count": build_derived(hub, derived)})

    return _derived


def cross_department_assets(hub: Hub, entries: list[Registered],
                            schemas: dict[str, dg.TableSchema]) -> list[dg.AssetsDefinition]:
    by_standard: dict[str, list[Registered]] = {}
    for e in entries:
        by_standard.setdefault(e.manifest.standard, []).append(e)
    assets = [city_layer_asset(hub, s, members, schemas[s]) for s, members in sorted(by_standard.items())]
    tiers = {e.id: e.manifest.tier for e in entries}  # declared tiers, columns included
    tiers.update({f"{CITY_SCHEMA}.{s}": highest_classification([m.manifest.tier for m in members])
                  for s, members in by_standard.items()})
    known = set(tiers) | {f"{DERIVED_SCHEMA}.{p.stem}" for p in (hub.home / "derived").glob("*.sql")}
    for derived in derived_datasets(hub, known):
        assets.append(derived_asset(hub, derived, highest_classification([tiers.get(t, "internal") for t in derived.reads])))
    return assets
