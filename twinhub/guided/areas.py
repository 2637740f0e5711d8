"""Which unit a numeric column's areas are in, judged against the polygons' true areas.

A 2017 district layer carries ``Shape_Area`` in square degrees (ArcGIS computes it in the
layer's CRS) beside an area in km². Names do not tell them apart; the geometries do. Each
polygon's true area is computed in metres (an equal-area projection centred on the data),
and the column's values, read in each candidate unit, are compared with it: the unit whose
ratio to the true area is 1 for nearly every row is the column's unit. Square degrees are
compared with the polygons' area in longitude/latitude degrees (no constant turns them into
metres: a degree of longitude shrinks towards the poles), so such a column is recognised and
refused rather than converted.

>>> import shapely
>>> boxes = np.array([shapely.box(121.40, 31.20, 121.50, 31.28)])
>>> true_m2, degrees = true_areas_m2(boxes, "EPSG:4326"), lonlat_areas(boxes, "EPSG:4326")
>>> round(float(true_m2[0]) / 1e6, 1)
84.5
>>> [area_unit(pd.Series([v]), true_m2, degrees).unit for v in (84.5, 84_500_000, 0.008, 12.0)]
['km2', 'm2', 'deg2', None]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyproj
import shapely

from twinhub.standards.crs import UnknownCRS, transform_geometries

# unit -> square metres per unit (deg2 is not a constant: it is compared with the area in degrees)
UNITS: dict[str, float] = {"m2": 1.0, "km2": 1e6, "ha": 1e4, "mu": 10_000 / 15, "ft2": 0.09290341161327482}
TITLES = {"m2": "m²", "km2": "km²", "ha": "hectares", "mu": "mu (亩)", "ft2": "square US survey feet",
          "deg2": "square degrees"}
RATIO_TOLERANCE = 0.05  # a unit fits when the median ratio is within 5% of 1 ...
ROW_TOLERANCE = 0.15  # ... and this share of rows is within 15% (measured in another projection, rounded)
ROWS_WITHIN = 0.8


@dataclass(frozen=True)
class AreaUnit:
    """What a column's areas are: ``unit`` (None: no unit fits), the median ratio behind it and the evidence."""

    column: str
    unit: str | None
    ratio: float  # median of value-in-unit / true area, for ``unit`` (for None: of the value as km²)
    within: float  # share of rows within ROW_TOLERANCE
    rows: int

    @property
    def metric(self) -> bool:
        """An area the hub can convert to m² or km² with a constant."""
        return self.unit in UNITS

    def factor_to(self, unit: str) -> float:
        return UNITS[self.unit] / UNITS[unit]

    @property
    def why(self) -> str:
        if self.unit is None:
            return (f"its values match the polygons' true areas in no unit (as km² the median ratio is "
                    f"{self.ratio:.3g})")
        against = "the polygons' area in degrees" if self.unit == "deg2" else "the true area"
        return (f"values look like {TITLES[self.unit]}: median ratio to {against} {self.ratio:.2f} over {self.rows} "
                f"polygons ({self.within:.0%} within {ROW_TOLERANCE:.0%})")


def _lonlat(geometry: np.ndarray, crs: str) -> np.ndarray:
    return transform_geometries(geometry, crs, "EPSG:4326")


def true_areas_m2(geometry: np.ndarray, crs: str) -> np.ndarray:
    """Each polygon's area in m², in a Lambert azimuthal equal-area projection centred on the data."""
    lonlat = _lonlat(geometry, crs)
    x0, y0, x1, y1 = shapely.total_bounds(lonlat)
    laea = pyproj.CRS.from_proj4(f"+proj=laea +lat_0={(y0 + y1) / 2} +lon_0={(x0 + x1) / 2} +ellps=WGS84 +units=m")
    return shapely.area(transform_geometries(lonlat, "EPSG:4326", laea)).astype(float)


def lonlat_areas(geometry: np.ndarray, crs: str) -> np.ndarray:
    """Each polygon's area measured in longitude/latitude degrees (what ArcGIS writes in a geographic layer)."""
    return shapely.area(_lonlat(geometry, crs)).astype(float)


def _fit(values: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    ratios = values / truth
    median = float(np.median(ratios))
    return median, float(np.mean(np.abs(ratios - 1) <= ROW_TOLERANCE))


def area_unit(values: pd.Series, true_m2: np.ndarray, degrees: np.ndarray) -> AreaUnit | None:
    """The unit of ``values`` (aligned with the polygons), or None when too few rows can be compared."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(numbers) & (numbers > 0) & (true_m2 > 0) & np.isfinite(true_m2)
    if ok.sum() < 1:
        return None
    name = str(values.name)
    candidates = {unit: _fit(numbers[ok] * per, true_m2[ok]) for unit, per in UNITS.items()}
    candidates["deg2"] = _fit(numbers[ok], degrees[ok])
    unit, (ratio, within) = min(candidates.items(), key=lambda kv: abs(np.log(kv[1][0])))
    if abs(ratio - 1) <= RATIO_TOLERANCE and within >= ROWS_WITHIN:
        return AreaUnit(name, unit, ratio, within, int(ok.sum()))
    ratio, within = candidates["km2"]
    return AreaUnit(name, None, ratio, within, int(ok.sum()))


def area_units(frame: pd.DataFrame, columns: list[str], geometry: np.ndarray | None, crs: str | None) -> dict[str, AreaUnit]:
    """Per numeric column, its area unit (polygon sources only)."""
    if geometry is None or crs is None or not columns:
        return {}
    try:
        return _area_units(frame, columns, geometry, crs)
    except (UnknownCRS, pyproj.exceptions.ProjError, ValueError):  # no areas to compare with: no evidence
        return {}


def _area_units(frame: pd.DataFrame, columns: list[str], geometry: np.ndarray, crs: str) -> dict[str, AreaUnit]:
    polygonal = np.array([g is not None and g.geom_type in ("Polygon", "MultiPolygon") for g in geometry])
    if polygonal.mean() < 0.9:
        return {}
    geoms = np.where(polygonal, geometry, None)
    true_m2 = np.zeros(len(geoms))
    degrees = np.zeros(len(geoms))
    true_m2[polygonal] = true_areas_m2(geoms[polygonal], crs)
    degrees[polygonal] = lonlat_areas(geoms[polygonal], crs)
    found = {}
    for column in columns:
        unit = area_unit(frame[column].reset_index(drop=True).rename(column), true_m2, degrees)
        if unit is not None:
            found[column] = unit
    return found
