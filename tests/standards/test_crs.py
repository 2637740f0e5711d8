from __future__ import annotations

import math
import pickle

import numpy as np
import pyproj
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

from twinhub.standards import chinese_crs as cc
from twinhub.standards.crs import (
    HubCRS,
    UnknownCRS,
    operation_summary,
    resolve_crs,
    transform_geometries,
    transform_xy,
    transformer,
)

GEOD = pyproj.Geod(ellps="WGS84")
SHANGHAI = (121.47, 31.23)  # lon, lat


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Geodesic distance in metres between two sets of lon/lat points."""
    lon1, lat1, lon2, lat2 = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (lon1, lat1, lon2, lat2))
    )
    _, _, dist = GEOD.inv(lon1, lat1, lon2, lat2)
    return np.asarray(dist)


def china_points() -> tuple[np.ndarray, np.ndarray]:
    """A 1-degree grid over China plus random points (fixed seed)."""
    lon, lat = np.meshgrid(np.arange(75.0, 134.5, 1.0), np.arange(18.0, 53.5, 1.0))
    rng = np.random.default_rng(20240601)
    rlon = rng.uniform(73.0, 135.0, 2000)
    rlat = rng.uniform(18.0, 54.0, 2000)
    return np.concatenate([lon.ravel(), rlon]), np.concatenate([lat.ravel(), rlat])


# --------------------------------------------------------------------------- published values


@pytest.mark.parametrize(
    ("fn", "given", "expected"),
    [
        (cc.wgs84_to_gcj02, (121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),
        (cc.gcj02_to_bd09, (116.404, 39.915), (116.41036949371029, 39.92133699351021)),
        (cc.gcj02_to_wgs84, (121.531541859215, 31.17530398364597), (121.5272106, 31.1774276)),
        (cc.bd09_to_gcj02, (116.41036949371029, 39.92133699351021), (116.404, 39.915)),
    ],
    ids=["wgs84->gcj02", "gcj02->bd09", "gcj02->wgs84", "bd09->gcj02"],
)
def test_published_reference_values(fn, given, expected):
    lon, lat = fn(*given)
    assert isinstance(lon, float) and isinstance(lat, float)
    assert lon == pytest.approx(expected[0], abs=1e-9)
    assert lat == pytest.approx(expected[1], abs=1e-9)


def test_one_step_bd09_inverse_is_not_good_enough_but_ours_is():
    """The published closed-form BD-09 inverse is off by decimetres; the iterated one is not."""
    lon, lat = china_points()
    bd_lon, bd_lat = cc.gcj02_to_bd09(lon, lat)
    approx = cc._bd09_approx_inverse(bd_lon, bd_lat)
    exact = cc.bd09_to_gcj02(bd_lon, bd_lat)
    assert metres(lon, lat, *approx).max() > 0.1
    assert metres(lon, lat, *exact).max() < 1e-3


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    ("forward", "inverse"),
    [
        (cc.wgs84_to_gcj02, cc.gcj02_to_wgs84),
        (cc.wgs84_to_bd09, cc.bd09_to_wgs84),
        (cc.gcj02_to_bd09, cc.bd09_to_gcj02),
    ],
    ids=["gcj02", "bd09", "gcj02<->bd09"],
)
def test_round_trip_over_china_within_1cm(forward, inverse):
    lon, lat = china_points()
    out_lon, out_lat = forward(lon, lat)
    # the offset is real (tens to hundreds of metres) for points inside China ...
    assert np.median(metres(lon, lat, out_lon, out_lat)) > 50
    back_lon, back_lat = inverse(out_lon, out_lat)
    err = metres(lon, lat, back_lon, back_lat)
    assert err.max() < 0.01, f"worst round-trip error {err.max():.3g} m"


def _textbook_gcj02_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The public GCJ-02 formula as usually written (14 sines), to check the optimised one."""
    x, y = lon - 105.0, lat - 35.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    dlat += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    dlon += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    rad = lat / 180.0 * np.pi
    magic = 1.0 - 0.00669342162296594323 * np.sin(rad) ** 2
    dlat = (dlat * 180.0) / ((6378245.0 * (1 - 0.00669342162296594323)) / (magic * np.sqrt(magic)) * np.pi)
    dlon = (dlon * 180.0) / (6378245.0 / np.sqrt(magic) * np.cos(rad) * np.pi)
    return dlon, dlat


