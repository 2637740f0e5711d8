"""One registry-driven factory: the Dagster definitions of every registered dataset.

Per dataset: a staging asset with its audit checks and a published asset
(pipelines/datasets.py); per manifest cron: a schedule; per department: a job
and a landing-folder sensor (pipelines/automation.py); per standard: a unified
city layer, and per SQL file in <home>/derived a derived dataset
(pipelines/layers.py). Dagster's own job of every asset runs everything.
"""

from __future__ import annotations

from collections import defaultdict

import dagster as dg

from twinhub.hub.home import Hub
from twinhub.hub.registry import registered
from twinhub.pipelines.automation import freshness_policy, landing_sensor, schedule_for
from twinhub.pipelines.datasets import (
    DEPARTMENT_TAG,
    FORCE_TAG,
    build_dataset_assets,
    column_schema,
    published_key,
    staged_key,
)
from twinhub.pipelines.layers import cross_department_assets

__all__ = ["FORCE_TAG", "build_definitions"]


def build_definitions(hub: Hub) -> dg.Definitions:
    """Definitions for every dataset in ``hub``'s registry."""
    entries = registered(hub)
    timezone = hub.city.timezone
    schemas: dict[str, dg.TableSchema] = {}  # one column schema per standard, shared by its datasets
    assets, keys, by_department = [], {}, defaultdict(list)
    for e in entries:
        standard = hub.pack.standard(e.manifest.standard)
        if standard.name not in schemas:
            schemas[standard.name] = column_schema(standard, hub.pack)
        schema = schemas[standard.name]
        assets.append(build_dataset_assets(hub, e, standard, schema, freshness_policy(e)))
        keys[e.id] = [staged_key(e), published_key(e)]
        by_department[e.manifest.department].append(e)

    assets += cross_department_assets(hub, entries, schemas)
    # No job of every asset besides Dagster's own (the catalog's "Materialize all", `twinhub run --all`):
    # a second one cost every process loading the code location ~1.5 s at 1,000 datasets.
    jobs = []
    sensors = []
    for department, members in sorted(by_department.items()):
        tags = {DEPARTMENT_TAG: department}
        jobs.append(dg.define_asset_job(f"department_{department}", selection=dg.AssetSelection.groups(department),
                                        tags=tags, description=f"Run every dataset of {department}"))
        if any(m.manifest.source.get("path") for m in members):  # databases and web APIs have no landing folder
            sensors.append(landing_sensor(department, members, keys, tags))
    schedules = []
    by_cron: dict[str, list] = defaultdict(list)  # one schedule per distinct cron keeps a large registry fast
    for e in entries:
        if e.manifest.schedule:
            by_cron[e.manifest.schedule].append(e)
    for cron, members in sorted(by_cron.items()):
        schedule = schedule_for(cron, members, [k for e in members for k in keys[e.id]], timezone)
        jobs.append(schedule.job)
        schedules.append(schedule)
    return dg.Definitions(assets=assets, jobs=jobs, schedules=schedules, sensors=sensors)
