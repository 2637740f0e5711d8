"""Materialize datasets through Dagster in-process, with the definitions the UI and schedules use.

Runs are recorded in the hub's Dagster instance (``<home>/dagster``), so the
UI started by ``twinhub ui`` shows runs made from the command line too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from twinhub.catalog.runs import served_versions, version_label
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
    version: int | None = None  # the catalog snapshot of the version this run published (or kept)
    new_version: bool | None = None
    changes: str = ""
    error: str | None = None
    # what the catalog serves after the run (catalog/runs.py served_versions): number, snapshot, run_id,
    # status, rows_read, rows_published, rows_quarantined; None when it serves no version of the dataset
    served: dict | None = None
    blocked_by: list[dict] = field(default_factory=list)  # blocking audits that failed (blocked_checks)

    @property
    def status(self) -> str:
        if self.ok:
            return {True: "published", False: "unchanged", None: "kept"}[self.new_version]
        return "blocked" if self.blocked_by else "failed"

    @property
    def rows_filtered(self) -> int | None:
        """Rows the manifest's ``filter`` left out: the rest of what was read (read = published + quarantined +
        filtered, checked at publish)."""
        if None in (self.rows_read, self.rows_published, self.rows_quarantined):
            return None
        return self.rows_read - self.rows_published - self.rows_quarantined

    @property
    def served_label(self) -> str:
        """``v3 (snapshot 21)``: the version served after the run (empty for city layers and derived tables)."""
        return version_label(self.served["number"], self.served["snapshot"]) if self.served else ""

    @property
    def number(self) -> int | None:
        """This run's version number for the dataset (the served one for an unchanged run)."""
        return self.served["number"] if self.ok and self.served else None


@dataclass
class RunSummary:
    run_id: str
    outcomes: list[DatasetOutcome]

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)


def _value(value):
    return getattr(value, "value", value)


def blocked_checks(evaluations, dataset: str) -> list[dict]:
    """The blocking audits of ``dataset`` that failed, from Dagster's check evaluations: each its
    ``check``, ``facts`` (rows failing, share, limit, per check) and ``sample`` (failing rows with their
    reasons; protected columns' values were redacted before they left the run)."""
    department, name = dataset.split(".", 1)
    out = []
    for e in evaluations:
        if e.passed or e.severity != dg.AssetCheckSeverity.ERROR or list(e.asset_key.path) != [department,
                                                                                             f"{name}_staged"]:
            continue
        metadata = {k: _value(v) for k, v in (e.metadata or {}).items()}
        out.append({"check": e.check_name, "sample": metadata.pop("failing_rows_sample", None) or [],
                    "facts": metadata})
    return out


def recorded_blocks(hub: Hub, run_id: str, dataset: str) -> list[dict]:
    """:func:`blocked_checks` of a past run, as the hub's Dagster instance recorded them."""
    with instance_for(hub) as instance:
        events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    return blocked_checks([e.dagster_event.event_specific_data for e in events if e.dagster_event], dataset)


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
    evaluations = result.get_asset_check_evaluations()
    served = served_versions(hub.lake, ids)
    outcomes = []
    for i in ids:
        meta, now = materialized.get(i), served.get(i)
        if meta is not None:
            value = lambda k, meta=meta: meta[k].value if k in meta else None  # noqa: E731
            changes = ", ".join(f"{k} {value('rows_' + k)}" for k in ("added", "updated", "deleted")
                                if value("rows_" + k) is not None)
            outcome = DatasetOutcome(i, True, value("rows_read"), value("rows_published"), value("rows_quarantined"),
                                     value("catalog_version"), value("new_version"), changes, served=now)
            if not outcome.new_version and now:  # unchanged: the served version's figures (a rollback's too)
                outcome.rows_published, outcome.rows_quarantined = now["rows_published"], now["rows_quarantined"]
                outcome.version = now["snapshot"]
            outcomes.append(outcome)
        elif refused := blocked_checks(evaluations, i):
            names = ", ".join(b["check"] for b in refused)
            outcomes.append(DatasetOutcome(i, False, error=f"not published: blocked by the audit ({names}); "
                                                           f"{_kept(now)}", served=now, blocked_by=refused))
        else:
            step = failures.get(i.replace(".", "__") + "_staged") or failures.get(i.replace(".", "__"))
            outcomes.append(DatasetOutcome(i, False, error=f"{step or 'not materialized'}; {_kept(now)}", served=now))
    layers = sorted({".".join(k.path) for k in keys if k.path[0] in (CITY_SCHEMA, DERIVED_SCHEMA)})
    for table in layers:
        meta, failed = materialized.get(table), failures.get(table.replace(".", "__"))
        if meta is not None:
            outcomes.append(DatasetOutcome(table, True, rows_published=meta["dagster/row_count"].value, new_version=True))
        elif failed:
            outcomes.append(DatasetOutcome(table, False, error=failed))
        else:  # skipped: an input published nothing in this run; the table serves what it held before
            outcomes.append(DatasetOutcome(table, True, new_version=None,
                                           changes="not rebuilt: an input was not published in this run"))
    return RunSummary(run_id=result.run_id, outcomes=outcomes)


def _kept(served: dict | None) -> str:
    """What a run that published nothing leaves served."""
    if served is None:
        return "no version is served yet"
    return (f"{version_label(served['number'], served['snapshot'])} stays served ({served['rows_published']} "
            f"published, {served['rows_quarantined']} quarantined)")
