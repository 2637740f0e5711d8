"""Named coordinate reference systems for the hub, and cached reprojection.

Every CRS the hub meets is resolved to a :class:`HubCRS`: a canonical label, a
``pyproj.CRS`` and an optional *offset* for the Chinese obfuscated systems GCJ-02,
BD-09 and BD-09 Mercator, which are not real CRSs (no EPSG code) but WGS 84 plus a
non-linear offset (and, for BD-09 Mercator, Baidu's own polynomial projection; see
:mod:`standards.chinese_crs`).

Axis order: every function here takes and returns ``x`` = easting/longitude and
``y`` = northing/latitude, whatever the authority's axis order (EPSG:4326, 4490 and
4549 are all northing/latitude first in the EPSG definition).
"""

from __future__ import annotations

import functools
import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyproj
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj.exceptions import CRSError

from twinhub.errors import UserError
from twinhub.standards import chinese_crs

__all__ = [
    "HubCRS",
    "UnknownCRS",
    "operation_summary",
    "resolve_crs",
    "transform_coordinates",
    "transform_geometries",
    "transform_xy",
    "transformer",
]

_OFFSET_LABELS = {"gcj02": "GCJ-02", "bd09": "BD-09", "bd09mc": "BD-09MC"}
_OFFSET_DESCRIPTIONS = {
    "gcj02": "GCJ-02 (WGS 84 with the national obfuscation offset)",
    "bd09": "BD-09 (WGS 84 with the GCJ-02 offset plus Baidu's BD-09 offset)",
    "bd09mc": "BD-09MC (Baidu's Mercator metres of BD-09, from its public LL2MC/MC2LL tables)",
}

_Pair = Callable[[Any, Any], tuple[Any, Any]]
_REMOVE: dict[str, _Pair] = {
    "gcj02": chinese_crs.gcj02_to_wgs84,
    "bd09": chinese_crs.bd09_to_wgs84,
    "bd09mc": chinese_crs.bd09mc_to_wgs84,
}
_APPLY: dict[str, _Pair] = {
    "gcj02": chinese_crs.wgs84_to_gcj02,
    "bd09": chinese_crs.wgs84_to_bd09,
    "bd09mc": chinese_crs.wgs84_to_bd09mc,
}
# Between the two offsets there is a direct formula; going through WGS 84 would
# only add round-off from the iterative inverse.
_DIRECT: dict[tuple[str, str], _Pair] = {
    ("gcj02", "bd09"): chinese_crs.gcj02_to_bd09,
    ("bd09", "gcj02"): chinese_crs.bd09_to_gcj02,
    ("bd09", "bd09mc"): chinese_crs.bd09_to_bd09mc,
    ("bd09mc", "bd09"): chinese_crs.bd09mc_to_bd09,
    ("gcj02", "bd09mc"): chinese_crs.gcj02_to_bd09mc,
    ("bd09mc", "gcj02"): chinese_crs.bd09mc_to_gcj02,
}


class UnknownCRS(UserError, ValueError):
    """A value that :func:`resolve_crs` cannot turn into a CRS."""

    def __init__(self, value: object) -> None:
        self.value = value
        super().__init__(
            f"unknown CRS {value!r}: use an EPSG code such as EPSG:4549, one of "
            "GCJ-02, BD-09, BD-09MC, WGS84, CGCS2000, or a PROJ string / WKT from the data's owner"
        )

    def __reduce__(self) -> tuple[type[UnknownCRS], tuple[object]]:
        return (type(self), (self.value,))


@dataclass(frozen=True)
class HubCRS:
    """A resolved CRS.

    ``name`` is the canonical label ("EPSG:4549", "GCJ-02", "BD-09", ...).  For the
    offset systems ``crs`` is their WGS 84 base (EPSG:4326) and ``offset`` is
    "gcj02" or "bd09"; for everything else ``offset`` is None.
    """

    name: str
    crs: pyproj.CRS
    offset: str | None = None

    def __post_init__(self) -> None:
        if self.offset is not None and self.offset not in _OFFSET_LABELS:
            raise ValueError(f"offset must be None, 'gcj02', 'bd09' or 'bd09mc', not {self.offset!r}")

    @property
    def is_geographic(self) -> bool:
        return self.offset != "bd09mc" and bool(self.crs.is_geographic)

    @property
    def description(self) -> str:
        """One line for provenance, e.g. "EPSG:4549 (CGCS2000 / 3-degree Gauss-Kruger CM 120E)"."""
        if self.offset is not None:
            return _OFFSET_DESCRIPTIONS[self.offset]
        if self.crs.name and self.crs.name not in (self.name, "unknown"):
            return f"{self.name} ({self.crs.name})"
        return self.name

    def __str__(self) -> str:
        return self.name


