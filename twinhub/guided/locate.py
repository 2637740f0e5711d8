"""Where a table's rows are: x/y coordinate columns, or one column of WKT, GeoJSON or WKB.

>>> axis("GeoX"), axis("TW97Y"), axis("point_x"), axis("经度"), axis("latitude"), axis("box"), axis("X")
('x', 'y', 'x', 'x', 'y', None, 'x')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from twinhub.connectors.tabular_geometry import geometries_from_text
from twinhub.guided.profile import ColumnProfile

GEOMETRY_SHARE = 0.8  # a text column holds geometries when this share of its sample parses as one
_X = re.compile(r"(longitude|^lon$|^lng$|^long$|^x$|easting|^east$|经度|横坐标|x坐标|^point x$|^coord x$)")
_Y = re.compile(r"(latitude|^lat$|^y$|northing|^north$|纬度|纵坐标|y坐标|^point y$|^coord y$)")
_SUFFIX = re.compile(r"(?:(?<=[a-z\d_\s])([XY])|(?:^|(?<=[\d_\s]))([xy]))$")  # GeoX, TW97Y, point_x; not "box"
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2}){9,}$")


def _words(name: str) -> str:
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    return re.sub(r"[\s_\-.:/()]+", " ", spaced).strip().casefold()


def axis(name: str) -> str | None:
    """'x' or 'y' if the column name says it holds that coordinate."""
    words = _words(name)
    if _X.search(words):
        return "x"
    if _Y.search(words):
        return "y"
    end = _SUFFIX.search(name.strip())
    return (end.group(1) or end.group(2)).lower() if end else None


@dataclass(frozen=True)
class Located:
    """One way to read the rows' positions, as manifest source keys."""

    keys: dict  # e.g. {"x": "GeoX", "y": "GeoY"} or {"geometry": "geom"}
    kind: str  # xy | text | wkb
    note: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.keys.values())


def _prefix(name: str) -> str:
    return _SUFFIX.sub("", name.strip()).casefold()


def xy_pairs(columns: list[ColumnProfile]) -> list[Located]:
    """Numeric x/y column pairs, the pairs sharing a prefix (GeoX/GeoY) first."""
    numeric = [c for c in columns if c.type in ("integer", "number")]
    xs = [c.name for c in numeric if axis(c.name) == "x"]
    ys = [c.name for c in numeric if axis(c.name) == "y"]
    pairs = [(x, y) for x in xs for y in ys]
    pairs.sort(key=lambda p: _prefix(p[0]) != _prefix(p[1]))
    return [Located({"x": x, "y": y}, "xy", f"numeric columns {x} and {y} are named as coordinates") for x, y in pairs]


def _wkb(values: pd.Series) -> np.ndarray:
    hexed = values[values.str.match(_HEX)]
    if hexed.empty:
        return np.array([], dtype=object)
    return shapely.from_wkb(np.array([bytes.fromhex(v) for v in hexed], dtype=object), on_invalid="ignore")


def geometry_columns(columns: list[ColumnProfile]) -> list[Located]:
    """Text columns whose values are WKT or GeoJSON (or WKB in hex, as databases give it)."""
    found = []
    for c in columns:
        if c.type != "string" or c.values is None or c.values.empty:
            continue
        sample = c.values.head(200)
        parsed = geometries_from_text(sample)
        if np.mean([g is not None for g in parsed]) >= GEOMETRY_SHARE:
            kind = "GeoJSON" if sample.iloc[0].lstrip().startswith("{") else "WKT"
            found.append(Located({"geometry": c.name}, "text", f"column {c.name} holds {kind} geometries"))
            continue
        wkb = _wkb(sample)
        if len(wkb) and np.mean([g is not None for g in wkb]) >= GEOMETRY_SHARE and len(wkb) >= GEOMETRY_SHARE * len(sample):
            found.append(Located({"geometry": c.name}, "wkb", f"column {c.name} holds WKB geometries"))
    return found
