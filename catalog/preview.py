"""Map previews: a small PNG of each published version's features over the city.

Drawn with Pillow (no plotting stack, no fonts or tiles to download): the
city's extent as a grey frame, the features in the target CRS on top. Large
datasets are sampled (:data:`MAX_FEATURES`) so previews stay fast. Each
version's picture lives at :func:`preview_path`; the Dagster UI and
``twinhub catalog show`` point at it.
"""

from __future__ import annotations

import logging
import math
import pathlib
import re

import numpy as np
import shapely
from PIL import Image, ImageDraw

from twinhub.catalog.lake import Lake

log = logging.getLogger("twinhub")

MAX_FEATURES = 20_000
SIZE = 480  # longest side, pixels
MARGIN = 16
BACKGROUND, CITY, CITY_EDGE, FEATURE, TEXT = "#ffffff", "#eef1f4", "#9aa5b1", "#1f5fa8", "#333333"
DATASET = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


def preview_path(lake: Lake, dataset: str, version: int) -> pathlib.Path:
    """Where the map preview of ``dataset`` at catalog ``version`` is (or would be) stored."""
    if not DATASET.match(dataset):
        raise ValueError(f"{dataset!r} is not a <department>.<dataset> name")
    return lake.previews / dataset / f"v{int(version)}.png"


def render_preview(lake: Lake, dataset: str, version: int | None, con=None) -> pathlib.Path | None:
    """Draw the preview of a published version; a failure is logged, never raised (publishing succeeded).

    ``con``: an open connection to the catalog (the publisher's) to read the version through with
    ``AT (VERSION => ...)``, instead of attaching the catalog again at that version (~0.06 s)."""
    if version is None:
        return None
    try:
        return _render(lake, dataset, version, con)
    except Exception as exc:  # noqa: BLE001 -- a missing preview must not fail a publish
        log.warning("%s: no map preview for version %s: %s", dataset, version, exc)
        return None


def _geometry_column(con, dataset: str) -> str | None:
    department, name = dataset.split(".", 1)
    row = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = 'lake' AND schema_name = ? "
        "AND table_name = ? AND data_type LIKE 'GEOMETRY%' ORDER BY column_index LIMIT 1",
        [department, name],
    ).fetchone()
    return row[0] if row else None


def _render(lake: Lake, dataset: str, version: int, shared=None) -> pathlib.Path | None:
    con = shared if shared is not None else lake.connect(snapshot=version)
    table = f"{dataset} AT (VERSION => {int(version)})" if shared is not None else dataset
    try:
        column = _geometry_column(con, dataset)
        if column is None:
            return None
        g = '"' + column.replace('"', '""') + '"'
        total = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        sample = f" USING SAMPLE reservoir({MAX_FEATURES} ROWS) REPEATABLE (7)" if total > MAX_FEATURES else ""
        wkb = [r[0] for r in con.execute(f"SELECT ST_AsWKB({g}) FROM {table} WHERE {g} IS NOT NULL{sample}").fetchall()]
    finally:
        if shared is None:
            con.close()
    geometries = shapely.from_wkb(wkb) if wkb else []
    path = preview_path(lake, dataset, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = draw(geometries, lake.extent, f"{dataset} v{version}  ({total} features)")
    tmp = path.with_suffix(".png.tmp")
    image.save(tmp, format="PNG", optimize=True)
    tmp.replace(path)
    return path


def _frame(geometries, extent) -> tuple[float, float, float, float]:
    boxes = [extent] if extent else []
    if len(geometries):
        boxes.append(tuple(shapely.total_bounds(geometries)))
    if not boxes:
        return (0.0, 0.0, 1.0, 1.0)
    minx, miny = min(b[0] for b in boxes), min(b[1] for b in boxes)
    maxx, maxy = max(b[2] for b in boxes), max(b[3] for b in boxes)
    pad_x, pad_y = (maxx - minx) * 0.02 or 0.001, (maxy - miny) * 0.02 or 0.001
    return (minx - pad_x, miny - pad_y, maxx + pad_x, maxy + pad_y)


def draw(geometries, extent: tuple[float, float, float, float] | None, caption: str) -> Image.Image:
    """Render ``geometries`` (shapely) over ``extent`` (the city) as a small picture."""
    minx, miny, maxx, maxy = _frame(geometries, extent)
    geographic = -180 <= minx and maxx <= 180 and -90 <= miny and maxy <= 90
    aspect = math.cos(math.radians((miny + maxy) / 2)) if geographic else 1.0  # metres per degree east vs north
    width_units, height_units = (maxx - minx) * aspect, maxy - miny
    scale = (SIZE - 2 * MARGIN) / max(width_units, height_units)
    width = int(width_units * scale) + 2 * MARGIN
    height = int(height_units * scale) + 2 * MARGIN + 14

    def xy(x: float, y: float) -> tuple[float, float]:
        return (MARGIN + (x - minx) * aspect * scale, MARGIN + (maxy - y) * scale)

    image = Image.new("RGB", (width, height), BACKGROUND)
    pen = ImageDraw.Draw(image)
    if extent:
        pen.rectangle([xy(extent[0], extent[3]), xy(extent[2], extent[1])], fill=CITY, outline=CITY_EDGE)
    radius = 2 if len(geometries) < 2000 else 1
    geometries = np.asarray(geometries, dtype=object)
    points = shapely.get_type_id(geometries) == 0
    # Points (most layers) straight from a coordinate array: per-geometry attribute lookups were most of
    # the drawing time. Every feature has one colour, so drawing them before the others changes no pixel.
    coords = shapely.get_coordinates(geometries[points])  # empty points have none
    xs = (MARGIN + (coords[:, 0] - minx) * aspect * scale).tolist()  # xy(), the same operations in order
    ys = (MARGIN + (maxy - coords[:, 1]) * scale).tolist()
    for x, y in zip(xs, ys):
        pen.ellipse([x - radius, y - radius, x + radius, y + radius], fill=FEATURE)
    for geometry in geometries[~points]:
        _draw_one(pen, geometry, xy, radius)
    pen.text((MARGIN, height - 14), caption[:80], fill=TEXT)
    return image


def _draw_one(pen: ImageDraw.ImageDraw, geometry, xy, radius: int) -> None:
    if geometry is None or geometry.is_empty:
        return
    kind = geometry.geom_type
    if kind.startswith("Multi") or kind == "GeometryCollection":
        for part in geometry.geoms:
            _draw_one(pen, part, xy, radius)
    elif kind == "Point":
        x, y = xy(geometry.x, geometry.y)
        pen.ellipse([x - radius, y - radius, x + radius, y + radius], fill=FEATURE)
    elif kind == "Polygon":
        pen.polygon([xy(*c[:2]) for c in geometry.exterior.coords], outline=FEATURE)
    else:  # LineString, LinearRing
        pen.line([xy(*c[:2]) for c in geometry.coords], fill=FEATURE, width=1)
