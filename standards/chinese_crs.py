"""The Chinese obfuscated coordinate systems GCJ-02 and BD-09, vectorized with numpy.

GCJ-02 ("Mars coordinates") is WGS 84 plus a deterministic, non-linear offset of a
few hundred metres that Chinese law requires for published maps; BD-09 is Baidu's
further offset on top of GCJ-02, and BD-09 Mercator (BD09MC) Baidu's projected x/y
in metres of BD-09 (see the end of this module).  The forward formulas are the well-known public
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

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CONSTANTS",
    "bd09_to_bd09mc",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "bd09mc_to_bd09",
    "bd09mc_to_gcj02",
    "bd09mc_to_wgs84",
    "gcj02_to_bd09mc",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "out_of_china",
    "wgs84_to_bd09",
    "wgs84_to_bd09mc",
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

#: The formulas' constants, for the SQL versions of these functions (catalog/crs_functions.py):
#: the Krasovsky semi-major axis and eccentricity squared, Baidu's x_pi, Baidu's shift (degrees),
#: and the rectangle (lon_min, lat_min, lon_max, lat_max) outside which GCJ-02 adds nothing.
CONSTANTS = {"a": _A, "ee": _EE, "x_pi": float(_X_PI), "bd_dlon": 0.0065, "bd_dlat": 0.006,
             "china": (_LON_MIN, _LAT_MIN, _LON_MAX, _LAT_MAX)}

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


def _triple(s: FloatArray) -> FloatArray:
    """sin(3t) from s = sin(t): saves a call to np.sin, the costly part of the offset."""
    return s * (3.0 - 4.0 * s * s)


def _gcj02_offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The GCJ-02 (dlon, dlat) in degrees to add to WGS 84; zero outside China.

    The public formula's two polynomials (``transformLat``/``transformLon``) with their
    sines shared and sin(3t) taken from sin(t): 8 sines per point instead of 14, equal
    to the formula as usually written to ~1e-15 of the offset (sub-nanometre).
    """
    x = lon - 105.0
    y = lat - 35.0
    xpi = x * np.pi
    ypi = y * np.pi
    s2x = np.sin(2.0 * xpi)
    sx3 = np.sin(xpi / 3.0)
    sy3 = np.sin(ypi / 3.0)
    shared = (20.0 * _triple(s2x) + 20.0 * s2x) * (2.0 / 3.0) + 0.1 * x * y
    root = np.sqrt(np.abs(x))
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.2 * root + shared
    dlat += (20.0 * _triple(sy3) + 40.0 * sy3) * (2.0 / 3.0)
    dlat += (160.0 * np.sin(ypi / 12.0) + 320.0 * np.sin(ypi / 30.0)) * (2.0 / 3.0)
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * root + shared
    dlon += (20.0 * _triple(sx3) + 40.0 * sx3) * (2.0 / 3.0)
    dlon += (150.0 * np.sin(xpi / 12.0) + 300.0 * np.sin(xpi / 30.0)) * (2.0 / 3.0)
    sinlat = np.sin(lat * (np.pi / 180.0))
    magic = 1.0 - _EE * sinlat * sinlat
    sqrtmagic = np.sqrt(magic)
    coslat = np.sqrt(1.0 - sinlat * sinlat)  # |lat| < 90 wherever the offset applies
    dlat *= 180.0 * magic * sqrtmagic / (_A * (1.0 - _EE) * np.pi)
    with np.errstate(divide="ignore"):  # at the poles, which are out of China
        dlon *= 180.0 * sqrtmagic / (_A * np.pi * coslat)
    outside = out_of_china(lon, lat)
    return np.where(outside, 0.0, dlon), np.where(outside, 0.0, dlat)


