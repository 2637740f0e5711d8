"""One dataset's run: pull -> conform (map, label, reproject, validate) -> stage -> publish.

This is the data work behind each Dagster asset. The data flows one way:
connectors read, standards conform, catalog publishes.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import gc
import hashlib
import json
import logging
import pathlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twinhub.catalog.info import dataset_info, last_published
from twinhub.catalog.publish import DatasetEntry, PublishResult, RunInfo, publish, record_unpublished
from twinhub.catalog.query import locked_connection
from twinhub.catalog.stage import SUMMARY, Stage
from twinhub.connectors import SourceError, open_source
from twinhub.connectors.readahead import read_ahead
from twinhub.hub import completeness, crs_offset, faults, gate, partly_outside, protection
from twinhub.hub.crs_evidence import evidence_hint
from twinhub.hub.derive import Derivation, needed
from twinhub.hub.diskspace import explain_disk_full
from twinhub.hub.home import Hub
from twinhub.hub.ledger import published_run
from twinhub.hub.locks import hold_dataset
from twinhub.hub.manifest import Manifest, conformance, source_policy
from twinhub.hub.registry import Registered
from twinhub.standards import compat
from twinhub.standards.conform import Conformed, Conformer, run_warnings
from twinhub.standards.crs import resolve_crs
from twinhub.standards.pack import Standard
from twinhub.standards.score import cadence_seconds

if TYPE_CHECKING:
    import duckdb

    from twinhub.standards.privacy import PrivacyScan

log = logging.getLogger("twinhub")
UNCHANGED = "unchanged.json"  # left by the staging step when there is nothing new to publish
# Read the next chunk and stage the last one in threads while a chunk is conformed (two cores: ~1.5x).
# bench.profile turns it off to time each stage on its own.
OVERLAP = True


def dataset_entry(manifest: Manifest, standard: Standard, target_crs: str, privacy: dict | None = None) -> DatasetEntry:
    """``privacy``: the run's privacy details (tiers raised by the scan); None: the tiers as declared."""
    geometry = standard.geometry_field
    classification, column_tiers = protection.published_tiers(manifest, standard, privacy)
    return DatasetEntry(
        department=manifest.department,
        name=manifest.dataset,
        title=manifest.title,
        description=manifest.description,
        standard=standard.name,
        standard_version=standard.version,
        classification=classification,
        target_crs=target_crs,
        columns=tuple(standard.field_names),
        key=tuple(standard.primary_key),
        geometry=geometry.name if geometry else None,
        column_tiers=tuple(column_tiers),
        public_variant=manifest.public_variant.model_dump(exclude_none=True) if manifest.public_variant else None,
    )


def config_fingerprint(manifest: Manifest, standard: Standard, target_crs: str, pack, crosswalks: dict | None = None) -> str:
    """What besides the source decides the published rows: a change here means republishing."""
    vocabularies = sorted(
        (v.name, v.version, repr(v.concepts)) for v in pack.vocabularies.values()
    )
    facts = {
        "manifest": manifest.model_dump(exclude={"schedule", "steward", "title", "description", "quality"}
                                        | _unset_privacy_keys(manifest)
                                        | ({"vocabularies"} if not manifest.vocabularies else set())
                                        | ({"filter"} if not manifest.filter else set())
                                        | ({"outside"} if manifest.outside == "keep" else set())),
        "standard": [standard.name, standard.version, standard.schema.to_descriptor()],
        "vocabularies": vocabularies,
        "city": repr(pack.city),
        "target_crs": target_crs,
        "crosswalks": sorted((k, c.ref, repr(c.entries)) for k, cs in (crosswalks or {}).items() for c in cs),
    }
    return "sha256:" + hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()


def _unset_privacy_keys(manifest: Manifest) -> set[str]:
    """Privacy keys left at their defaults stay out of the fingerprint: a hub upgraded to column
    tiers does not republish every dataset."""
    return ({"columns"} if not manifest.columns else set()) | ({"public_variant"} if not manifest.public_variant else set())


@dataclass
class StagedRun:
    """The outcome of the staging step, read back by the audit checks and the publish step."""

    stage: Stage | None  # None when nothing changed since the served version
    run: RunInfo
    served: PublishResult | None = None  # the served version's figures, when unchanged
    previous: dict | None = None  # the catalog.runs row of the version served before this run

    @property
    def unchanged(self) -> bool:
        return self.stage is None