# --------------------------------------------------------------------------- resolve


@functools.lru_cache(maxsize=256)
def _epsg(code: int) -> HubCRS | None:
    try:
        return HubCRS(f"EPSG:{code}", pyproj.CRS.from_epsg(code))
    except CRSError:
        return None


def _gcj02() -> HubCRS | None:
    wgs84 = _epsg(4326)
    return None if wgs84 is None else HubCRS("GCJ-02", wgs84.crs, "gcj02")


def _bd09() -> HubCRS | None:
    wgs84 = _epsg(4326)
    return None if wgs84 is None else HubCRS("BD-09", wgs84.crs, "bd09")


def _bd09mc() -> HubCRS | None:
    wgs84 = _epsg(4326)
    return None if wgs84 is None else HubCRS("BD-09MC", wgs84.crs, "bd09mc")


# Keys are upper-cased with spaces, "-" and "_" removed.
_ALIASES: dict[str, Callable[[], HubCRS | None]] = {
    "GCJ02": _gcj02,
    "BD09": _bd09,
    "BD09MC": _bd09mc,
    "BD09MERCATOR": _bd09mc,
    "BAIDUMERCATOR": _bd09mc,
    "WGS84": lambda: _epsg(4326),
    "CRS84": lambda: _epsg(4326),
    "OGC:CRS84": lambda: _epsg(4326),
    "CGCS2000": lambda: _epsg(4490),
}
_EPSG_RE = re.compile(r"(?:EPSG:+)?(\d+)")


def _from_pyproj(crs: pyproj.CRS, text: str) -> HubCRS:
    code = crs.to_epsg(min_confidence=95)
    if code is not None:
        name = f"EPSG:{code}"
    elif crs.name and crs.name != "unknown":
        name = crs.name
    else:
        name = text.strip()
    return HubCRS(name, crs)


@functools.lru_cache(maxsize=512)
def _resolve_text(text: str) -> HubCRS | None:
    key = re.sub(r"[\s_\-]", "", text).upper()
    if key in _ALIASES:
        return _ALIASES[key]()
    match = _EPSG_RE.fullmatch(key)
    if match:
        return _epsg(int(match.group(1)))
    try:
        crs = pyproj.CRS.from_user_input(text)
    except CRSError:
        return None
    return _from_pyproj(crs, text)


def resolve_crs(value: str | int | HubCRS | pyproj.CRS) -> HubCRS:
    """Resolve an EPSG code ("EPSG:4549", "epsg:4549", 4549, "4549"), an alias
    (GCJ-02/GCJ02, BD-09/BD09, BD-09MC/BD09 Mercator/Baidu Mercator,
    WGS84/WGS 84/CRS84/OGC:CRS84 -> EPSG:4326,
    CGCS2000 -> EPSG:4490), a PROJ string or WKT, a ``pyproj.CRS`` or a HubCRS.

    Cached on the string form.  Raises :class:`UnknownCRS` otherwise.
    """
    if isinstance(value, HubCRS):
        return value
    if isinstance(value, pyproj.CRS):
        text = value.to_wkt()
    elif isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value)
    else:
        raise UnknownCRS(value)
    resolved = _resolve_text(text)
    if resolved is None:
        raise UnknownCRS(value)
    return resolved


# --------------------------------------------------------------------------- transform

_TRANSFORMERS: dict[tuple[str, str], pyproj.Transformer] = {}
_TRANSFORMERS_LOCK = threading.Lock()


def transformer(src: pyproj.CRS, dst: pyproj.CRS) -> pyproj.Transformer:
    """``Transformer.from_crs(src, dst, always_xy=True)``, one object per pair.

    Keyed on the WKT of both CRSs, so equal CRSs built separately share it.
    pyproj Transformers are safe to share between threads (pyproj >= 3.1).
    """
    key = (src.to_wkt(), dst.to_wkt())
    found = _TRANSFORMERS.get(key)
    if found is not None:
        return found
    with _TRANSFORMERS_LOCK:
        found = _TRANSFORMERS.get(key)
        if found is None:
            found = pyproj.Transformer.from_crs(src, dst, always_xy=True)
            _TRANSFORMERS[key] = found
        return found


def _same_crs(a: pyproj.CRS, b: pyproj.CRS) -> bool:
    return a is b or a == b


def _same(a: HubCRS, b: HubCRS) -> bool:
    return a.offset == b.offset and _same_crs(a.crs, b.crs)


