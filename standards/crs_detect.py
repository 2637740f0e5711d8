"""Candidate CRSs for coordinates whose source declares none, ranked against the city.

A source without a declared CRS (a CSV of x/y numbers, a Shapefile without .prj)
is never reprojected on a guess. Instead the hub tries the CRSs such data is
usually in and reports which of them put the coordinates inside the city:

* lon/lat (WGS 84), and in China GCJ-02, BD-09 and BD-09 Mercator;
* the same with x and y swapped (latitude/northing written first);
* Web Mercator, the UTM zone of the city, the city's own ``crs_candidates``
  (city.yaml), and every projected EPSG CRS whose area of use meets the city.

Candidates that put the same share of positions inside the city share the
confidence: the range alone cannot prefer one, and they are listed in order of
how common they are. Those that place the points within ``ALIKE_M`` of each
other (WGS 84 vs GCJ-02, a Gauss-Kruger grid on CGCS2000 vs the same grid on
Xian 1980) are named as ``alike``: no city is small enough to tell them apart. Local city grids have no public parameters and are never
guessed; their owner gives them as a PROJ string or WKT.

>>> from twinhub.standards.pack import load_pack
>>> best = rank_crs([640060.34], [3457406.44], load_pack().city, "EPSG:4490")[0]
>>> best.crs, best.swapped, best.inside_share
('EPSG:4549', False, 1.0)
"""

from __future__ import annotations

import functools
import math
import pathlib
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyproj
import shapely
import yaml
from numpy.typing import ArrayLike, NDArray
from pyproj.database import query_crs_info
from pyproj.enums import PJType

from twinhub.standards.chinese_crs import out_of_china
from twinhub.standards.crs import UnknownCRS, resolve_crs, transform_xy
from twinhub.standards.crs_policy import CRSRefused, reprojection_record
from twinhub.standards.pack import City, StandardsError

ALIKE_M = 2_000.0  # candidates whose positions agree this closely cannot be told apart by range
TIE = 0.05  # candidates whose inside shares differ by less fit equally well
SAMPLE = 2_000  # positions tried per candidate
_GLOBAL_WIDTH_DEG = 60.0  # EPSG projections wider than this (world maps) are left out of the search
_OFFSET_NOTE = (
    "cannot be told apart from WGS 84 by position alone: ask whether the coordinates were picked "
    "on a Chinese web map (Amap/Tencent: GCJ-02, Baidu: BD-09)"
)


@dataclass(frozen=True)
class CRSCandidate:
    """One way to read the coordinates, and how well it fits the city."""

    crs: str  # what to write in the manifest's source.crs
    title: str
    swapped: bool  # the x column holds northing/latitude: swap source.x and source.y
    inside_share: float  # share of the sampled positions that fall inside the city
    confidence: float  # inside_share, shared with the candidates that fit equally well
    alike: tuple[str, ...] = field(default=())  # candidates placing the points within ALIKE_M of these
    note: str = ""

    def describe(self) -> str:
        text = f"{self.crs} ({self.title})"
        if self.swapped:
            text += " with x and y swapped"
        text += f": {self.inside_share:.0%} of the points inside the city, confidence {self.confidence:.0%}"
        if self.alike:
            text += f"; indistinguishable here from {', '.join(self.alike[:4])}"
        return text + (f"; {self.note}" if self.note else "")

    def as_dict(self) -> dict:
        return {
            "crs": self.crs, "title": self.title, "swapped": self.swapped, "inside_share": round(self.inside_share, 4),
            "confidence": round(self.confidence, 4), "alike": list(self.alike), "note": self.note,
        }


def positions(geometries: ArrayLike, limit: int = SAMPLE) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """One representative x/y per geometry (its bounding-box centre), at most ``limit``, evenly spread."""
    geoms = np.asarray(geometries, dtype=object)
    geoms = geoms[[g is not None for g in geoms]] if geoms.size else geoms
    if geoms.size == 0:
        return np.empty(0), np.empty(0)
    bounds = shapely.bounds(geoms)
    x, y = (bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) > limit:
        pick = np.linspace(0, len(x) - 1, limit).astype(int)
        x, y = x[pick], y[pick]
    return x, y


def _centre(city: City) -> tuple[float, float]:
    minx, miny, maxx, maxy = lonlat_extent(city)
    return (minx + maxx) / 2, (miny + maxy) / 2


def lonlat_extent(city: City, target_crs: str | None = None) -> tuple[float, float, float, float]:
    """The city's extent in longitude/latitude (city.yaml writes it in the city's own CRS, whatever the
    hub's ``target_crs``)."""
    return city.extent_in("EPSG:4326")


