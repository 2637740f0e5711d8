"""Dry-run a manifest over its whole source: what would publish, what would be quarantined and why.

The source is read chunk by chunk through the same Conformer a run uses and staged
in a temporary folder (catalog/stage.py, so key duplicates across chunks count too);
nothing is published and no run is recorded in the catalog.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import tempfile
import time
from dataclasses import dataclass, field

import duckdb

from twinhub.catalog.stage import Stage
from twinhub.connectors import ConfigProblem, SourceError, open_source
from twinhub.guided.source import GuidedError
from twinhub.hub.derive import Derivation, DerivationRefused, needed
from twinhub.hub.home import Hub
from twinhub.hub.manifest import Manifest, conformance, source_policy
from twinhub.standards.conform import Conformer
from twinhub.standards.crs import resolve_crs
from twinhub.standards.crs_policy import CRSRefused
from twinhub.standards.pack import Crosswalk, StandardsError

TOP_REASONS = 5
EXAMPLES = 3


@dataclass
class DryRun:
    rows_read: int
    would_publish: int
    would_quarantine: int
    reasons: list[dict]  # per (check, column): rows, examples [{source_row, value, message}]
    labels: dict[str, dict] = field(default_factory=dict)  # per field: the run's label record
    unmapped: dict[str, dict[str, int]] = field(default_factory=dict)  # per field: every unmapped value -> rows
    crs: dict = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out.pop("unmapped")
        out["seconds"] = round(self.seconds, 2)
        return out


_REASONS_SQL = """
WITH r AS (
  SELECT _source_row AS source_row, unnest(from_json(reasons,
    '[{"check": "VARCHAR", "column": "VARCHAR", "value": "VARCHAR", "message": "VARCHAR"}]')) AS x
  FROM read_parquet(?)
)
SELECT x.check, x.column, count(DISTINCT source_row) AS rows,
       list({'source_row': source_row, 'value': x.value, 'message': x.message} ORDER BY source_row)[1:?] AS examples
FROM r GROUP BY 1, 2 ORDER BY rows DESC, 1, 2 LIMIT ?
"""


def top_reasons(stage: Stage, limit: int = TOP_REASONS, examples: int = EXAMPLES) -> list[dict]:
    """The checks that held most rows back, each with its first examples."""
    if not stage.rows_quarantined:
        return []
    con = duckdb.connect()
    try:
        rows = con.execute(_REASONS_SQL, [stage.quarantine_glob, examples, limit]).fetchall()
    finally:
        con.close()
    return [{"check": c, "column": col, "rows": n, "examples": ex} for c, col, n, ex in rows]


def _conformer(hub: Hub, manifest: Manifest, declared: str, how: str, drafts: dict[str, Crosswalk]) -> Conformer:
    try:
        c = conformance(manifest, hub.pack, resolve_crs(declared).name, hub.target_crs, home=hub.home,
                        crs_declared=declared, crs_how=how)
        crosswalks = {**c.crosswalks}
        for name, draft in drafts.items():
            crosswalks[name] = (*crosswalks.get(name, ()), draft)
        return Conformer(dataclasses.replace(c, crosswalks=crosswalks))
    except (CRSRefused, StandardsError) as exc:
        raise GuidedError(f"{manifest.id}: {exc}") from None


def dry_run(hub: Hub, manifest: Manifest, base_dir: pathlib.Path | None = None,
            drafts: dict[str, Crosswalk] | None = None) -> DryRun:
    """Conform the whole source into a throw-away stage; ``drafts`` are crosswalk drafts per field."""
    clock = time.monotonic()
    try:
        connector = open_source(manifest.source, base_dir, policy=source_policy(hub, manifest.department, base_dir))
        connector.check()
        declared = manifest.source.get("crs") or connector.crs()
    except ConfigProblem as exc:
        raise GuidedError(f"{manifest.id}: {exc}") from None
    except SourceError as exc:
        raise GuidedError(str(exc)) from None
    if not declared:
        raise GuidedError(f"{connector.describe()}: no CRS: set source.crs in the manifest, or give --crs EPSG:<code>")
    conformer = _conformer(hub, manifest, declared, "manifest" if manifest.source.get("crs") else "source", drafts or {})
    standard = conformer.c.standard
    try:  # derived fields and filters (twinhub/hub/derive.py), as a run computes them
        derivation = Derivation(manifest, connector.columns(), conformer.matchers) if needed(manifest) else None
    except DerivationRefused as exc:
        raise GuidedError(str(exc)) from None
    hub.staging_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dry-run-", dir=hub.staging_dir) as tmp:
        stage = Stage(pathlib.Path(tmp) / "stage")
        try:
            for chunk in connector.chunks(hub.chunk_rows):
                frame, rows = chunk.frame, chunk.source_rows
                geometry, filtered = chunk.points if chunk.points is not None else chunk.geometry, {}
                if derivation is not None:
                    derived = derivation.apply(frame, geometry, rows)
                    frame, geometry, rows, filtered = derived.frame, derived.geometry, derived.source_rows, derived.filtered
                conformed = conformer.conform(frame, geometry, rows)
                stage.write(conformed.rows, conformed.quarantine, filtered)
        except SourceError as exc:
            raise GuidedError(str(exc)) from None
        finally:
            if derivation is not None:
                derivation.close()
        stage.finalize(tuple(standard.primary_key))
        reasons = top_reasons(stage)
    tally = conformer.tally.labels
    return DryRun(
        rows_read=stage.rows_read, would_publish=stage.rows_conforming, would_quarantine=stage.rows_quarantined,
        reasons=json.loads(json.dumps(reasons, default=str)),
        labels={name: stats.as_dict(top=20) for name, stats in tally.items()},
        unmapped={name: dict(stats.unmapped) for name, stats in tally.items()},
        crs=conformer.crs_record, seconds=time.monotonic() - clock,
    )
