"""``outside_city``: a geometry outside the city's plausibility extent (city.yaml's ``extent`` widened by
``buffer_m``, in the target CRS). The gate that catches a wrong CRS; standards.plausibility says why.

A point must lie inside the extent. A line or polygon fails only when it lies wholly outside: one that
crosses the extent's edge (a district boundary whose islet lies past it, a ferry route to a neighbour) is
kept, and the run reports its outside part (twinhub/hub/partly_outside.py: share outside, the part's
bounding box): the manifest's ``outside: keep``, the default. With ``outside: quarantine`` it must lie
wholly inside, as a point must.
"""

from __future__ import annotations

import numpy as np
import shapely

from twinhub.standards.checks.base import GEOMETRY, Check
from twinhub.standards.checks.shapes import geometry_check, objects, points_within_box, type_id, within_box

POINT_TYPES = (type_id("Point"), type_id("MultiPoint"))
KEEP, QUARANTINE = "keep", "quarantine"  # the manifest's ``outside:`` policies for shapes crossing the edge


def meets_box(geoms: np.ndarray, extent: tuple[float, float, float, float]) -> np.ndarray:
    """Whether each geometry is inside the box or, a line or polygon, has a part inside it.

    Within (:func:`within_box`) decides most from the bounds; of the rest, only lines and polygons whose
    bounds overlap the box go to ``shapely.intersects``.
    """
    inside = within_box(geoms, extent)
    x0, y0, x1, y1 = extent
    b = shapely.bounds(geoms)
    with np.errstate(invalid="ignore"):
        overlapping = (b[:, 0] <= x1) & (b[:, 2] >= x0) & (b[:, 1] <= y1) & (b[:, 3] >= y0)
    crossing = ~inside & overlapping & ~np.isin(shapely.get_type_id(geoms), POINT_TYPES)
    if crossing.any():
        inside[crossing] = shapely.intersects(geoms[crossing], shapely.box(*extent))
    return inside


class OutsideCity(Check):
    name = "outside_city"
    tags = frozenset({"geometry", "crs"})
    audit = GEOMETRY.name
    score_part = "crs"
    message = "outside the city's extent {extent}"
    forms = frozenset({"pandera", "vectorized", "points"})

    def pandera(self, field, context):
        if field.type != "geojson" or context.extent is None:
            return None
        extent = tuple(context.extent)
        return geometry_check(self, {"extent": extent, "outside": context.outside},
                              self.message.format(extent=[round(v, 4) for v in extent]))

    def vectorized(self, statistics):
        extent = statistics["extent"]
        inside = within_box if statistics.get("outside", KEEP) == QUARANTINE else meets_box

        def test(values):
            geoms = objects(values)
            return inside(geoms, extent) | shapely.is_empty(geoms)

        return test

    def points(self, statistics):
        extent = statistics["extent"]
        return lambda x, y: points_within_box(x, y, extent)


OUTSIDE_CITY = OutsideCity()
