"""Rows of a page of features: attribute records and shapely geometries.

GeoJSON features (OGC API - Features, ArcGIS ``f=geojson``) and Esri JSON features
(ArcGIS ``f=json``) both become a list of attribute dicts and an array of geometries.

>>> records, geoms = geojson_rows([{"type": "Feature", "id": 7, "properties": {"name": "a", "tags": ["x"]},
...                                  "geometry": {"type": "Point", "coordinates": [1, 2]}}])
>>> records, geoms[0].wkt
([{'name': 'a', 'tags': '["x"]', 'id': 7}], 'POINT (1 2)')
>>> esri_geometry({"rings": [[[0, 0], [0, 4], [4, 4], [4, 0], [0, 0]], [[1, 1], [2, 1], [2, 2], [1, 2], [1, 1]]]}).wkt
'POLYGON ((0 0, 0 4, 4 4, 4 0, 0 0), (1 1, 2 1, 2 2, 1 2, 1 1))'
"""

from __future__ import annotations

import json

import numpy as np
import shapely


def _cell(value: object) -> object:
    """Nested values (lists, objects) are kept as JSON text: a table cell holds one value."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value


def _record(properties: dict | None, feature_id: object = None) -> dict:
    record = {k: _cell(v) for k, v in (properties or {}).items()}
    if feature_id is not None and "id" not in record:
        record["id"] = feature_id  # the feature's own id, when its properties do not carry one
    return record


def geojson_rows(features: list[dict]) -> tuple[list[dict], np.ndarray]:
    """Attribute records (with the feature ``id``) and geometries (None where missing or invalid)."""
    records = [_record(f.get("properties"), f.get("id")) for f in features]
    texts = np.array([json.dumps(f["geometry"]) if f.get("geometry") else "null" for f in features], dtype=object)
    geometries = np.full(len(features), None, dtype=object)
    present = texts != "null"
    geometries[present] = shapely.from_geojson(texts[present], on_invalid="ignore")
    return records, geometries


def esri_geometry(g: dict | None) -> shapely.Geometry | None:
    """A shapely geometry from an Esri JSON geometry (point, multipoint, polyline, polygon)."""
    if not g:
        return None
    if "x" in g:
        x, y = g.get("x"), g.get("y")
        return None if x is None or y is None or x != x else shapely.Point(x, y)
    if "points" in g:
        return shapely.MultiPoint([p[:2] for p in g["points"]]) if g["points"] else None
    if "paths" in g:
        lines = [shapely.LineString([p[:2] for p in path]) for path in g["paths"] if len(path) > 1]
        return None if not lines else lines[0] if len(lines) == 1 else shapely.MultiLineString(lines)
    if "rings" in g:
        return _esri_polygon(g["rings"])
    return None


def _esri_polygon(rings: list[list[list[float]]]) -> shapely.Geometry | None:
    """Esri rings: clockwise rings are shells, counter-clockwise ones are holes of the shell holding them."""
    linear = [shapely.LinearRing([p[:2] for p in ring]) for ring in rings if len(ring) >= 4]
    shells: list[tuple[shapely.LinearRing, list[shapely.LinearRing]]] = [(r, []) for r in linear if not r.is_ccw]
    for hole in (r for r in linear if r.is_ccw):
        owner = next((s for s in shells if shapely.Polygon(s[0]).contains(hole)), None)
        if owner is None:  # a counter-clockwise ring inside no shell: a shell written the other way round
            shells.append((hole, []))
        else:
            owner[1].append(hole)
    polygons = [shapely.Polygon(shell, inner) for shell, inner in shells]
    return None if not polygons else polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)


def esri_rows(features: list[dict]) -> tuple[list[dict], np.ndarray]:
    """Attribute records and geometries of Esri JSON features."""
    records = [_record(f.get("attributes")) for f in features]
    geometries = np.empty(len(features), dtype=object)
    geometries[:] = [esri_geometry(f.get("geometry")) for f in features]
    return records, geometries
