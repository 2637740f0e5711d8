"""``geometry_empty``: an empty geometry (``POINT EMPTY``): present, but nowhere."""

from __future__ import annotations

import shapely

from twinhub.standards.checks.base import GEOMETRY, Check
from twinhub.standards.checks.shapes import every, geometry_check, objects


class GeometryEmpty(Check):
    name = "geometry_empty"
    tags = frozenset({"geometry"})
    audit = GEOMETRY.name
    message = "geometry is empty"
    forms = frozenset({"pandera", "vectorized", "points"})

    def pandera(self, field, context):
        return geometry_check(self, {}, self.message) if field.type == "geojson" else None

    def vectorized(self, statistics):
        return lambda values: ~shapely.is_empty(objects(values))

    def points(self, statistics):
        return every


GEOMETRY_EMPTY = GeometryEmpty()
