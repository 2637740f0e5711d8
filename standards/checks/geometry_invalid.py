"""``geometry_invalid``: a geometry that is not valid (self-intersection, NaN or infinite coordinates...).

conform's reason says why (GEOS's reason) and how to repair it (``repair_geometry: true``)."""

from __future__ import annotations

import shapely

from twinhub.standards.checks.base import GEOMETRY, Check
from twinhub.standards.checks.shapes import every, geometry_check, objects


class GeometryInvalid(Check):
    name = "geometry_invalid"
    tags = frozenset({"geometry"})
    audit = GEOMETRY.name
    message = "geometry is not valid"
    forms = frozenset({"pandera", "vectorized", "points"})

    def pandera(self, field, context):
        return geometry_check(self, {}, self.message) if field.type == "geojson" else None

    def vectorized(self, statistics):
        return lambda values: shapely.is_valid(objects(values))

    def points(self, statistics):
        return every


GEOMETRY_INVALID = GeometryInvalid()