def test_gcj02_offset_equals_the_textbook_formula():
    lon, lat = china_points()
    got = cc._gcj02_offset(lon, lat)
    want = _textbook_gcj02_offset(lon, lat)
    assert np.abs(got[0] - want[0]).max() < 1e-15 and np.abs(got[1] - want[1]).max() < 1e-15


def test_gcj02_jacobian_is_below_the_contraction_bound_the_inverse_relies_on():
    lon, lat = np.meshgrid(np.linspace(72.1, 137.7, 400), np.linspace(0.9, 55.7, 400))
    lon, lat, h = lon.ravel(), lat.ravel(), 1e-6
    d0 = np.array(cc._gcj02_offset(lon, lat))
    dx = (np.array(cc._gcj02_offset(lon + h, lat)) - d0) / h
    dy = (np.array(cc._gcj02_offset(lon, lat + h)) - d0) / h
    norm = np.maximum(np.abs(dx[0]) + np.abs(dy[0]), np.abs(dx[1]) + np.abs(dy[1]))
    assert 0.005 < norm.max() < cc.GCJ02_CONTRACTION * 0.8


def test_gcj02_inverse_over_several_blocks_meets_the_tolerance():
    rng = np.random.default_rng(7)
    n = 3 * cc._BLOCK + 17  # blocks of the inverse, the last one partial
    lon, lat = rng.uniform(73.5, 134.5, n), rng.uniform(18.5, 53.5, n)
    lon[5] = np.nan
    back_lon, back_lat = cc.gcj02_to_wgs84(lon, lat)
    again_lon, again_lat = cc.wgs84_to_gcj02(back_lon, back_lat)
    ok = np.isfinite(lon)
    assert np.isnan(back_lon[5]) and np.isnan(back_lat[5])
    assert np.abs(again_lon - lon)[ok].max() < cc.INVERSE_TOLERANCE_DEG
    assert np.abs(again_lat - lat)[ok].max() < cc.INVERSE_TOLERANCE_DEG


def test_point_arrays_take_the_fast_path_with_the_same_result_as_shapely_transform():
    rng = np.random.default_rng(3)
    points = shapely.points(rng.uniform(121.0, 122.0, 500), rng.uniform(30.8, 31.8, 500)).astype(object)
    points[::7] = None
    fast = transform_geometries(points, "GCJ-02", "EPSG:4549")
    general = shapely.transform(
        points, lambda x, y: transform_xy(x, y, "GCJ-02", "EPSG:4549"), interleaved=False
    )
    assert [g is None for g in fast] == [g is None for g in points]
    assert (shapely.to_wkb(fast) == shapely.to_wkb(general)).all()
    assert shapely.get_type_id(points[1]) == 0 and points[1].x < 180  # the input is left alone
    # an empty or 3D point sends the array down the general path, which keeps them as they are
    odd = np.array([Point(121.5, 31.2), shapely.from_wkt("POINT EMPTY"), Point(121.5, 31.2, 7.0)], dtype=object)
    out = transform_geometries(odd, "GCJ-02", "EPSG:4549")
    assert out[1].is_empty and out[2].has_z and out[2].z == 7.0
    assert (out[0].x, out[0].y) == transform_xy(121.5, 31.2, "GCJ-02", "EPSG:4549")


def test_arrays_keep_shape_and_bad_points_become_nan():
    lon = np.array([[121.0, np.nan], [np.inf, 116.0]])
    lat = np.array([[31.0, 30.0], [30.0, -np.inf]])
    for fn in (cc.wgs84_to_gcj02, cc.gcj02_to_wgs84, cc.wgs84_to_bd09, cc.bd09_to_wgs84):
        out_lon, out_lat = fn(lon, lat)
        assert out_lon.shape == out_lat.shape == (2, 2)
        assert out_lon.dtype == np.float64
        assert np.isfinite(out_lon[0, 0]) and np.isfinite(out_lat[0, 0])
        assert np.isnan(out_lon.ravel()[1:]).all() and np.isnan(out_lat.ravel()[1:]).all()


@pytest.mark.parametrize(
    ("name", "lon", "lat"),
    [("Paris", 2.3522, 48.8566), ("New York", -74.006, 40.7128), ("Sydney", 151.2093, -33.8688)],
)
def test_gcj02_is_identity_outside_china(name, lon, lat):
    assert cc.wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert cc.gcj02_to_wgs84(lon, lat) == (lon, lat)
    assert transform_xy(lon, lat, "WGS84", "GCJ-02") == (lon, lat)