def _as_xy(x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64], bool]:
    """Broadcast float64 copies of x and y, and whether both were scalars."""
    xa = np.array(x, dtype=np.float64)
    ya = np.array(y, dtype=np.float64)
    scalar = xa.ndim == 0 and ya.ndim == 0
    xa, ya = np.broadcast_arrays(xa, ya)
    return xa.copy(), ya.copy(), scalar


def transform_xy(x: ArrayLike, y: ArrayLike, src: Any, dst: Any) -> tuple[Any, Any]:
    """Reproject coordinates from ``src`` to ``dst`` (anything :func:`resolve_crs` takes).

    x is easting/longitude and y northing/latitude on both sides.  Returns two
    floats for scalar input, else two float64 arrays of the broadcast shape.  Points
    with non-finite input, or that PROJ cannot transform, come back as NaN.
    """
    s, d = resolve_crs(src), resolve_crs(dst)
    xa, ya, scalar = _as_xy(x, y)
    if not _same(s, d):
        xa, ya = _transform_arrays(xa, ya, s, d)
    xa = np.asarray(xa, dtype=np.float64)
    ya = np.asarray(ya, dtype=np.float64)
    bad = ~(np.isfinite(xa) & np.isfinite(ya))
    if bad.any():
        xa = np.where(bad, np.nan, xa)
        ya = np.where(bad, np.nan, ya)
    if scalar:
        return float(xa), float(ya)
    return xa, ya


def _transform_arrays(x: Any, y: Any, s: HubCRS, d: HubCRS) -> tuple[Any, Any]:
    same_base = _same_crs(s.crs, d.crs)
    if same_base and (s.offset, d.offset) in _DIRECT:
        return _DIRECT[(s.offset, d.offset)](x, y)
    if s.offset is not None:
        x, y = _REMOVE[s.offset](x, y)
    if not same_base:
        x, y = transformer(s.crs, d.crs).transform(x, y)
    if d.offset is not None:
        x, y = _APPLY[d.offset](x, y)
    return x, y


def transform_geometries(geoms: Any, src: Any, dst: Any) -> NDArray[np.object_]:
    """Reproject shapely geometries of any type; returns an object array of the same shape.

    None and empty geometries pass through unchanged; Z values are kept as they
    are (only the horizontal position is transformed).
    """
    s, d = resolve_crs(src), resolve_crs(dst)
    arr = np.array(geoms, dtype=object)
    if _same(s, d):
        return arr

    found = transform_points(arr, s, d)
    if found is not None:
        points = ~found.missing
        arr[points] = shapely.points(found.x[points], found.y[points])
        return arr

    def fn(x: NDArray[np.float64], y: NDArray[np.float64], z: Any = None) -> tuple[Any, ...]:
        nx, ny = transform_xy(x, y, s, d)
        return (nx, ny) if z is None else (nx, ny, z)

    out = shapely.transform(arr, fn, include_z=None, interleaved=False)
    return np.asarray(out, dtype=object)


@dataclass(frozen=True)
class PointCoordinates:
    """An array of plain 2D points and None as coordinates: where None is, and x/y before and after
    reprojection (NaN where None; NaN after it where the position cannot be reprojected)."""

    missing: NDArray[np.bool_]
    source_x: NDArray[np.float64]
    source_y: NDArray[np.float64]
    x: NDArray[np.float64]
    y: NDArray[np.float64]


def transform_points(geoms: Any, src: Any, dst: Any) -> PointCoordinates | None:
    """Reproject an array of non-empty 2D points and None as coordinates (no geometry is made);
    None when it holds anything else (then :func:`transform_geometries` does it).

    ``shapely.points(x, y)`` of the result are the points :func:`transform_geometries` returns
    (rebuilding them is about twice as fast as ``shapely.transform``'s clone and set; a Z or empty
    point would not survive it, so those arrays take the general path).
    """
    s, d = resolve_crs(src), resolve_crs(dst)
    arr = np.asarray(geoms, dtype=object)
    if arr.ndim != 1:
        return None
    kinds = shapely.get_type_id(arr)  # -1 for None
    points = kinds == 0
    if not (points | (kinds == -1)).all() or shapely.has_z(arr).any():
        return None
    xy = shapely.get_coordinates(arr)  # one row per non-empty point (None gives none)
    if len(xy) != points.sum():  # an empty point, which rebuilding would not keep empty
        return None
    sx, sy = np.full(len(arr), np.nan), np.full(len(arr), np.nan)
    if points.all():
        sx, sy = xy[:, 0].copy(), xy[:, 1].copy()
    elif points.any():
        sx[points], sy[points] = xy[:, 0], xy[:, 1]
    return transform_coordinates(sx, sy, ~points, s, d)


