"""What the geometry checks share: their pandera form, and the extent test from bounds or coordinates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import shapely

GEOMETRY_TYPES = ("Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon")


def type_id(name: str) -> int:
    """shapely's ``get_type_id`` of a geometry type name."""
    return GEOMETRY_TYPES.index(name)


def objects(values) -> np.ndarray:
    """A column of geometries (Series or array) as the object array shapely reads."""
    return np.asarray(values, dtype=object)


def geometry_check(check, statistics: dict, description: str) -> pa.Check:
    """``check``'s vectorized shapely test as a pandera check (nulls are left to ``required``)."""
    test = check.vectorized(statistics)

    def run(series: pd.Series) -> pd.Series:
        return pd.Series(test(series), index=series.index)

    return pa.Check(run, name=check.name, error=check.name, description=description, statistics=statistics)


def every(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A finite 2D point passes (it is neither empty nor invalid)."""
    return np.ones(len(x), dtype=bool)


def within_box(geoms: np.ndarray, extent: tuple[float, float, float, float]) -> np.ndarray:
    """``shapely.within(geoms, box(*extent))``, from the bounds where they decide it.

    Bounds strictly inside the box: within; any bound outside the closed box: not within.
    Only geometries touching the box's edge (and None/empty, with NaN bounds) go to shapely.
    """
    x0, y0, x1, y1 = extent
    b = shapely.bounds(geoms)
    with np.errstate(invalid="ignore"):
        inside = (b[:, 0] > x0) & (b[:, 1] > y0) & (b[:, 2] < x1) & (b[:, 3] < y1)
        outside = (b[:, 0] < x0) | (b[:, 1] < y0) | (b[:, 2] > x1) | (b[:, 3] > y1)
    undecided = ~inside & ~outside
    if undecided.any():
        inside[undecided] = shapely.within(geoms[undecided], shapely.box(*extent))
    return inside


def points_within_box(x: np.ndarray, y: np.ndarray, extent: tuple[float, float, float, float]) -> np.ndarray:
    """:func:`within_box` of finite points: strictly inside the box (a point on its edge is not within)."""
    x0, y0, x1, y1 = extent
    return (x > x0) & (y > y0) & (x < x1) & (y < y1)