# --------------------------------------------------------------------------- resolve_crs


@pytest.mark.parametrize(
    ("value", "name", "offset", "epsg"),
    [
        ("EPSG:4549", "EPSG:4549", None, 4549),
        ("epsg:4549", "EPSG:4549", None, 4549),
        (4549, "EPSG:4549", None, 4549),
        ("4549", "EPSG:4549", None, 4549),
        ("GCJ-02", "GCJ-02", "gcj02", 4326),
        ("GCJ02", "GCJ-02", "gcj02", 4326),
        ("gcj02", "GCJ-02", "gcj02", 4326),
        ("BD-09", "BD-09", "bd09", 4326),
        ("BD09", "BD-09", "bd09", 4326),
        ("bd09", "BD-09", "bd09", 4326),
        ("WGS84", "EPSG:4326", None, 4326),
        ("WGS 84", "EPSG:4326", None, 4326),
        ("CRS84", "EPSG:4326", None, 4326),
        ("OGC:CRS84", "EPSG:4326", None, 4326),
        ("CGCS2000", "EPSG:4490", None, 4490),
        (pyproj.CRS.from_epsg(4549).to_wkt(), "EPSG:4549", None, 4549),
        ("urn:ogc:def:crs:EPSG::4490", "EPSG:4490", None, 4490),
    ],
)
def test_resolve_crs_aliases(value, name, offset, epsg):
    hub = resolve_crs(value)
    assert hub.name == name
    assert hub.offset == offset
    assert hub.crs.to_epsg() == epsg
    assert resolve_crs(hub) is hub


def test_resolve_crs_proj_string_without_epsg_match_keeps_its_text():
    text = "+proj=tmerc +lat_0=0 +lon_0=120.5 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m"
    hub = resolve_crs(text)
    assert hub.offset is None and not hub.is_geographic
    assert hub.name == text
    assert resolve_crs(text) is hub  # cached


def test_hubcrs_properties():
    assert resolve_crs("GCJ-02").is_geographic
    assert not resolve_crs("EPSG:4549").is_geographic
    assert "obfuscation" in resolve_crs("GCJ-02").description
    assert "BD-09" in resolve_crs("bd09").description
    assert "Gauss-Kruger" in resolve_crs(4549).description
    with pytest.raises(ValueError):
        HubCRS("x", pyproj.CRS.from_epsg(4326), "mars")


@pytest.mark.parametrize("bad", ["EPSG:99999", "nonsense", 99999, "GCJ-03", "", None, 45.49])
def test_unknown_crs_names_the_bad_value(bad):
    with pytest.raises(UnknownCRS) as info:
        resolve_crs(bad)
    assert isinstance(info.value, ValueError)
    assert repr(bad) in str(info.value)
    assert "EPSG:4549" in str(info.value)  # says what is accepted
    assert str(pickle.loads(pickle.dumps(info.value))) == str(info.value)


def test_transformer_is_cached_per_pair():
    a = transformer(pyproj.CRS.from_epsg(4490), pyproj.CRS.from_epsg(4549))
    b = transformer(pyproj.CRS("EPSG:4490"), pyproj.CRS.from_user_input(4549))
    c = transformer(pyproj.CRS.from_epsg(4549), pyproj.CRS.from_epsg(4490))
    assert a is b
    assert c is not a


# --------------------------------------------------------------------------- projected CRS


def test_epsg4549_known_point_axis_order_and_round_trip():
    x, y = transform_xy(*SHANGHAI, "EPSG:4490", "EPSG:4549")
    # independent computations: pyproj directly, and a hand-written PROJ string
    direct = pyproj.Transformer.from_crs("EPSG:4490", "EPSG:4549", always_xy=True)
    by_hand = pyproj.Transformer.from_crs(
        "EPSG:4490",
        "+proj=tmerc +lat_0=0 +lon_0=120 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m",
        always_xy=True,
    )
    for ex, ey in (direct.transform(*SHANGHAI), by_hand.transform(*SHANGHAI)):
        assert x == pytest.approx(ex, abs=1e-6) and y == pytest.approx(ey, abs=1e-6)
    # x is the easting (false easting 500 km + ~140 km east of 120E), y the northing
    assert x == pytest.approx(640_060.34, abs=0.01)
    assert y == pytest.approx(3_457_406.44, abs=0.01)
    # the authority axis order is northing first; we must not follow it
    north_first = pyproj.Transformer.from_crs("EPSG:4490", "EPSG:4549").transform(31.23, 121.47)
    assert north_first[0] == pytest.approx(y, abs=1e-6)
    lon, lat = transform_xy(x, y, "EPSG:4549", "CGCS2000")
    assert metres(*SHANGHAI, lon, lat) < 1e-3


