"""Each registered dataset as two Dagster assets: write, audit, publish.

``<department>/<dataset>_staged`` pulls and conforms the source into the stage
and carries the audit as asset checks; the blocking ones (schema, CRS and
geometry, row-count drop: ERROR) stop ``<department>/<dataset>`` from
publishing, so a stage that fails them never reaches the catalog. Both assets
are one op (a multi-asset), which enforces that order itself. Catalog
metadata (owners, kinds, tags, column schema, table name, manifest link) is set
at definition time, so the UI shows it before any run.
"""

from __future__ import annotations

import base64
import json
import re
import warnings
from typing import TYPE_CHECKING

import dagster as dg

from twinhub.errors import is_retryable
from twinhub.hub.home import Hub
from twinhub.hub.registry import Registered, lookup

if TYPE_CHECKING:
    from twinhub.standards.pack import Standard, StandardsPack

# What running a dataset needs (pandas, GDAL, DuckDB, PIL...) is imported inside the op's
# functions: the webserver and daemon load these definitions without ever running an op.

FORCE_TAG = "twinhub/force"  # run tag: publish even when source and configuration are unchanged
WAIT_TAG = "twinhub/wait"  # run tag: wait for another run publishing the same dataset instead of failing
DEPARTMENT_TAG = "twinhub/department"  # run tag the production run coordinator limits per value
TRANSIENT_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)
TAG_VALUE = re.compile(r"[^A-Za-z0-9_.\-]")


def permanent(exc: BaseException) -> bool:
    """Retrying cannot fix it: the error's type says so (twinhub/errors.py ``retryable``), e.g. a bad source
    or manifest, another run publishing the dataset, a full disk (it stays full for the next seconds:
    failing at once spares it a retry storm). Errors of other libraries are retried."""
    return not is_retryable(exc)


def _tag(value: str) -> str:
    return TAG_VALUE.sub("-", value)[:63]


def staged_key(entry: Registered) -> dg.AssetKey:
    return dg.AssetKey([entry.manifest.department, f"{entry.manifest.dataset}_staged"])


def published_key(entry: Registered) -> dg.AssetKey:
    return dg.AssetKey([entry.manifest.department, entry.manifest.dataset])


def column_schema(standard: Standard, pack: StandardsPack) -> dg.TableSchema:
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


def _check_result(audit, privacy: dict | None = None) -> dg.AssetCheckResult:
    from twinhub.hub.redact import redact_sample

    metadata = {k: dg.MetadataValue.json(v) if isinstance(v, (dict, list)) else v for k, v in audit.facts.items()}
    if audit.sample:  # protected columns' values never leave the run (Dagster stores and shows metadata)
        metadata["failing_rows_sample"] = dg.MetadataValue.json(redact_sample(audit.sample, privacy))
    return dg.AssetCheckResult(
        check_name=audit.name,
        passed=audit.passed,
        severity=dg.AssetCheckSeverity.ERROR if audit.blocking else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )


AUDITS = {
    "rows_accounted_for": (True, "Every source row is staged, quarantined or filtered: conforming + quarantined + filtered "
                                 "= read."),
    "schema": (True, "The share of rows failing the standard's types, required fields, ranges and keys is under "
                     "the manifest's quality.max_schema_failure_share; otherwise publication is blocked."),
    "crs_and_geometry": (True, "The share of rows outside the city or with bad geometry is under "
                               "quality.max_geometry_failure_share (a wrong CRS fails most rows); else blocked."),
    "label_coverage": (False, "The share of rows whose labels map to the vocabulary is at least "
                              "quality.min_label_coverage (a warning: unmapped rows wait in quarantine)."),
    "row_count_drop": (True, "Conforming rows fell no more than quality.max_row_drop below the served version."),
    "completeness": (False, "No sign of an export cut off at a page or row limit: groups sharing one round "
                            "maximum count (900 per district), a round total (1000, 65535), or far fewer rows "
                            "than the city's other datasets of the standard (a warning)."),
    "crs_offset": (False, "The rows do not sit about one GCJ-02 or BD-09 offset away from the published features "
                          "of the same standard (points read off a Chinese web map declared WGS 84; a warning)."),
}


