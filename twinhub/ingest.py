"""One dataset's run: pull -> conform (map, label, reproject, validate) -> stage -> publish.

This is the data work behind each Dagster asset. The data flows one way:
connectors read, standards conform, catalog publishes.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from catalog.publish import DatasetEntry, PublishResult, RunInfo, publish, record_failure
from catalog.stage import Stage
from connectors import SourceError, open_source
from standards.conform import Conformer
from standards.crs import resolve_crs
from standards.pack import Standard
from twinhub.home import Hub
from twinhub.manifest import Manifest, conformance
from twinhub.registry import Registered

log = logging.getLogger("twinhub")


def dataset_entry(manifest: Manifest, standard: Standard, target_crs: str) -> DatasetEntry:
    geometry = standard.geometry_field
    return DatasetEntry(
        department=manifest.department,
        name=manifest.dataset,
        title=manifest.title,
        description=manifest.description,
        standard=standard.name,
        standard_version=standard.version,
        classification=manifest.classification,
        target_crs=target_crs,
        columns=tuple(standard.field_names),
        key=tuple(standard.primary_key),
        geometry=geometry.name if geometry else None,
    )


def ingest(hub: Hub, registered: Registered, run_id: str) -> PublishResult:
    """Run one dataset end to end and publish it; raise on a source-level failure.

    On any failure the staged files are removed and the catalog keeps serving
    the dataset's previous version.
    """
    manifest = registered.manifest
    standard = hub.pack.standard(manifest.standard)
    connector = open_source(manifest.source)
    connector.check()
    declared = manifest.source.get("crs") or connector.crs()
    if not declared:
        raise SourceError(f"{connector.describe()}: no CRS declared by the source or in source.crs")
    source_crs = resolve_crs(declared).name
    started = dt.datetime.now(dt.timezone.utc)
    run = RunInfo(run_id=run_id, started_at=started, source_fingerprint=connector.fingerprint(), source_crs=source_crs)
    stage = Stage(hub.staging_dir / run_id / manifest.department / manifest.dataset)
    conformer = Conformer(conformance(manifest, hub.pack, source_crs, hub.target_crs))
    clock = time.monotonic()
    try:
        for chunk in connector.chunks(hub.chunk_rows):
            conformed = conformer.conform(chunk.frame, chunk.geometry, chunk.source_rows)
            stage.write(conformed.rows, conformed.quarantine)
            log.info("%s: %d rows read, %d conforming so far", manifest.id, stage.rows_read, stage.rows_conforming)
        result = publish(hub.lake, dataset_entry(manifest, standard, hub.target_crs), stage, run)
    except Exception as exc:
        record_failure(hub.lake, manifest.id, run, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        stage.cleanup()
    log.info(
        "%s: published %d, quarantined %d of %d rows as version %s in %.1f s",
        manifest.id, result.rows_published, result.rows_quarantined, result.rows_read,
        result.snapshot_id, time.monotonic() - clock,
    )
    return result