def test_wgs84_to_cgcs2000_is_a_ballpark_noop():
    lon, lat = china_points()
    out_lon, out_lat = transform_xy(lon, lat, "EPSG:4326", "EPSG:4490")
    assert np.array_equal(out_lon, lon) and np.array_equal(out_lat, lat)
    summary = operation_summary("WGS84", "CGCS2000")
    assert "Ballpark" in " ".join(summary["steps"])
    assert summary["accuracy_m"] is None


def test_gcj02_source_to_cgcs2000():
    lon, lat = china_points()
    gcj = cc.wgs84_to_gcj02(lon, lat)
    out_lon, out_lat = transform_xy(*gcj, "GCJ-02", "EPSG:4490")
    assert metres(lon, lat, out_lon, out_lat).max() < 0.01


def test_bd09_source_to_epsg4549_and_back():
    lon = np.array([118.8, 120.0, 121.47, 121.3])
    lat = np.array([32.06, 30.27, 31.23, 25.03])
    bd = cc.wgs84_to_bd09(lon, lat)
    x, y = transform_xy(*bd, "BD-09", "EPSG:4549")
    ex, ey = pyproj.Transformer.from_crs("EPSG:4490", "EPSG:4549", always_xy=True).transform(
        lon, lat
    )
    assert np.hypot(x - ex, y - ey).max() < 0.01
    back = transform_xy(x, y, "EPSG:4549", "BD-09")
    assert metres(*bd, *back).max() < 0.01


def test_gcj02_to_bd09_via_transform_xy_uses_direct_formula():
    got = transform_xy(116.404, 39.915, "GCJ-02", "BD-09")
    assert got[0] == pytest.approx(116.41036949371029, abs=1e-12)
    assert got[1] == pytest.approx(39.92133699351021, abs=1e-12)


def test_transform_xy_non_finite_never_raises():
    x = np.array([121.47, np.nan, np.inf, 121.0])
    y = np.array([31.23, 31.0, 31.0, np.nan])
    for src, dst in [("GCJ-02", "EPSG:4549"), ("EPSG:4490", "EPSG:4549"), ("BD-09", "GCJ-02")]:
        out_x, out_y = transform_xy(x, y, src, dst)
        assert np.isfinite(out_x[0]) and np.isfinite(out_y[0])
        assert np.isnan(out_x[1:]).all() and np.isnan(out_y[1:]).all()
    sx, sy = transform_xy(float("nan"), 31.0, "GCJ-02", "EPSG:4549")
    assert math.isnan(sx) and math.isnan(sy)


def test_operation_summary_describes_offset_and_proj_steps():
    summary = operation_summary("BD-09", 4549)
    assert summary["source"] == "BD-09" and summary["target"] == "EPSG:4549"
    assert "BD-09 offset" in summary["steps"][0]
    assert "Gauss-Kruger" in summary["steps"][1]
    conversion = operation_summary("EPSG:4490", "EPSG:4549")
    assert conversion["accuracy_m"] == 0.0
    assert operation_summary("gcj02", "GCJ-02")["steps"] == ["identity (same CRS)"]


# --------------------------------------------------------------------------- geometries


def test_transform_geometries_polygon_matches_transform_xy():
    shell = [(121.40, 31.20), (121.50, 31.20), (121.50, 31.30), (121.40, 31.30), (121.40, 31.20)]
    hole = [(121.44, 31.24), (121.46, 31.24), (121.46, 31.26), (121.44, 31.24)]
    polygon = Polygon(shell, [hole])
    multi = MultiPolygon([polygon, Polygon([(120.0, 30.0), (120.1, 30.0), (120.0, 30.1)])])
    line = LineString([(121.0, 31.0), (121.1, 31.1)])
    out = transform_geometries([polygon, multi, line], "GCJ-02", "EPSG:4549")
    assert out.shape == (3,)
    assert [g.geom_type for g in out] == ["Polygon", "MultiPolygon", "LineString"]
    xs, ys = np.array(shell).T
    ex, ey = transform_xy(xs, ys, "GCJ-02", "EPSG:4549")
    np.testing.assert_allclose(np.array(out[0].exterior.coords), np.column_stack([ex, ey]))
    assert len(out[0].interiors) == 1
    # from plain WGS 84, the planar Gauss-Kruger area ~ the geodesic area (areal scale
    # error ~5e-4 at 1.5 deg off the CM).  Not checked from GCJ-02: the obfuscation
    # offset itself stretches areas by a few tenths of a percent.
    plain = transform_geometries(polygon, "EPSG:4326", "EPSG:4549")
    assert plain.shape == () and isinstance(plain.item(), Polygon)
    geodesic_area = abs(GEOD.geometry_area_perimeter(Polygon(shell))[0]) - abs(
        GEOD.geometry_area_perimeter(Polygon(hole))[0]
    )
    assert plain.item().area == pytest.approx(geodesic_area, rel=1e-3)
    assert out[1].geoms[0].equals_exact(out[0], tolerance=1e-9)


