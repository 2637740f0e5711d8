"""``geometry_type``: a geometry of another type than the field's ``geometryType`` (or its Multi- form)."""

from __future__ import annotations

import numpy as np
import shapely

from twinhub.standards.checks.base import GEOMETRY, Check
from twinhub.standards.checks.shapes import geometry_check, objects, type_id

TYPES = {"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon"}


class GeometryType(Check):
    name = "geometry_type"
    tags = frozenset({"geometry"})
    audit = GEOMETRY.name
    message = "must be a {geometryType}"
    forms = frozenset({"pandera", "vectorized", "points"})

    def pandera(self, field, context):
        expected = field.custom.get("geometryType")
        if field.type != "geojson" or not expected:
            return None
        ids = sorted(type_id(name) for name in {expected, f"Multi{expected}"} & TYPES)
        return geometry_check(self, {"type_ids": ids}, self.message.format(geometryType=expected))

    def vectorized(self, statistics):
        ids = statistics["type_ids"]
        return lambda values: np.isin(shapely.get_type_id(objects(values)), ids)

    def points(self, statistics):
        point = type_id("Point") in statistics["type_ids"]
        return lambda x, y: np.full(len(x), point)


GEOMETRY_TYPE = GeometryType()