def build_dataset_assets(hub: Hub, entry: Registered, standard: Standard, schema: dg.TableSchema,
                         freshness: dg.FreshnessPolicy | None) -> dg.AssetsDefinition:
    """One op per dataset with two assets: the stage (carrying the audit) and the published table.

    One op rather than two keeps definition loading fast at a thousand datasets;
    the op enforces the audit itself: a failed blocking check means the published
    asset is not materialized (and its downstream city layers wait).
    """
    m = entry.manifest
    staged, published = staged_key(entry), published_key(entry)
    owners = [f"team:{m.department}"] + ([m.steward] if m.steward else [])
    tags = {"standard": _tag(standard.name), "standard_version": _tag(standard.version),
            "classification": m.tier, "crs": _tag(hub.target_crs)}
    reference = _manifest_reference(entry.manifest_path)
    source = str(m.source.get("path") or m.source.get("url") or m.source.get("table") or "")
    specs = [
        dg.AssetSpec(
            staged, group_name=m.department, owners=owners, kinds={m.source["format"], "parquet"}, tags=tags,
            description=f"Staging of **{m.title}**: pulled from the department's source, mapped to "
                        f"{standard.name} {standard.version} and reprojected; audited before publishing.",
            metadata={"source": dg.MetadataValue.path(source), "dagster/code_references": reference},
        ),
        dg.AssetSpec(
            published, deps=[staged], group_name=m.department, owners=owners, skippable=True,
            description=f"**{m.title}**\n\n{m.description}".strip(),
            kinds={m.source["format"], "duckdb", "geoparquet"}, tags=tags, freshness_policy=freshness,
            metadata={
                "dagster/column_schema": schema,
                "dagster/table_name": f"lake.{m.id}",
                "dagster/uri": f"{hub.lake.uri}#{m.id}",
                "dagster/code_references": reference,
                "standard": f"{standard.name} {standard.version}",
                "target_crs": hub.target_crs,
                "schedule": m.schedule or "",
            },
        ),
    ]
    checks = [dg.AssetCheckSpec(name, asset=staged, blocking=block, description=text)
              for name, (block, text) in AUDITS.items()]

    @dg.multi_asset(name=f"{m.department}__{m.dataset}", specs=specs, check_specs=checks, can_subset=True,
                    retry_policy=TRANSIENT_RETRY)
    def _dataset(context):
        from twinhub.hub.ingest import discard_stage
        from twinhub.hub.locks import hold_dataset

        current = _current(hub, m.id)
        selected = context.selected_asset_keys
        wait = context.run.tags.get(WAIT_TAG) == "true"
        with _permanent_errors(lambda: hold_dataset(hub, m, context.run_id, wait=wait)):  # one publisher at a time
            if staged in selected:
                passed = yield from _stage_and_audit(context, hub, current, staged)
                if published not in selected:  # an audit-only run: the stage is not kept
                    if passed is not None:
                        discard_stage(hub, current, context.run_id, "audit only: publishing was not selected")
                    return
                if not passed:
                    return
            if published in selected:
                yield _publish(context, hub, current, published)

    return _dataset


def _stage_and_audit(context, hub: Hub, current: Registered, staged: dg.AssetKey):
    """Stage the dataset and audit it; returns whether it may be published (None: nothing new)."""
    from twinhub.hub.audit import audit_stage, blocked
    from twinhub.hub.ingest import discard_stage, stage_dataset
    from twinhub.hub.protection import steward_lines

    force = context.run.tags.get(FORCE_TAG) == "true"
    run = _permanent_errors(lambda: stage_dataset(hub, current, run_id=context.run_id, force=force))
    if run.unchanged:
        yield dg.MaterializeResult(asset_key=staged, metadata={"unchanged": True, "rows_read": run.served.rows_read},
                                   check_results=[dg.AssetCheckResult(check_name=name, passed=True,
                                                                      metadata={"unchanged": True})
                                                  for name in AUDITS])
        return True
    audits = audit_stage(run.stage, current.manifest.quality,
                         run.previous["rows_published"] if run.previous else None)
    ran = {a.name for a in audits}
    results = [_check_result(a, run.run.details.get("privacy")) for a in audits] + [
        dg.AssetCheckResult(check_name=name, passed=True, metadata={"skipped": "no served version yet"})
        for name in AUDITS if name not in ran
    ]
    refused = blocked(audits)
    for line in steward_lines(run.run.details.get("privacy")):
        context.log.warning(f"{current.id}: {line}")
    yield dg.MaterializeResult(
        asset_key=staged,
        metadata={"rows_read": run.stage.rows_read, "rows_conforming": run.stage.rows_conforming,
                  "rows_quarantined": run.stage.rows_quarantined, "blocked": bool(refused),
                  "source_fingerprint": run.run.source_fingerprint, **_privacy(run.run.details.get("privacy")),
                  "suspected_truncation": bool((run.run.details.get("truncation") or {}).get("suspected"))},
        check_results=results,
    )
    if refused:
        discard_stage(hub, current, context.run_id, "blocked by " + ", ".join(a.name for a in refused))
        context.log.error(f"{current.id}: not published, blocked by {[a.name for a in refused]}")
        return False
    return True