def _accuracy(crs: str, target: str, area: tuple[float, float, float, float]) -> float:
    """How well ``crs`` reprojects to the target here: a modern datum is the likelier reading."""
    try:
        record = reprojection_record(resolve_crs(crs), resolve_crs(target), declared=crs, how="detected",
                                     area=area, tolerance_m=math.inf)
    except (CRSRefused, UnknownCRS):
        return math.inf
    return record["accuracy_m"] if record["accuracy_m"] is not None else math.inf


@functools.lru_cache(maxsize=32)
def _epsg_search(area: tuple[float, float, float, float], target: str) -> tuple[tuple[str, str], ...]:
    """Projected EPSG CRSs whose area of use meets ``area`` (lon/lat), world maps left out,
    those on datums that reproject accurately to ``target`` first."""
    found = query_crs_info(
        auth_name="EPSG", pj_types=[PJType.PROJECTED_CRS], area_of_interest=pyproj.aoi.AreaOfInterest(*area),
        contains=False,
    )
    regional = [
        c for c in found
        if c.area_of_use is not None and (c.area_of_use.east - c.area_of_use.west) < _GLOBAL_WIDTH_DEG
        and not c.deprecated
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranked = sorted(regional, key=lambda c: (_accuracy(f"EPSG:{c.code}", target, area), c.name))
    return tuple((f"EPSG:{c.code}", c.name) for c in ranked)


def candidate_crs(city: City, target_crs: str) -> list[tuple[str, str, str]]:
    """(crs, title, note) to try, most likely first: generic, the city's own, then the EPSG search."""
    area = lonlat_extent(city, target_crs)
    lon, lat = (area[0] + area[2]) / 2, (area[1] + area[3]) / 2
    in_china = not bool(out_of_china(lon, lat))
    tried: list[tuple[str, str, str]] = [("EPSG:4326", "WGS 84 longitude/latitude", "")]
    if in_china:
        tried += [
            ("GCJ-02", "China's obfuscated web-map coordinates", _OFFSET_NOTE),
            ("BD-09", "Baidu's longitude/latitude", _OFFSET_NOTE),
        ]
    tried += [(c, f"{_name(c)}; the city's usual CRS (city.yaml crs_candidates)", "") for c in city.crs_candidates]
    zone = int((lon + 180) // 6) + 1
    tried += [
        ("EPSG:3857", "Web Mercator", ""),
        (f"EPSG:{(32600 if lat >= 0 else 32700) + zone}", f"WGS 84 / UTM zone {zone}{'N' if lat >= 0 else 'S'}", ""),
    ]
    if in_china:
        tried.append(("BD-09MC", "Baidu's Mercator metres", ""))
    tried += [(code, name, "") for code, name in _epsg_search(area, target_crs)]
    unique: dict[str, tuple[str, str, str]] = {}
    for crs, title, note in tried:
        name = resolve_crs(crs).name
        unique.setdefault(name, (name, title, note))
    return list(unique.values())


def _name(crs: str) -> str:
    resolved = resolve_crs(crs)
    return resolved.description if resolved.offset else resolved.crs.name


def _inside(x: NDArray, y: NDArray, gate: tuple[float, float, float, float]) -> NDArray[np.bool_]:
    return (x >= gate[0]) & (x <= gate[2]) & (y >= gate[1]) & (y <= gate[3])


def _metres(target_geographic: bool, dx: NDArray, dy: NDArray, lat: float | NDArray) -> NDArray:
    """Metres between positions ``dx``/``dy`` apart (degrees when the target CRS is geographic: the local
    scale at ``lat``, good to a fraction of a percent over a city)."""
    if not target_geographic:
        return np.hypot(dx, dy)
    return np.hypot(dx * 111_320.0 * np.cos(np.radians(lat)), dy * 110_574.0)


metres_apart = _metres


@dataclass(frozen=True)
class Landmark:
    """A well-known place of the city (city.yaml ``landmarks:``): its WGS 84 position and its names."""

    name: str
    lon: float
    lat: float
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@functools.lru_cache(maxsize=8)
def load_landmarks(city_yaml: str | pathlib.Path) -> tuple[Landmark, ...]:
    """The ``landmarks:`` of a city.yaml (none: an empty tuple); a malformed entry is a StandardsError.

    >>> from twinhub.standards.pack import load_pack
    >>> next(m for m in load_landmarks(load_pack().root / "city.yaml") if "人民广场" in m.names).lon
    121.4753
    """
    data = yaml.safe_load(pathlib.Path(city_yaml).read_text(encoding="utf-8")) or {}
    found = []
    for i, entry in enumerate(data.get("landmarks") or ()):
        try:
            lon, lat = float(entry["lon"]), float(entry["lat"])
            name = str(entry["name"]).strip()
            aliases = tuple(str(a).strip() for a in entry.get("aliases") or ())
        except (KeyError, TypeError, ValueError, AttributeError):
            raise StandardsError(f"{city_yaml}: landmarks[{i}] needs name, lon and lat (WGS 84 degrees), "
                                 "e.g. {name: 人民广场, lon: 121.4753, lat: 31.2322}") from None
        if not (name and -180 <= lon <= 180 and -90 <= lat <= 90):
            raise StandardsError(f"{city_yaml}: landmarks[{i}] ({name or 'no name'}): lon/lat out of range")
        found.append(Landmark(name, lon, lat, aliases))
    return tuple(found)


def rank_crs(x: ArrayLike, y: ArrayLike, city: City, target_crs: str, limit: int = 5) -> list[CRSCandidate]:
    """CRSs (and axis orders) under which the positions fall inside ``city``, best first.

    Only candidates that put at least one position inside the city are returned.
    Nothing is applied: the caller shows the list to a person.
    """
    xs = np.asarray(x, dtype=np.float64).ravel()
    ys = np.asarray(y, dtype=np.float64).ravel()
    ok = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[ok], ys[ok]
    if xs.size == 0:
        return []
    target = resolve_crs(target_crs)
    gate = city.gate(target.name)
    fits = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for order, (crs, title, note) in enumerate(candidate_crs(city, target_crs)):
            for swapped in (False, True):
                a, b = (ys, xs) if swapped else (xs, ys)
                try:
                    tx, ty = transform_xy(a, b, crs, target)
                except Exception:  # noqa: BLE001 - a candidate PROJ cannot use is simply not a candidate
                    continue
                share = float(_inside(tx, ty, gate).mean())
                if share > 0:
                    fits.append((share, order, swapped, crs, title, note, tx, ty))
    fits.sort(key=lambda f: (-f[0], f[2], f[1]))
    lat = _centre(city)[1]
    ranked = []
    for share, _, swapped, crs, title, note, tx, ty in fits:
        ties = [other for other in fits if abs(other[0] - share) < TIE]
        alike = tuple(
            other[3] + (" (swapped)" if other[2] else "")
            for other in ties
            if (other[3], other[2]) != (crs, swapped)
            and np.nanmedian(_metres(target.is_geographic, other[6] - tx, other[7] - ty, lat)) < ALIKE_M
        )
        ranked.append(CRSCandidate(crs, title, swapped, share, share / len(ties), alike, note))
        if len(ranked) == limit:
            break
    return ranked


def rank_crs_of_geometries(geometries: ArrayLike, city: City, target_crs: str, limit: int = 5) -> list[CRSCandidate]:
    """:func:`rank_crs` for shapely geometries (their bounding-box centres)."""
    x, y = positions(geometries)
    return rank_crs(x, y, city, target_crs, limit)


def candidates_message(candidates: list[CRSCandidate]) -> str:
    """The ranked list as text for an error message; never applied by the hub."""
    if not candidates:
        return (
            "no known CRS puts these coordinates inside the city: if they are on a local city grid, "
            "ask its owner for the grid's PROJ string or WKT and give it in source.crs"
        )
    lines = [f"  {i}. {c.describe()}" for i, c in enumerate(candidates, 1)]
    return "candidates from the coordinates (set source.crs yourself; the hub never guesses):\n" + "\n".join(lines)


def first_located_chunk(chunks: Iterable):
    """A source's first chunk if it carries geometry (``.geometry``), else None; reading problems are left
    to the caller's own checks (a hint for an error message only gets shorter)."""
    try:
        first = next(iter(chunks), None)
    except Exception:  # noqa: BLE001 - the source's own check reports why it cannot be read
        return None
    return first if getattr(first, "geometry", None) is not None else None


def crs_hint(chunks: Iterable, city: City, target_crs: str) -> str:
    """:func:`candidates_message` for the first chunk of a source (anything with ``.geometry``), for error
    messages when a source declares no CRS."""
    first = first_located_chunk(chunks)
    return candidates_message(rank_crs_of_geometries(first.geometry, city, target_crs)) if first is not None else ""
