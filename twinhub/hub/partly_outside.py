"""Lines and polygons partly outside the city: kept, and reported with their outside part.

The ``outside_city`` check quarantines a point outside the city's extent and a line or polygon wholly
outside it; one that crosses the extent's edge (a district boundary with an islet past it, a ferry route
to a neighbour) is published whole (policy ``keep``, docs/standards.md). This module reports those
after staging, as the run-details record ``partly_outside``: how many, and for the largest outside
shares the source row, the share of its area (length, for a line) outside and the outside part's
bounding box, in the target CRS. A DuckDB spatial query over the staged Parquet; nothing is changed.
"""

from __future__ import annotations

import logging

from sqlglot import exp

from twinhub.catalog.extensions import connect
from twinhub.catalog.stage import DUCKDB_MEMORY, Stage
from twinhub.standards.conform import SOURCE_ROW

log = logging.getLogger("twinhub")
POLICY = "keep"  # the default of the manifest's ``outside:``; ``quarantine`` holds such shapes back
SHOWN = 20  # geometries listed in the record, largest outside share first
DIGITS = 7
# The WKB of a 2D or 3D point (1 + 4 + 16 or 24 bytes) and of nothing else: points, which the gate judges
# whole, are skipped without being parsed (most of this query's cost on a point dataset).
POINT_WKB_BYTES = (21, 29)


def _sql(geometry: str) -> str:
    g, row = (exp.to_identifier(c, quoted=True).sql("duckdb") for c in (geometry, SOURCE_ROW))
    return f"""
        WITH s AS (SELECT {row} AS source_row, ST_GeomFromWKB({g}) AS g,
                          ST_MakeEnvelope(?, ?, ?, ?) AS box FROM read_parquet(?)
                   WHERE octet_length({g}) NOT IN {POINT_WKB_BYTES}),
             p AS (SELECT source_row, g, ST_Difference(g, box) AS o FROM s
                   WHERE ST_Dimension(g) > 0 AND ST_Intersects(g, box) AND NOT ST_Within(g, box)),
             m AS (SELECT source_row, ST_GeometryType(g) AS kind, o,
                          CASE WHEN ST_Dimension(g) = 2 THEN ST_Area(o) / nullif(ST_Area(g), 0)
                               ELSE ST_Length(o) / nullif(ST_Length(g), 0) END AS share FROM p)
        SELECT source_row, kind::VARCHAR, share, ST_XMin(o), ST_YMin(o), ST_XMax(o), ST_YMax(o),
               count(*) OVER (), min(ST_XMin(o)) OVER (), min(ST_YMin(o)) OVER (), max(ST_XMax(o)) OVER (),
               max(ST_YMax(o)) OVER ()
        FROM m WHERE share > 0 ORDER BY share DESC, source_row LIMIT {SHOWN}"""


def _box(values) -> list[float]:
    return [round(float(v), DIGITS) for v in values]


def assess(stage: Stage, gate: tuple[float, float, float, float], policy: str = POLICY) -> dict:
    """The ``partly_outside`` record of the stage against ``gate`` (the extent in the target CRS)."""
    record = {"policy": policy, "rows": 0, "geometries": []}
    if not stage.geometry_column or not stage.parts:
        return record
    con = connect(extensions=("spatial",))
    try:
        con.execute("SET memory_limit = ?", [DUCKDB_MEMORY])
        rows = con.execute(_sql(stage.geometry_column), [*map(float, gate), stage.rows_glob]).fetchall()
    finally:
        con.close()
    if not rows:
        return record
    record["rows"] = int(rows[0][7])
    record["outside_bbox"] = _box(rows[0][8:12])
    record["geometries"] = [{"source_row": int(r[0]), "type": r[1], "share_outside": round(float(r[2]), 4),
                             "outside_bbox": _box(r[3:7])} for r in rows]
    largest = record["geometries"][0]
    record["message"] = (
        f"{record['rows']} line(s) or polygon(s) lie partly outside the city's extent and are kept whole "
        f"(policy {policy}); the largest outside share is {largest['share_outside']:.1%} (source row "
        f"{largest['source_row']}, outside part within {largest['outside_bbox']}); all outside parts within "
        f"{record['outside_bbox']}: check the city.yaml extent covers the city")
    return record


def record(stage: Stage, gate: tuple[float, float, float, float] | None, details: dict, dataset: str,
           policy: str = POLICY) -> None:
    """Assess the stage into ``details["partly_outside"]`` (before finalize) and log what it found.
    ``policy``: the manifest's ``outside:`` (with ``quarantine`` the stage holds none, and says so)."""
    if gate is None:
        return
    details["partly_outside"] = assess(stage, gate, policy)
    if details["partly_outside"]["rows"]:
        log.warning("%s: %s", dataset, details["partly_outside"]["message"])
