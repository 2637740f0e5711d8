"""One registry-driven factory: every registered dataset becomes a Dagster asset.

Each asset pulls its source, conforms it to its standard and publishes it to
the catalog (twinhub.ingest does the data work); its asset checks report
whether every row was accounted for and how many were quarantined. Catalog
metadata (owners, kinds, tags, column schema, table name, manifest link) is
set at definition time, so the UI shows it before any run.
"""

from __future__ import annotations

import re
import warnings

import dagster as dg

from connectors import ConfigProblem, SourceError
from standards.crs import UnknownCRS
from standards.pack import Standard, StandardsError
from twinhub.home import Hub
from twinhub.ingest import ingest
from twinhub.manifest import ManifestError
from twinhub.registry import Registered, lookup, registered

ALL_JOB = "all_datasets"
TAG_VALUE = re.compile(r"[^A-Za-z0-9_.\-]")
DEFAULT_MAX_QUARANTINED_SHARE = 0.05
FORCE_TAG = "twinhub/force"  # run tag: publish even when source and configuration are unchanged
PERMANENT = (SourceError, ConfigProblem, ManifestError, UnknownCRS, StandardsError)


def _tag(value: str) -> str:
    return TAG_VALUE.sub("-", value)[:63]


def column_schema(standard: Standard, pack) -> dg.TableSchema:
    """The standard's Table Schema as Dagster's column schema (for the Columns tab)."""
    columns = []
    for f in standard.fields:
        other = [f"{k}: {v}" for k, v in f.constraints.items() if k not in ("required", "unique")]
        vocab = f.custom.get("vocabulary")
        if vocab:
            other.append(f"vocabulary: {vocab} ({', '.join(pack.vocabulary(vocab).codes)})")
        if f.custom.get("geometryType"):
            other.append(f"geometry: {f.custom['geometryType']}")
        columns.append(
            dg.TableColumn(
                name=f.name,
                type="geometry" if f.type == "geojson" else f.type,
                description=f.description or f.title,
                constraints=dg.TableColumnConstraints(
                    nullable=not standard.required(f), unique=bool(f.constraints.get("unique")), other=other
                ),
            )
        )
    return dg.TableSchema(columns=columns)


def _manifest_reference(path: str) -> dg.CodeReferencesMetadataValue:
    with warnings.catch_warnings():  # code references are marked beta in Dagster 1.13
        warnings.simplefilter("ignore")
        return dg.CodeReferencesMetadataValue(
            code_references=[dg.LocalFileCodeReference(file_path=path, line_number=1, label="manifest")]
        )


def dataset_job_name(entry: Registered) -> str:
    # not "<department>__<dataset>": that is the asset's own op name
    return f"run_{entry.manifest.department}__{entry.manifest.dataset}"


def build_asset(hub: Hub, entry: Registered) -> dg.AssetsDefinition:
    m = entry.manifest
    standard = hub.pack.standard(m.standard)
    key = dg.AssetKey([m.department, m.dataset])
    description = f"**{m.title}**\n\n{m.description}".strip()
    owners = [f"team:{m.department}"] + ([m.steward] if m.steward else [])
    metadata = {
        "dagster/column_schema": column_schema(standard, hub.pack),
        "dagster/table_name": f"lake.{m.id}",
        "dagster/uri": f"ducklake:sqlite:{hub.lake.metadata}#{m.id}",
        "dagster/code_references": _manifest_reference(entry.manifest_path),
        "source": dg.MetadataValue.path(str(m.source.get("path"))),
        "standard": f"{standard.name} {standard.version}",
        "target_crs": hub.target_crs,
    }
    checks = [
        dg.AssetCheckSpec("rows_accounted_for", asset=key, blocking=True,
                          description="Every source row was published or quarantined: published + quarantined = read."),
        dg.AssetCheckSpec("quarantined_share", asset=key,
                          description=f"At most {DEFAULT_MAX_QUARANTINED_SHARE:.0%} of source rows were quarantined."),
    ]

    @dg.asset(
        key=key,
        group_name=m.department,
        description=description,
        owners=owners,
        kinds={m.source["format"], "duckdb"},
        tags={
            "standard": _tag(standard.name),
            "standard_version": _tag(standard.version),
            "classification": m.classification,
            "crs": _tag(hub.target_crs),
        },
        metadata=metadata,
        check_specs=checks,
        retry_policy=dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL),
    )
    def _dataset(context):
        try:
            current = lookup(hub, m.id)  # the manifest as registered now
            force = context.run.tags.get(FORCE_TAG) == "true"
            result = ingest(hub, current, run_id=context.run_id, force=force)
        except PERMANENT as exc:  # retrying cannot fix a bad source or manifest
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        share = result.rows_quarantined / result.rows_read if result.rows_read else 0.0
        counts = {
            "rows_read": result.rows_read,
            "rows_published": result.rows_published,
            "rows_quarantined": result.rows_quarantined,
        }
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": result.rows_published,
                **counts,
                "quarantined_share": share,
                **{f"rows_{k}": v for k, v in result.changes.items() if v is not None},
                "new_version": not result.unchanged,
                "catalog_version": result.snapshot_id,
                "extent": dg.MetadataValue.json(result.extent) if result.extent else None,
                "quarantine_reasons": dg.MetadataValue.json(result.reasons),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name="rows_accounted_for",
                    passed=result.rows_published + result.rows_quarantined == result.rows_read,
                    metadata=counts,
                ),
                dg.AssetCheckResult(
                    check_name="quarantined_share",
                    passed=share <= DEFAULT_MAX_QUARANTINED_SHARE,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"quarantined_share": share, "reasons": dg.MetadataValue.json(result.reasons)},
                ),
            ],
        )

    return _dataset


def build_definitions(hub: Hub) -> dg.Definitions:
    """Definitions for every dataset in ``hub``'s registry."""
    entries = registered(hub)
    assets = [build_asset(hub, e) for e in entries]
    jobs = [dg.define_asset_job(ALL_JOB, selection=dg.AssetSelection.all(), description="Run every registered dataset")]
    for department in sorted({e.manifest.department for e in entries}):
        jobs.append(
            dg.define_asset_job(f"department_{department}", selection=dg.AssetSelection.groups(department),
                                description=f"Run every dataset of {department}")
        )
    schedules = []
    for e in entries:
        if not e.manifest.schedule:
            continue
        job = dg.define_asset_job(dataset_job_name(e), selection=dg.AssetSelection.assets(dg.AssetKey([e.manifest.department, e.manifest.dataset])))
        jobs.append(job)
        schedules.append(
            dg.ScheduleDefinition(
                name=f"{e.manifest.department}__{e.manifest.dataset}_schedule",
                cron_schedule=e.manifest.schedule,
                job=job,
                execution_timezone=hub.city.timezone,
                default_status=dg.DefaultScheduleStatus.RUNNING,
                description=f"{e.manifest.title}: {e.manifest.schedule} ({hub.city.timezone})",
            )
        )
    return dg.Definitions(assets=assets, jobs=jobs, schedules=schedules)