@contextlib.contextmanager
def _older_objects_frozen() -> Iterator[None]:
    """Keep the objects alive before the chunk loop out of the garbage collector's scans during it.

    Each chunk makes ~10^5 short-lived tracked objects (shapely geometries above all),
    which trigger full collections, and each would rescan every object of the process
    (the libraries' ~10^5-10^6): a quarter of a CSV run's time.  ``gc.freeze`` sets them
    aside (cycles among the chunks' own objects are still collected); ``gc.unfreeze``
    puts them back afterwards.  A process that froze objects itself is left alone.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class _Inline(concurrent.futures.Executor):
    """An executor that runs each call at once, in the caller's thread (OVERLAP off)."""

    def submit(self, fn, /, *args, **kwargs) -> concurrent.futures.Future:
        done: concurrent.futures.Future = concurrent.futures.Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - raised again by result(), as a thread's would be
            done.set_exception(exc)
        return done


def _stage_writer() -> concurrent.futures.Executor:
    return concurrent.futures.ThreadPoolExecutor(1, "twinhub-stage") if OVERLAP else _Inline()


def _stage_chunk(stage: Stage, scan: PrivacyScan, conformed: Conformed, filtered: dict[str, int]) -> None:
    """In the stage writer's thread: Parquet writes and the privacy scan run mostly without the GIL."""
    stage.write(conformed.rows, conformed.quarantine, filtered)
    scan.feed(conformed.rows)


def _wait_written(written: concurrent.futures.Future | None, stage: Stage, dataset: str) -> None:
    """Wait for a chunk's stage write (raising its error, if any), then report progress."""
    if written is None:
        return
    written.result()
    if stage.parts == 1:
        faults.point("stage.mid_read")
    log.info("%s: %d rows read, %d conforming so far", dataset, stage.rows_read, stage.rows_conforming)


def stage_root(hub: Hub, manifest: Manifest, run_id: str) -> pathlib.Path:
    return hub.staging_dir / run_id / manifest.department / manifest.dataset


