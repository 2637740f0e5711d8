"""Schedules, freshness and landing-folder sensors, all from the registry.

A manifest's cron is its schedule (in the city's timezone) and its cadence
(standards/cadence.py, the reader the score and `twinhub report` use): a
dataset not refreshed for one cadence shows as late (a warning), and for one
and a half as failing its freshness (the `twinhub report` rule).
Each department's landing folders (where its file sources live) are watched:
a new or changed file starts a run of that dataset; the run key (file, size,
mtime) means one run per file version.
"""

from __future__ import annotations

import functools
import json
import pathlib
import re

import dagster as dg

from twinhub.hub.registry import Registered
from twinhub.standards.cadence import GRACE, cron_interval

SENSOR_INTERVAL_S = 30


def freshness_policy(entry: Registered) -> dg.FreshnessPolicy | None:
    """The dataset's freshness policy from its manifest's cron; None without a schedule.

    No timezone: the city's places the schedule's ticks, but the cadence is the same in every timezone.
    """
    return policy_for(entry.manifest.schedule) if entry.manifest.schedule else None


@functools.lru_cache(maxsize=None)
def policy_for(cron: str) -> dg.FreshnessPolicy | None:
    """Late after one cadence, failing after 1.5 (the run of the next tick gets half an interval).

    A time window rather than Dagster's cron policy: every process reading the code
    location (webserver, daemon) rebuilds each asset's policy from the snapshot, and a
    cron policy walks ~1,000 cron ticks when built (20-80 ms): 1,000 datasets took the
    webserver over a minute to load.
    """
    interval = cron_interval(cron)
    if interval is None:  # the manifest check refuses such a schedule; a registry edited by hand may have one
        return None
    return dg.FreshnessPolicy.time_window(fail_window=interval * GRACE, warn_window=interval)


def schedule_name(cron: str) -> str:
    """``0 2 * * *`` -> ``at_0_2_x_x_x``: a stable name for the datasets sharing a cron."""
    return "at_" + re.sub(r"[^A-Za-z0-9]+", "_", cron.replace("*", "x")).strip("_")


def schedule_for(cron: str, members: list[Registered], keys: list[dg.AssetKey], timezone: str) -> dg.ScheduleDefinition:
    """The schedule (and its job) of every dataset whose manifest says ``cron``."""
    names = ", ".join(e.id for e in members)
    job = dg.define_asset_job(f"{schedule_name(cron)}_job", selection=dg.AssetSelection.assets(*keys),
                              description=f"Datasets scheduled at {cron} ({timezone}): {names}")
    return dg.ScheduleDefinition(
        name=schedule_name(cron),
        cron_schedule=cron,
        job=job,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"{cron} ({timezone}): {names}",
    )


def _source_state(path: pathlib.Path) -> str | None:
    """Size and modification time of a file source (newest file of a folder source)."""
    try:
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        stats = [p.stat() for p in files]
    except OSError:
        return None
    if not stats:
        return None
    return f"{sum(s.st_size for s in stats)}:{max(s.st_mtime_ns for s in stats)}"


def landing_sensor(department: str, entries: list[Registered], keys: dict[str, list[dg.AssetKey]],
                   tags: dict[str, str]) -> dg.SensorDefinition:
    """Start a run for each of ``department``'s file sources that is new or changed since the last tick."""
    watched = {e.id: pathlib.Path(e.manifest.source["path"]) for e in entries if e.manifest.source.get("path")}
    folders = sorted({str(p.parent) for p in watched.values()})

    @dg.sensor(
        name=f"landing_{department}",
        minimum_interval_seconds=SENSOR_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        asset_selection=[k for dataset in watched for k in keys[dataset]],
        description=f"Watches {department}'s landing folders ({', '.join(folders)}) and runs a dataset "
                    "when its file is new or changed.",
    )
    def _sensor(context: dg.SensorEvaluationContext):
        now = {dataset: _source_state(path) for dataset, path in watched.items()}
        if context.cursor is not None:  # the first tick only takes stock of what is there
            seen = json.loads(context.cursor)
            for dataset, state in sorted(now.items()):
                if state is not None and seen.get(dataset) != state:
                    yield dg.RunRequest(run_key=f"{dataset}@{state}", asset_selection=keys[dataset], tags=tags)
        context.update_cursor(json.dumps(now))

    return _sensor
