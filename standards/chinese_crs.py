"""The Chinese obfuscated coordinate systems GCJ-02 and BD-09, vectorized with numpy.

GCJ-02 ("Mars coordinates") is WGS 84 plus a deterministic, non-linear offset of a
few hundred metres that Chinese law requires for published maps; BD-09 is Baidu's
further offset on top of GCJ-02.  The forward formulas are the well-known public
ones; the inverses here are *iterative* (fixed-point on the forward residual), so a
round trip is exact to well below a millimetre, unlike the common one-step
"inverse" formulas that are off by metres.

Conventions for every public function:

* arguments are ``(lon, lat)`` in degrees, scalars or anything numpy can broadcast;
* the result is a ``(lon, lat)`` tuple: two Python ``float`` when both inputs are
  scalars, otherwise two float64 ``numpy.ndarray`` of the broadcast shape (always
  new arrays, never views of the input);
* a point with a non-finite coordinate (NaN, inf) comes back as ``(nan, nan)``;
  nothing raises;
* GCJ-02 leaves points outside the rough rectangle around China unchanged (as every
  public implementation does); the BD-09 step applies everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "out_of_china",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

FloatArray = NDArray[np.float64]
Coords = tuple[Any, Any]  # (float, float) or (ndarray, ndarray), see module docstring

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 formula.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0

# Rough bounding rectangle of China used by all public GCJ-02 implementations.
_LON_MIN, _LON_MAX = 72.004, 137.8347
_LAT_MIN, _LAT_MAX = 0.8293, 55.8271

#: Iterative inverses stop once every point's forward residual is below this (degrees).
INVERSE_TOLERANCE_DEG = 1e-10
#: ... or after this many iterations.
INVERSE_MAX_ITERATIONS = 30


def _prepare(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray, bool]:
    """Broadcast to float64 copies, set points with any non-finite coordinate to NaN."""
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    scalar = lon_a.ndim == 0 and lat_a.ndim == 0
    lon_a, lat_a = np.broadcast_arrays(lon_a, lat_a)
    bad = ~(np.isfinite(lon_a) & np.isfinite(lat_a))
    lon_a = np.where(bad, np.nan, lon_a)
    lat_a = np.where(bad, np.nan, lat_a)
    return lon_a, lat_a, scalar


def _finish(lon: FloatArray, lat: FloatArray, scalar: bool) -> Coords:
    if scalar:
        return float(lon), float(lat)
    return lon, lat


def out_of_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """True where GCJ-02 applies no offset (outside the rough rectangle around China)."""
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    return (lon_a < _LON_MIN) | (lon_a > _LON_MAX) | (lat_a < _LAT_MIN) | (lat_a > _LAT_MAX)


def _transform_lat(x: FloatArray, y: FloatArray) -> FloatArray:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: FloatArray, y: FloatArray) -> FloatArray:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _gcj02_offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The GCJ-02 (dlon, dlat) in degrees to add to WGS 84; zero outside China."""
    x = lon - 105.0
    y = lat - 35.0
    dlat = _transform_lat(x, y)
    dlon = _transform_lon(x, y)
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    outside = out_of_china(lon, lat)
    return np.where(outside, 0.0, dlon), np.where(outside, 0.0, dlat)


def _gcj02_forward(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    dlon, dlat = _gcj02_offset(lon, lat)
    return lon + dlon, lat + dlat


def _bd09_forward(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd09_approx_inverse(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The widely published one-step BD-09 -> GCJ-02 formula (approximate)."""
    x = lon - 0.0065
    y = lat - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


_Forward = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]


def _invert(
    forward: _Forward, lon: FloatArray, lat: FloatArray, start: tuple[FloatArray, FloatArray]
) -> tuple[FloatArray, FloatArray]:
    """Solve ``forward(p) == (lon, lat)`` by fixed-point iteration from ``start``.

    Both offsets vary slowly (their Jacobian is the identity plus ~1e-5), so
    ``p -= forward(p) - target`` converges by several digits per step.
    """
    x, y = start
    for _ in range(INVERSE_MAX_ITERATIONS):
        fx, fy = forward(x, y)
        rx, ry = fx - lon, fy - lat
        x = x - rx
        y = y - ry
        worst = max(
            np.max(np.abs(rx), initial=0.0, where=np.isfinite(rx)),
            np.max(np.abs(ry), initial=0.0, where=np.isfinite(ry)),
        )
        if worst < INVERSE_TOLERANCE_DEG:
            break
    return x, y


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """WGS 84 -> GCJ-02 (identity outside China)."""
    lon_a, lat_a, scalar = _prepare(lon, lat)
    with np.errstate(invalid="ignore"):
        return _finish(*_gcj02_forward(lon_a, lat_a), scalar)


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """GCJ-02 -> WGS 84, iterated until the forward residual is below 1e-10 degrees."""
    lon_a, lat_a, scalar = _prepare(lon, lat)
    with np.errstate(invalid="ignore"):
        return _finish(*_invert(_gcj02_forward, lon_a, lat_a, (lon_a, lat_a)), scalar)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """GCJ-02 -> BD-09 (Baidu's public formula; applies everywhere)."""
    lon_a, lat_a, scalar = _prepare(lon, lat)
    with np.errstate(invalid="ignore"):
        return _finish(*_bd09_forward(lon_a, lat_a), scalar)


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """BD-09 -> GCJ-02: the published one-step formula, refined to < 1e-10 degrees."""
    lon_a, lat_a, scalar = _prepare(lon, lat)
    with np.errstate(invalid="ignore"):
        start = _bd09_approx_inverse(lon_a, lat_a)
        return _finish(*_invert(_bd09_forward, lon_a, lat_a, start), scalar)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """WGS 84 -> GCJ-02 -> BD-09."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """BD-09 -> GCJ-02 -> WGS 84 (both steps iterative)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))