def stage_dataset(hub: Hub, registered: Registered, run_id: str, force: bool = False) -> StagedRun:
    """Write: pull the source and conform every chunk into the stage; publish nothing.

    When the source and the configuration are those of the version already
    served, nothing is staged (unless ``force``): the run is recorded as
    ``unchanged``. A source that fails half-way leaves no stage behind.
    """
    manifest = registered.manifest
    standard = hub.pack.standard(manifest.standard)
    started = dt.datetime.now(dt.timezone.utc)
    try:
        rules = source_policy(hub, manifest.department, pathlib.Path(registered.manifest_path).parent)
        connector = open_source(manifest.source, policy=rules)  # confined again: a symlink may have moved
        connector.check()
        declared = manifest.source.get("crs") or connector.crs()
        if not declared:
            hint = evidence_hint(hub, connector.chunks(2_000), manifest.fields.get("name"),
                                 manifest.fields.get("district"), exclude=manifest.id)
            raise SourceError(f"{connector.describe()}: no CRS declared by the source or in source.crs. {hint}")
        conformer = Conformer(conformance(  # refuses a too inaccurate reprojection before anything is read
            manifest, hub.pack, resolve_crs(declared).name, hub.target_crs, home=hub.home, crs_declared=declared,
            crs_how="manifest" if manifest.source.get("crs") else "source"), count_keys=False)  # the stage counts them
        # derived fields and filters, checked again against the source as it is now (docs/registering.md)
        derivation = Derivation(manifest, connector.columns(), conformer.matchers) if needed(manifest) else None
        run = RunInfo(
            run_id=run_id,
            started_at=started,
            source_fingerprint=connector.fingerprint(),
            source_crs=resolve_crs(declared).name,
            config_fingerprint=config_fingerprint(manifest, standard, hub.target_crs, hub.pack, conformer.c.crosswalks),
            details={"crs": conformer.crs_record},
        )
    except Exception as exc:  # the source could not even be opened: still a run to account for
        record_unpublished(hub.lake, manifest.id, RunInfo(run_id, started, "", ""), f"{type(exc).__name__}: {exc}")
        raise
    served = last_published(hub.lake, manifest.id)
    if served and served["run_id"] == run_id:  # a retry of a run that already published: nothing to do again
        return _already_published(hub, manifest, published_run(hub.lake, manifest.id, run_id))
    if not force and served and (served["source_fingerprint"], served["config_fingerprint"]) == (
        run.source_fingerprint, run.config_fingerprint
    ):
        record_unpublished(hub.lake, manifest.id, run, None, status="unchanged")
        log.info("%s: source and configuration unchanged since run %s; nothing to publish", manifest.id, served["run_id"])
        result = _served_result(hub, manifest.id, served, run_id)
        root = stage_root(hub, manifest, run_id)
        root.mkdir(parents=True, exist_ok=True)
        (root / UNCHANGED).write_text(json.dumps(dataclasses.asdict(result)), encoding="utf-8")
        return StagedRun(stage=None, run=run, served=result, previous=served)

    stage = Stage(stage_root(hub, manifest, run_id))
    scan = protection.scan_for(manifest, standard)  # personal data in the published columns
    try:
        chunks = connector.chunks(hub.chunk_rows)
        chunks = read_ahead(chunks) if OVERLAP else chunks
        # closing: a failed chunk stops the reader thread (and its source) at once, not when collected
        with _older_objects_frozen(), _stage_writer() as writer, contextlib.closing(chunks):
            written = None  # the previous chunk's write, overlapping this chunk's conforming
            for chunk in chunks:
                frame, rows = chunk.frame, chunk.source_rows
                geometry, filtered = chunk.points if chunk.points is not None else chunk.geometry, {}
                if derivation is not None:  # one DuckDB query per chunk; filtered rows leave here
                    derived = derivation.apply(frame, geometry, rows)
                    frame, geometry, rows, filtered = derived.frame, derived.geometry, derived.source_rows, derived.filtered
                conformed = conformer.conform(frame, geometry, rows)
                _wait_written(written, stage, manifest.id)
                written = writer.submit(_stage_chunk, stage, scan, conformed, filtered)
            _wait_written(written, stage, manifest.id)
        run.details.update(conformer.details(cadence_s=cadence_seconds(manifest.schedule, hub.pack.city.timezone),
                                             previous_run=served, source_fingerprint=run.source_fingerprint,
                                             snapshots=hub.home / compat.FOLDER,
                                             duplicates=stage.hold_duplicates(tuple(standard.primary_key))))
        run.details["privacy"] = protection.privacy_details(manifest, standard, scan)
        if derivation is not None:
            _derived_details(run.details, derivation)
        for warning in run_warnings(run.details) + protection.steward_lines(run.details["privacy"]):
            log.warning("%s: %s", manifest.id, warning)
        with _catalog_reader(hub) as catalog:  # one connection for the assessments comparing with the catalog
            completeness.record(hub.lake, manifest.id, standard.name, stage, run.details,
                                dict(hub.pack.city.score_weights), con=catalog)
            partly_outside.record(stage, conformer.c.gate, run.details, manifest.id, policy=manifest.outside)
            crs_offset.record(hub, manifest.id, standard.name, stage, run.details, served=served is not None,
                              con=catalog)
        stage.finalize(tuple(standard.primary_key), info=_run_info(run))
    except Exception as exc:
        stage.cleanup()
        _record_failure(hub, manifest.id, run, exc)
        raise explain_disk_full(exc, hub.staging_dir, f"staging {manifest.id}") from exc
    finally:
        if derivation is not None:
            derivation.close()
    faults.point("stage.after_finalize")
    return StagedRun(stage=stage, run=run, previous=served)


@contextlib.contextmanager
def _catalog_reader(hub: Hub) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """A read-only catalog connection with file access off, or None before the catalog exists."""
    if not hub.lake.exists():
        yield None
        return
    con = locked_connection(hub.lake)
    try:
        yield con
    finally:
        con.close()