def test_transform_geometries_points_with_none_and_empty():
    geoms = np.array(
        [Point(121.47, 31.23), None, Point(), Point(116.404, 39.915, 42.0)], dtype=object
    )
    out = transform_geometries(geoms, "GCJ-02", "BD-09")
    assert out.dtype == object and out.shape == (4,)
    assert (out[0].x, out[0].y) == transform_xy(121.47, 31.23, "GCJ-02", "BD-09")
    assert out[1] is None
    assert out[2].is_empty
    assert out[3].x == pytest.approx(116.41036949371029, abs=1e-12)
    assert shapely.get_z(out[3]) == 42.0  # heights are left alone


# --------------------------------------------------------------------------- BD-09 Mercator


@pytest.mark.parametrize(
    ("fn", "given", "expected", "tolerance"),
    [
        # Baidu's own published pair (BD-09 lon/lat <-> BD09MC metres) for Tiananmen, to the centimetre
        (cc.bd09_to_bd09mc, (116.403874, 39.914889), (12958160.97, 4825907.72), 0.01),
        (cc.bd09mc_to_bd09, (12958160.97, 4825907.72), (116.403874, 39.914889), 1e-6),
    ],
    ids=["bd09->bd09mc", "bd09mc->bd09"],
)
def test_bd09mc_published_reference_values(fn, given, expected, tolerance):
    x, y = fn(*given)
    assert x == pytest.approx(expected[0], abs=tolerance) and y == pytest.approx(expected[1], abs=tolerance)


@pytest.mark.parametrize(
    ("forward", "inverse"),
    [(cc.bd09_to_bd09mc, cc.bd09mc_to_bd09), (cc.wgs84_to_bd09mc, cc.bd09mc_to_wgs84)],
    ids=["bd09", "wgs84"],
)
def test_bd09mc_round_trip_over_china_within_1cm(forward, inverse):
    lon, lat = china_points()
    x, y = forward(lon, lat)
    assert np.nanmin(x) > 8e6 and np.nanmax(y) < 8e6  # metres, not degrees
    back = inverse(x, y)
    assert metres(lon, lat, *back).max() < 0.01


def test_bd09mc_is_a_named_projected_crs():
    bd = resolve_crs("BD09MC")
    assert bd.name == "BD-09MC" and bd.offset == "bd09mc" and not bd.is_geographic
    assert resolve_crs("Baidu Mercator") == bd == resolve_crs("bd-09 mercator")
    lon, lat = 121.4737, 31.2304
    x, y = transform_xy(*cc.wgs84_to_bd09mc(lon, lat), "BD-09MC", "EPSG:4490")
    assert metres(lon, lat, x, y) < 0.01
    assert transform_xy(*cc.gcj02_to_bd09mc(lon, lat), "BD-09MC", "GCJ-02") == pytest.approx((lon, lat), abs=1e-9)


# --------------------------------------------------------------------------- accuracy policy

from twinhub.standards.crs_policy import CRSRefused, reprojection_record  # noqa: E402

