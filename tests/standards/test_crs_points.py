"""transform_points: plain 2D points (and None) as coordinates, the same as transform_geometries' points."""

from __future__ import annotations

import numpy as np
import shapely

from twinhub.standards.crs import transform_geometries, transform_points


def test_points_and_none_come_back_as_the_coordinates_of_the_reprojected_points():
    geoms = np.array([shapely.Point(121.47, 31.23), None, shapely.Point(121.5, 31.1), shapely.Point(np.nan, 31.0)],
                     dtype=object)
    found = transform_points(geoms, "GCJ-02", "EPSG:4549")
    assert found.missing.tolist() == [False, True, False, False]
    assert np.isnan(found.source_x[1]) and found.source_x[0] == 121.47 and found.source_y[2] == 31.1
    expected = transform_geometries(geoms, "GCJ-02", "EPSG:4549")
    rebuilt = shapely.points(found.x[~found.missing], found.y[~found.missing])
    assert shapely.to_wkb(rebuilt).tolist() == shapely.to_wkb(expected[~found.missing]).tolist()


def test_anything_but_plain_points_is_left_to_transform_geometries():
    point = shapely.Point(121.47, 31.23)
    for odd in (shapely.Point(), shapely.Point(121.4, 31.2, 5.0), shapely.box(0, 0, 1, 1)):
        assert transform_points(np.array([point, odd, None], dtype=object), "GCJ-02", "EPSG:4549") is None
    assert transform_points(np.array([[point]], dtype=object), "GCJ-02", "EPSG:4549") is None