def transform_coordinates(x: NDArray[np.float64], y: NDArray[np.float64], missing: NDArray[np.bool_],
                          src: Any, dst: Any) -> PointCoordinates:
    """:func:`transform_points` of the points ``(x, y)`` (none where ``missing``), given as coordinates."""
    s, d = resolve_crs(src), resolve_crs(dst)
    points = ~np.asarray(missing, dtype=bool)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if not points.all():  # as a None's bounds: no position
        x, y = np.where(points, x, np.nan), np.where(points, y, np.nan)
    if _same(s, d):
        return PointCoordinates(~points, x, y, x, y)
    if points.all():
        nx, ny = transform_xy(x, y, s, d)
    else:  # only the points: the iterative inverses stop on the same blocks as transform_xy of them alone
        nx, ny = np.full(len(x), np.nan), np.full(len(x), np.nan)
        nx[points], ny[points] = transform_xy(x[points], y[points], s, d)
    return PointCoordinates(~points, x, y, nx, ny)


def _proj_operation(src: pyproj.CRS, dst: pyproj.CRS, area: tuple[float, float, float, float] | None):
    """The PROJ operation the hub's transformer uses for points in ``area`` (lon/lat box).

    When several operations exist (region-dependent datum shifts such as Beijing 1954
    to WGS 84), PROJ picks one per point; the one applicable to ``area`` is reported.
    """
    t = transformer(src, dst)
    if t.operations or area is None:
        return t, 1
    with warnings.catch_warnings():  # "best transformation is not available" (a grid not installed)
        warnings.simplefilter("ignore", UserWarning)
        group = pyproj.transformer.TransformerGroup(
            src, dst, always_xy=True, area_of_interest=pyproj.aoi.AreaOfInterest(*area)
        )
    # an operation valid for only part of the city (e.g. an offshore basin) is not the
    # city's: PROJ falls back to the next one, often a ballpark, for the rest
    covering = [g for g in group.transformers if g.area_of_use is None or _covers(g.area_of_use.bounds, area)]
    return (covering[0] if covering else t), len(group.transformers)


def _covers(bounds: tuple[float, float, float, float], area: tuple[float, float, float, float]) -> bool:
    return bounds[0] <= area[0] and bounds[1] <= area[1] and bounds[2] >= area[2] and bounds[3] >= area[3]


def _is_ballpark(t: pyproj.Transformer) -> bool:
    names = [op.name for op in t.operations] if t.operations else [t.description]
    return any("ballpark" in (n or "").lower() for n in names)


def operation_summary(src: Any, dst: Any, area: tuple[float, float, float, float] | None = None) -> dict[str, Any]:
    """What :func:`transform_xy` does for this pair, for provenance records.

    ``accuracy_m`` is PROJ's stated accuracy of its step, None when PROJ does not
    know it (e.g. a "ballpark" transformation); the offset steps count as exact
    (their iterative inverses agree to < 1e-10 degrees, about 10 micrometres).
    ``ballpark`` is True when PROJ has no real transformation between the two
    datums and only assumes they coincide (errors of up to ~100 m for old datums).
    ``area`` (lon/lat box, e.g. the city) picks the operation PROJ uses there when
    the shift between the datums is region-dependent.
    """
    s, d = resolve_crs(src), resolve_crs(dst)
    steps: list[str] = []
    accuracy: float | None = 0.0
    ballpark = False
    same_base = _same_crs(s.crs, d.crs)
    if _same(s, d):
        steps.append("identity (same CRS)")
    elif same_base and (s.offset, d.offset) in _DIRECT:
        steps.append(f"convert {s.name} to {d.name} directly (public Baidu formulas, inverses iterated)")
    else:
        if s.offset is not None:
            steps.append(
                f"remove the {s.name} offset to WGS 84 (iterative inverse of the public "
                "formula, residual < 1e-10 degrees)"
            )
        if not same_base:
            t, choices = _proj_operation(s.crs, d.crs, area)
            where = f" (of {choices} region-dependent operations, the one covering the whole city)" if choices > 1 else ""
            steps.append(f"PROJ: {t.description} [{t.definition}]{where}")
            accuracy = t.accuracy if t.accuracy is not None and t.accuracy >= 0 else None
            ballpark = _is_ballpark(t)
        if d.offset is not None:
            steps.append(f"apply the {d.name} offset from WGS 84 (public forward formula)")
    return {"source": s.name, "target": d.name, "steps": steps, "accuracy_m": accuracy, "ballpark": ballpark}
