"""Materialize datasets through Dagster in-process, with the definitions the UI and schedules use.

Runs are recorded in the hub's Dagster instance (``<home>/dagster``), so the
UI started by ``twinhub ui`` shows runs made from the command line too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import dagster as dg

from twinhub.hub.home import Hub
from twinhub.hub.layers import CITY_SCHEMA, DERIVED_SCHEMA
from twinhub.hub.locks import file_lock
from twinhub.hub.registry import lookup, registered
from twinhub.pipelines.datasets import WAIT_TAG, published_key, staged_key
from twinhub.pipelines.factory import FORCE_TAG, build_definitions

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass
class DatasetOutcome:
    dataset: str
    ok: bool
    rows_read: int | None = None
    rows_published: int | None = None
    rows_quarantined: int | None = None
    version: int | None = None
    new_version: bool | None = None
    changes: str = ""
    error: str | None = None


@dataclass
class RunSummary:
    run_id: str
    outcomes: list[DatasetOutcome]

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)


def _root_message(error) -> str:
    """The message of the error the dataset's code raised, not Dagster's wrappers around it.

    Dagster reports "Error occurred while executing op" or, after retries,
    "Exceeded max_retries"; the hub's own error (e.g. a SourceError naming
    the file) is further down the cause chain.
    """
    if error is None:
        return "failed"
    while error.cause is not None and (error.cls_name or "").startswith(("Dagster", "RetryRequested")):
        error = error.cause
    message = error.message.strip()
    prefix = f"{error.cls_name}: "
    if error.cls_name == "Failure" and prefix in message:
        message = message.split(prefix, 1)[1]
    return message


def instance_for(hub: Hub) -> dg.DagsterInstance:
    hub.init()  # creates the instance's dagster.yaml if missing
    ready = hub.dagster_home / ".storage-ready"
    if ready.exists():
        return dg.DagsterInstance.from_config(str(hub.dagster_home))
    # opening a new instance creates its SQLite tables: two first runs at once collided ("table runs already exists")
    with file_lock(hub.dagster_home / ".storage.lock"):
        instance = dg.DagsterInstance.from_config(str(hub.dagster_home))
        ready.touch()
    return instance


def run_datasets(hub: Hub, datasets: list[str] | None = None, force: bool = False, wait: bool = False) -> RunSummary:
    """Materialize ``datasets`` (ids such as ``water.pumping_stations``), or all when None.

    With ``force``, datasets are republished even when nothing changed; with ``wait``, a dataset
    another run is publishing is waited for rather than failed ("publish in progress").
    """
    entries = [lookup(hub, d) for d in datasets] if datasets else registered(hub)
    if not entries:
        return RunSummary(run_id="", outcomes=[])
    ids = [e.id for e in entries]
    defs = build_definitions(hub)
    # the datasets, and the city layers and derived datasets built from them
    selection = dg.AssetSelection.assets(*[k for e in entries for k in (staged_key(e), published_key(e))])
    keys = list(selection.downstream().resolve(defs.resolve_asset_graph()))
    with instance_for(hub) as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=keys, raise_on_error=False, run_config=QUIET,
            tags={"twinhub/trigger": "cli", FORCE_TAG: str(force).lower(), WAIT_TAG: str(wait).lower()},
        )
    materialized = {".".join(e.asset_key.path): e.materialization.metadata for e in result.get_asset_materialization_events()}
    failures = {e.step_key: _root_message(e.step_failure_data.error) for e in result.get_step_failure_events()}
    refused = defaultdict(list)  # dataset -> blocking audits that failed
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            department, staged = evaluation.asset_key.path
            refused[f"{department}.{staged.removesuffix('_staged')}"].append(evaluation.check_name)
    outcomes = []
    for i in ids:
        meta = materialized.get(i)
        if meta is not None:
            value = lambda k, meta=meta: meta[k].value if k in meta else None  # noqa: E731
            changes = ", ".join(f"{k} {value('rows_' + k)}" for k in ("added", "updated", "deleted")
                                if value("rows_" + k) is not None)
            outcomes.append(
                DatasetOutcome(i, True, value("rows_read"), value("rows_published"), value("rows_quarantined"),
                               value("catalog_version"), value("new_version"), changes)
            )
        elif refused.get(i):
            outcomes.append(DatasetOutcome(i, False, error=f"not published: blocked by the audit ({', '.join(refused[i])}); "
                                                         f"the failing rows are in its staging checks in the Dagster UI"))
        else:
            step = failures.get(i.replace(".", "__") + "_staged") or failures.get(i.replace(".", "__"))
            outcomes.append(DatasetOutcome(i, False, error=step or "not materialized"))
    layers = sorted({".".join(k.path) for k in keys if k.path[0] in (CITY_SCHEMA, DERIVED_SCHEMA)})
    for table in layers:
        meta = materialized.get(table)
        outcomes.append(DatasetOutcome(table, True, rows_published=meta["dagster/row_count"].value, new_version=True)
                        if meta is not None else
                        DatasetOutcome(table, False, error=failures.get(table.replace(".", "__"), "not built: an input "
                                                                        "was not published in this run")))
    return RunSummary(run_id=result.run_id, outcomes=outcomes)
