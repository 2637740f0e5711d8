"""At staging: does the dataset sit about one GCJ-02 offset away from the published features of its standard?

Points read off a Chinese web map (GCJ-02) but declared WGS 84 land 300-600 m from where they are, still
inside the city, so every row passes every check. The published features of the same standard (other
departments' bus stops, this dataset's served version) are the evidence: :func:`record` samples the stage's
rows and asks :func:`twinhub.hub.crs_evidence.offset_findings`, then keeps what it found in the run's details
(``crs_offset``), which the stage audit reports as the ``crs_offset`` warning (twinhub/hub/audit.py).

Nothing is opened when nothing is published to compare with (no other dataset of the standard, no served
version): a first dataset costs nothing here.
"""

from __future__ import annotations

import logging

import duckdb
import numpy as np
import pyarrow.dataset as pads
import shapely

from twinhub.catalog.stage import Stage
from twinhub.hub.crs_evidence import SAMPLE, centres, offset_findings
from twinhub.hub.home import Hub

log = logging.getLogger("twinhub")


def staged_sample(stage: Stage, name: str | None, limit: int = SAMPLE) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Centres (and names) of at most ``limit`` staged rows, evenly spread: only those rows are decoded."""
    files = sorted(stage.root.glob("rows-*.parquet"))
    if not files or stage.geometry_column is None:
        return np.empty(0), np.empty(0), None
    rows = pads.dataset([str(f) for f in files], format="parquet")
    total = rows.count_rows()
    if total == 0:
        return np.empty(0), np.empty(0), None
    picked = np.unique(np.linspace(0, total - 1, min(limit, total)).astype(np.int64))
    columns = [stage.geometry_column] + ([name] if name and name in rows.schema.names else [])
    table = rows.take(picked, columns=columns)
    x, y = centres(shapely.from_wkb(table.column(stage.geometry_column).to_numpy(zero_copy_only=False)))
    names = table.column(name).to_numpy(zero_copy_only=False) if len(columns) > 1 else None
    return x, y, names


def record(hub: Hub, dataset: str, standard: str, stage: Stage, details: dict, served: bool,
           con: duckdb.DuckDBPyConnection | None = None) -> None:
    """Compare the stage with what is published into ``details["crs_offset"]`` (before finalize).

    ``served``: the dataset has a served version (its own earlier rows are evidence too); ``con``: a catalog
    connection the caller holds open."""
    peers = (details.get("truncation") or {}).get("peers", 0)  # other datasets of the standard, counted there
    if stage.geometry_column is None or not (peers or served):
        return
    x, y, names = staged_sample(stage, "name")
    if x.size == 0:
        return
    findings, message = offset_findings(hub, dataset, x, y, names, standard, con=con)
    details["crs_offset"] = {"findings": findings, "sampled": int(x.size)}
    if message:
        log.warning("%s: %s", dataset, message)