def publish_stage(hub: Hub, registered: Registered, run_id: str) -> PublishResult:
    """Publish: the finalized stage of ``run_id`` becomes the dataset's new version; the stage is removed."""
    manifest = registered.manifest
    standard = hub.pack.standard(manifest.standard)
    root = stage_root(hub, manifest, run_id)
    if not (root / UNCHANGED).is_file() and not (root / SUMMARY).is_file():  # no stage: published already?
        done = published_run(hub.lake, manifest.id, run_id)
        if done is not None:  # a retry after this run's publish committed: it must not publish twice
            shutil.rmtree(root, ignore_errors=True)
            return done
    if (root / UNCHANGED).is_file():  # the staging step found nothing new: the served version stays
        result = PublishResult(**json.loads((root / UNCHANGED).read_text(encoding="utf-8")))
        shutil.rmtree(root, ignore_errors=True)
        return result
    stage = Stage.open(root)
    run = _run_from_info(stage.info)
    clock = time.monotonic()
    try:
        privacy = run.details.get("privacy")  # governance: a held version, a withheld public variant
        entry = gate.governed_entry(hub, manifest, dataset_entry(manifest, standard, hub.target_crs, privacy), privacy)
        result = publish(hub.lake, entry, stage, run, before_commit=lambda: faults.point("publish.before_commit"))
        faults.point("publish.after_commit")
    except Exception as exc:
        if published_run(hub.lake, manifest.id, run_id) is None:  # else it failed after committing
            _record_failure(hub, manifest.id, run, exc)
        raise explain_disk_full(exc, hub.lake.data, f"publishing {manifest.id}") from exc
    finally:
        stage.cleanup()
    log.info(
        "%s: published %d, quarantined %d, filtered %d of %d rows as version %s in %.1f s (%s)",
        manifest.id, result.rows_published, result.rows_quarantined, stage.rows_filtered, result.rows_read,
        result.snapshot_id, time.monotonic() - clock,
        ", ".join(f"{k} {v}" for k, v in result.changes.items() if v is not None),
    )
    return result


def discard_stage(hub: Hub, registered: Registered, run_id: str, reason: str) -> None:
    """The audit refused the stage: record why and remove it; the served version stays."""
    root = stage_root(hub, registered.manifest, run_id)
    stage = Stage.open(root)
    record_unpublished(hub.lake, registered.id, _run_from_info(stage.info), reason, status="blocked")
    stage.cleanup()


def ingest(hub: Hub, registered: Registered, run_id: str, force: bool = False, wait: bool = False) -> PublishResult:
    """Stage and publish one dataset (no audit step: the Dagster assets add it), holding its lock."""
    with hold_dataset(hub, registered.manifest, run_id, wait=wait):
        stage_dataset(hub, registered, run_id, force=force)
        return publish_stage(hub, registered, run_id)


def _record_failure(hub: Hub, dataset: str, run: RunInfo, exc: Exception) -> None:
    """Note the failed run; if even that fails (e.g. the disk is full), the original error still wins."""
    try:
        record_unpublished(hub.lake, dataset, run, f"{type(exc).__name__}: {exc}")
    except Exception as again:  # noqa: BLE001 - the run's own error is the one to report
        log.warning("%s: could not record the failed run %s: %s", dataset, run.run_id, again)


def _already_published(hub: Hub, manifest: Manifest, done: PublishResult) -> StagedRun:
    """The staging step of a retried run that already published: the publish step returns ``done``."""
    root = stage_root(hub, manifest, done.run_id)
    root.mkdir(parents=True, exist_ok=True)
    (root / UNCHANGED).write_text(json.dumps(dataclasses.asdict(done)), encoding="utf-8")
    served = last_published(hub.lake, manifest.id) or {}
    run = RunInfo(done.run_id, dt.datetime.now(dt.timezone.utc), served.get("source_fingerprint") or "",
                  served.get("source_crs") or "", served.get("config_fingerprint") or "")
    return StagedRun(stage=None, run=run, served=done, previous=served)


def _derived_details(details: dict, derivation: Derivation) -> None:
    """The run's ``filter`` record, and each level field's multi-valued counts in its ``labels`` entry."""
    found = derivation.details()
    if "filter" in found:
        details["filter"] = found["filter"]
    labels = details.setdefault("labels", {})
    for name, counts in found.get("label_levels", {}).items():
        labels.setdefault(name, {})["levels"] = counts


def _run_info(run: RunInfo) -> dict:
    return {**dataclasses.asdict(run), "started_at": run.started_at.isoformat()}


def _run_from_info(info: dict) -> RunInfo:
    return RunInfo(**{**info, "started_at": dt.datetime.fromisoformat(info["started_at"])})


def _served_result(hub: Hub, dataset: str, served: dict, run_id: str) -> PublishResult:
    version = next((v["version"] for v in dataset_info(hub.lake, dataset)["versions"]
                    if v["run_id"] == served["run_id"]), None)
    return PublishResult(
        dataset=dataset,
        run_id=run_id,
        snapshot_id=version,
        rows_read=served["rows_read"],
        rows_published=served["rows_published"],
        rows_quarantined=served["rows_quarantined"],
        extent=json.loads(served["extent"]) if served.get("extent") else None,
        changes={"added": 0, "updated": 0, "unchanged": served["rows_published"], "deleted": 0},
        unchanged=True,
    )