def _privacy(privacy: dict | None) -> dict:
    """The personal data the scan found (counts, redacted examples) and the tier this version publishes with."""
    if not privacy:
        return {}
    raised = {c: v["raised_by"] for c, v in privacy["columns"].items() if v["raised_by"]}
    return {"classification": privacy["classification"], "personal_data": dg.MetadataValue.json(privacy["scan"]),
            "undeclared_personal_data": dg.MetadataValue.json(raised)}


def _map_preview(hub: Hub, dataset: str, version: int | None) -> dg.MetadataValue | None:
    """The version's map preview as markdown with the PNG embedded (the UI shows it inline)."""
    from twinhub.catalog.preview import preview_path
    from twinhub.hub.redact import protected_geometry

    if version is None:
        return None
    if tier := protected_geometry(hub.lake, dataset):  # the points themselves would leave the run
        return dg.MetadataValue.md(f"map preview withheld: the locations are {tier}")
    path = preview_path(hub.lake, dataset, version)
    if not path.is_file():
        return None
    png = base64.b64encode(path.read_bytes()).decode()
    return dg.MetadataValue.md(f"![{dataset} version {version}](data:image/png;base64,{png})")


def _quality(hub: Hub, dataset: str) -> dict[str, float]:
    """The served version's quality figures (from its run's details) as numbers the UI plots over runs."""
    from twinhub.catalog.info import last_published

    served = last_published(hub.lake, dataset)
    details = json.loads(served["details"]) if served and served.get("details") else {}
    figures = {"interoperability_score": (details.get("score") or {}).get("score")}
    labels = [v for v in (details.get("labels") or {}).values() if isinstance(v, dict) and v.get("values")]
    if labels:
        figures["labels_mapped_share"] = sum(v["mapped"] for v in labels) / sum(v["values"] for v in labels)
    completeness = details.get("completeness") or {}
    if completeness.get("required_cells"):
        figures["required_fields_complete_share"] = completeness["filled"] / completeness["required_cells"]
    return {k: float(v) for k, v in figures.items() if v is not None}


def _publish(context, hub: Hub, current: Registered, published: dg.AssetKey) -> dg.MaterializeResult:
    from twinhub.hub.ingest import publish_stage

    result = _permanent_errors(lambda: publish_stage(hub, current, run_id=context.run_id))
    share = result.rows_quarantined / result.rows_read if result.rows_read else 0.0
    return dg.MaterializeResult(asset_key=published, metadata={
        **_quality(hub, current.id),
        "map_preview": _map_preview(hub, current.id, result.snapshot_id),
        "dagster/row_count": result.rows_published,
        "rows_read": result.rows_read,
        "rows_published": result.rows_published,
        "rows_quarantined": result.rows_quarantined,
        "rows_filtered": result.rows_read - result.rows_published - result.rows_quarantined,  # by the manifest's filter
        "quarantined_share": share,
        **{f"rows_{k}": v for k, v in result.changes.items() if v is not None},
        "new_version": not result.unchanged,
        "catalog_version": result.snapshot_id,
        "extent": dg.MetadataValue.json(result.extent) if result.extent else None,
        "quarantine_reasons": dg.MetadataValue.json(result.reasons),
    })


def _current(hub: Hub, dataset_id: str) -> Registered:
    return _permanent_errors(lambda: lookup(hub, dataset_id))  # the manifest as registered now


def _permanent_errors(action):
    """Retrying cannot fix a bad source or manifest: fail at once with the hub's message."""
    try:
        return action()
    except Exception as exc:
        if permanent(exc):
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        raise
