"""``outside_city``: a geometry outside the city's plausibility extent (city.yaml's ``extent`` widened by
``buffer_m``, in the target CRS). The gate that catches a wrong CRS; standards.plausibility says why."""

from __future__ import annotations

import shapely

from twinhub.standards.checks.base import GEOMETRY, Check
from twinhub.standards.checks.shapes import geometry_check, objects, points_within_box, within_box


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
        return geometry_check(self, {"extent": extent},
                              self.message.format(extent=[round(v, 4) for v in extent]))

    def vectorized(self, statistics):
        extent = statistics["extent"]

        def test(values):
            geoms = objects(values)
            return within_box(geoms, extent) | shapely.is_empty(geoms)

        return test

    def points(self, statistics):
        extent = statistics["extent"]
        return lambda x, y: points_within_box(x, y, extent)


OUTSIDE_CITY = OutsideCity()