SHANGHAI_AREA = (120.85, 30.67, 122.20, 31.88)
# A local grid as its owner would give it: a transverse Mercator on CGCS2000, in WKT with its datum.
LOCAL_GRID_WKT = (
    'PROJCRS["City grid (example)",BASEGEOGCRS["China Geodetic Coordinate System 2000",DATUM["China 2000",'
    'ELLIPSOID["CGCS2000",6378137,298.257222101]],ID["EPSG",4490]],CONVERSION["local TM",'
    'METHOD["Transverse Mercator",ID["EPSG",9807]],PARAMETER["Latitude of natural origin",0,ANGLEUNIT["degree",0.0174532925199433]],'
    'PARAMETER["Longitude of natural origin",121.5,ANGLEUNIT["degree",0.0174532925199433]],'
    'PARAMETER["Scale factor at natural origin",1,SCALEUNIT["unity",1]],PARAMETER["False easting",50000,LENGTHUNIT["metre",1]],'
    'PARAMETER["False northing",-3400000,LENGTHUNIT["metre",1]]],CS[Cartesian,2],AXIS["easting",east],'
    'AXIS["northing",north],LENGTHUNIT["metre",1]]'
)
LOCAL_GRID_PROJ = "+proj=tmerc +lat_0=0 +lon_0=121.5 +k=1 +x_0=50000 +y_0=-3400000 +ellps=GRS80 +units=m"


@pytest.mark.parametrize(
    ("source", "accept", "outcome", "accuracy"),
    [
        ("EPSG:4549", None, "published", 0.0),  # a conversion on the same datum: exact
        ("EPSG:4326", None, "by design", 1.0),  # WGS 84 -> CGCS2000: ballpark, sub-metre
        ("GCJ-02", None, "by design", 1.0),
        ("BD-09MC", None, "by design", 1.0),
        ("EPSG:32651", None, "by design", 1.0),
        ("EPSG:4214", None, "refused", None),  # Beijing 1954: only a ballpark to CGCS2000
        ("EPSG:4610", None, "refused", None),  # Xian 1980
        ("EPSG:2385", None, "refused", None),  # Xian 1980 / 3-degree Gauss-Kruger CM 120E
        ("EPSG:4214", 100.0, "by the manifest", 100.0),
        (LOCAL_GRID_WKT, None, "published", 0.0),  # an owner's grid with its datum: exact
        (LOCAL_GRID_PROJ, None, "refused", None),  # the same without a datum: the hub will not assume one
    ],
    ids=["gk-cm120", "wgs84", "gcj02", "bd09mc", "utm51n", "beijing54", "xian80", "xian80-gk", "beijing54-accepted",
         "local-wkt", "local-proj-no-datum"],
)
def test_reprojections_are_refused_unless_good_enough_or_accepted(source, accept, outcome, accuracy):
    src, dst = resolve_crs(source), resolve_crs("EPSG:4490")
    kwargs = dict(declared=source, how="manifest", area=SHANGHAI_AREA, tolerance_m=1.0, accept_accuracy_m=accept)
    if outcome == "refused":
        with pytest.raises(CRSRefused) as refused:
            reprojection_record(src, dst, **kwargs)
        assert "accept_accuracy_m" in str(refused.value) and "ballpark" in str(refused.value)
        return
    record = reprojection_record(src, dst, **kwargs)
    assert record["accuracy_m"] == accuracy
    assert (record["accepted"] or "published").startswith(outcome)
    assert record["steps"] and record["source"] == src.name and record["how"] == "manifest"


def test_a_stated_accuracy_worse_than_the_city_s_is_refused_then_accepted():
    """NYC's State Plane (EPSG:2263) -> WGS 84 goes through NAD83 -> WGS 84 (1), stated to 4 m."""
    nyc = (-74.26, 40.49, -73.70, 40.92)
    src, dst = resolve_crs("EPSG:2263"), resolve_crs("EPSG:4326")
    with pytest.raises(CRSRefused, match="4 m, not within the hub's 1 m"):
        reprojection_record(src, dst, declared="x", how="source", area=nyc, tolerance_m=1.0)
    assert reprojection_record(src, dst, declared="x", how="source", area=nyc, tolerance_m=5.0)["accuracy_m"] == 4.0
    assert reprojection_record(src, dst, declared="x", how="source", area=nyc, tolerance_m=1.0,
                               accept_accuracy_m=4.0)["accepted"].startswith("by the manifest")


def test_region_dependent_shift_only_counts_where_it_covers_the_city():
    """Beijing 1954 -> WGS 84 (2) is valid for the Yellow Sea, which covers only part of Shanghai's extent."""
    summary = operation_summary("EPSG:4214", "EPSG:4326", area=SHANGHAI_AREA)
    assert summary["ballpark"] and summary["accuracy_m"] is None
    tarim = operation_summary("EPSG:4214", "EPSG:4326", area=(79.0, 38.0, 80.0, 39.0))
    assert not tarim["ballpark"] and tarim["accuracy_m"] == 1.0 and "Beijing 1954 to WGS 84 (4)" in tarim["steps"][0]