def _gcj02_forward(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    dlon, dlat = _gcj02_offset(lon, lat)
    return lon + dlon, lat + dlat


def _bd09_forward(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + CONSTANTS["bd_dlon"], z * np.sin(theta) + CONSTANTS["bd_dlat"]


def _bd09_approx_inverse(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The widely published one-step BD-09 -> GCJ-02 formula (approximate)."""
    x = lon - CONSTANTS["bd_dlon"]
    y = lat - CONSTANTS["bd_dlat"]
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


_Forward = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]


def _invert(
    forward: _Forward,
    lon: FloatArray,
    lat: FloatArray,
    start: tuple[FloatArray, FloatArray],
    contraction: float | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Solve ``forward(p) == (lon, lat)`` by fixed-point iteration from ``start``.

    Both offsets vary slowly (their Jacobian is the identity plus ~1e-5), so
    ``p -= forward(p) - target`` converges by several digits per step.

    Without ``contraction`` the loop stops once the forward residual of the current
    point is below :data:`INVERSE_TOLERANCE_DEG`.  With it (a bound on the norm of the
    offset's Jacobian), it stops one forward evaluation earlier: after the step taken
    from a residual ``r`` the error is at most ``contraction * r``, so it is below the
    tolerance once ``r`` is below ``tolerance / contraction``.
    """
    x, y = start
    stop = INVERSE_TOLERANCE_DEG if contraction is None else INVERSE_TOLERANCE_DEG / contraction
    parts = _parts(x.size) if x.ndim == 1 else [slice(None)]
    if len(parts) > 1:  # numpy releases the GIL: the parts' steps run on both cores
        x, y = x.copy(), y.copy()
        for _ in range(INVERSE_MAX_ITERATIONS):
            worst = max(_pool().map(lambda part: _step(forward, x, y, lon, lat, part), parts))
            if worst < stop:
                break
        return x, y
    for _ in range(INVERSE_MAX_ITERATIONS):
        fx, fy = forward(x, y)
        rx, ry = fx - lon, fy - lat
        x = x - rx
        y = y - ry
        worst = _worst(rx, ry)
        if worst < stop:
            break
    return x, y


def _worst(rx: FloatArray, ry: FloatArray) -> float:
    return max(
        np.max(np.abs(rx), initial=0.0, where=np.isfinite(rx)),
        np.max(np.abs(ry), initial=0.0, where=np.isfinite(ry)),
    )


def _step(forward: _Forward, x: FloatArray, y: FloatArray, lon: FloatArray, lat: FloatArray, part: slice) -> float:
    """One fixed-point step on ``part`` of x and y, in place; the part's largest residual.

    Element by element the same arithmetic as the whole-array step, so the same result; the
    loop stops on the largest residual of all parts, as it does on the whole array."""
    with np.errstate(invalid="ignore"):
        fx, fy = forward(x[part], y[part])
        rx, ry = fx - lon[part], fy - lat[part]
        x[part] -= rx
        y[part] -= ry
    return _worst(rx, ry)


#: Arrays at least this long are split among threads (smaller ones are not worth a thread's hand-off).
PARALLEL_MIN = 16384
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _workers() -> int:
    return min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _parts(n: int) -> list[slice]:
    """Two halves of ``n`` (split on a multiple of 64 elements) when threads would help, else one."""
    if n < PARALLEL_MIN or _workers() < 2:
        return [slice(None)]
    half = (n // 2) // 64 * 64
    return [slice(0, half), slice(half, n)]


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="gcj02")
        return _POOL


#: The norm of the GCJ-02 offset's Jacobian is below 0.0074 everywhere in the
#: rectangle around China (checked on a grid; tests/standards/test_crs.py).
GCJ02_CONTRACTION = 0.01
#: Points per block: numpy's temporaries of a block stay in the CPU cache.
_BLOCK = 65536


def _blockwise(fn: _Forward, lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``fn`` over 1-D blocks of the (broadcast, same-shape) inputs, into new arrays."""
    if lon.size <= _BLOCK:
        return fn(lon, lat)
    flat_lon, flat_lat = lon.ravel(), lat.ravel()
    out_lon, out_lat = np.empty_like(flat_lon), np.empty_like(flat_lat)
    for i in range(0, flat_lon.size, _BLOCK):
        part = slice(i, i + _BLOCK)
        out_lon[part], out_lat[part] = fn(flat_lon[part], flat_lat[part])
    return out_lon.reshape(lon.shape), out_lat.reshape(lat.shape)


def _gcj02_inverse(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _invert(_gcj02_forward, lon, lat, (lon, lat), GCJ02_CONTRACTION)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """WGS 84 -> GCJ-02 (identity outside China)."""
    lon_a, lat_a, scalar = _prepare(lon, lat)
    with np.errstate(invalid="ignore"):
        return _finish(*_blockwise(_gcj02_forward, lon_a, lat_a), scalar)


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """GCJ-02 -> WGS 84, iterated until the error is below 1e-10 degrees."""
    lon_a, lat_a, scalar = _prepare(lon, lat)
    with np.errstate(invalid="ignore"):
        return _finish(*_blockwise(_gcj02_inverse, lon_a, lat_a), scalar)


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


# --------------------------------------------------------------------------- BD-09 Mercator
#
# Baidu's own projected coordinates ("BD09MC", the x/y its web API and map tiles use)
# are not a true Mercator: Baidu fits BD-09 lon/lat to metres with the polynomial
# tables of its public JavaScript API, one row per latitude band.  LL2MC is the
# forward map; MC2LL is Baidu's own (approximate) inverse, refined below until it
# inverts LL2MC exactly, so a round trip stays well inside a millimetre.

_LLBAND = np.array([75.0, 60.0, 45.0, 30.0, 15.0, 0.0])
_MCBAND = np.array([12890594.86, 8362377.87, 5591021.0, 3481989.83, 1678043.12, 0.0])
_LL2MC = np.array([
    [-0.0015702102444, 111320.7020616939, 1704480524535203, -10338987376042340, 26112667856603880,
     -35149669176653700, 26595700718403920, -10725012454188240, 1800819912950474, 82.5],
    [0.0008277824516172526, 111320.7020463578, 647795574.6671607, -4082003173.641316, 10774905663.51142,
     -15171875531.51559, 12053065338.62167, -5124939663.577472, 913311935.9512032, 67.5],
    [0.00337398766765, 111320.7020202162, 4481351.045890365, -23393751.19931662, 79682215.47186455,
     -115964993.2797253, 97236711.15602145, -43661946.33752821, 8477230.501135234, 52.5],
    [0.00220636496208, 111320.7020209128, 51751.86112841131, 3796837.749470245, 992013.7397791013,
     -1221952.21711287, 1340652.697009075, -620943.6990984312, 144416.9293806241, 37.5],
    [-0.0003441963504368392, 111320.7020576856, 278.2353980772752, 2485758.690035394, 6070.750963243378,
     54821.18345352118, 9540.606633304236, -2710.55326746645, 1405.483844121726, 22.5],
    [-0.0003218135878613132, 111320.7020701615, 0.00369383431289, 823725.6402795718, 0.46104986909093,
     2351.343141331292, 1.58060784298199, 8.77738589078284, 0.37238884252424, 7.45],
])
_MC2LL = np.array([
    [1.410526172116255e-8, 0.00000898305509648872, -1.9939833816331, 200.9824383106796, -187.2403703815547,
     91.6087516669843, -23.38765649603339, 2.57121317296198, -0.03801003308653, 17337981.2],
    [-7.435856389565537e-9, 0.000008983055097726239, -0.78625201886289, 96.32687599759846, -1.85204757529826,
     -59.36935905485877, 47.40033549296737, -16.50741931063887, 2.28786674699375, 10260144.86],
    [-3.030883460898826e-8, 0.00000898305509983578, 0.30071316287616, 59.74293618442277, 7.357984074871,
     -25.38371002664745, 13.45380521110908, -3.29883767235584, 0.32710905363475, 6856817.37],
    [-1.981981304930552e-8, 0.000008983055099779535, 0.03278182852591, 40.31678527705744, 0.65659298677277,
     -4.44255534477492, 0.85341911805263, 0.12923347998204, -0.04625736007561, 4482777.06],
    [3.09191371068437e-9, 0.000008983055096812155, 0.00006995724062, 23.10934304144901, -0.00023663490511,
     -0.6321817810242, -0.00663494467273, 0.03430082397953, -0.00466043876332, 2555164.4],
    [2.890871144776878e-9, 0.000008983055095805407, -3.068298e-8, 7.47137025468032, -0.00000353937994,
     -0.02145144861037, -0.00001234426596, 0.00010322952773, -0.00000323890364, 826088.5],
])


def _band_polynomial(x: FloatArray, y: FloatArray, table: NDArray[np.float64], band: NDArray[np.intp]):
    """Baidu's ``convertor``: x scales linearly, y is a degree-6 polynomial of |y| / c[9]."""
    c = table[band].T
    out_x = c[0] + c[1] * np.abs(x)
    t = np.abs(y) / c[9]
    out_y = c[2] + t * (c[3] + t * (c[4] + t * (c[5] + t * (c[6] + t * (c[7] + t * c[8])))))
    return np.copysign(out_x, x), np.copysign(out_y, y)


def _first_band(value: FloatArray, bands: NDArray[np.float64]) -> NDArray[np.intp]:
    """Index of the first band whose lower bound ``value`` reaches (bands are descending)."""
    finite = np.where(np.isfinite(value), value, 0.0)
    return np.argmax(finite[..., None] >= bands, axis=-1)


def _bd09mc_forward(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    lon = (lon + 180.0) % 360.0 - 180.0
    lat = np.clip(lat, -74.0, 74.0)
    return _band_polynomial(lon, lat, _LL2MC, _first_band(np.abs(lat), _LLBAND))


def _bd09mc_approx_inverse(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _band_polynomial(x, y, _MC2LL, _first_band(np.abs(y), _MCBAND))


def bd09_to_bd09mc(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """BD-09 lon/lat -> BD-09 Mercator x/y in metres (Baidu's LL2MC tables).

    >>> [round(v, 2) for v in bd09_to_bd09mc(116.403874, 39.914889)]
    [12958160.97, 4825907.72]
    """
    lon_a, lat_a, scalar = _prepare(lon, lat)
    with np.errstate(invalid="ignore"):
        return _finish(*_bd09mc_forward(lon_a, lat_a), scalar)


def bd09mc_to_bd09(x: ArrayLike, y: ArrayLike) -> Coords:
    """BD-09 Mercator x/y -> BD-09 lon/lat: Baidu's MC2LL, refined to invert LL2MC.

    The refinement is a defect correction: MC2LL is applied to the residual of the
    forward map, which converges because MC2LL is close to the exact inverse.
    """
    x_a, y_a, scalar = _prepare(x, y)
    with np.errstate(invalid="ignore"):
        lon, lat = _bd09mc_approx_inverse(x_a, y_a)
        target_lon, target_lat = lon, lat
        for _ in range(INVERSE_MAX_ITERATIONS):
            fx, fy = _bd09mc_forward(lon, lat)
            back_lon, back_lat = _bd09mc_approx_inverse(fx, fy)
            d_lon, d_lat = target_lon - back_lon, target_lat - back_lat
            lon, lat = lon + d_lon, lat + d_lat
            worst = max(
                np.max(np.abs(d_lon), initial=0.0, where=np.isfinite(d_lon)),
                np.max(np.abs(d_lat), initial=0.0, where=np.isfinite(d_lat)),
            )
            if worst < INVERSE_TOLERANCE_DEG:
                break
        return _finish(lon, lat, scalar)


def wgs84_to_bd09mc(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """WGS 84 -> GCJ-02 -> BD-09 -> BD-09 Mercator."""
    return bd09_to_bd09mc(*wgs84_to_bd09(lon, lat))


def bd09mc_to_wgs84(x: ArrayLike, y: ArrayLike) -> Coords:
    """BD-09 Mercator -> BD-09 -> GCJ-02 -> WGS 84 (every step inverted iteratively)."""
    return bd09_to_wgs84(*bd09mc_to_bd09(x, y))


def gcj02_to_bd09mc(lon: ArrayLike, lat: ArrayLike) -> Coords:
    return bd09_to_bd09mc(*gcj02_to_bd09(lon, lat))


def bd09mc_to_gcj02(x: ArrayLike, y: ArrayLike) -> Coords:
    return bd09_to_gcj02(*bd09mc_to_bd09(x, y))
