"""Geometry of tabular sources (CSV, xlsx): x/y columns or one WKT/GeoJSON text column.

>>> import pandas as pd
>>> geometries_from_text(pd.Series(['POINT (1 2)', '{"type": "Point", "coordinates": [3, 4]}', 'None']))
array([<POINT (1 2)>, <POINT (3 4)>, None], dtype=object)
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import shapely
from pydantic import Field, ValidationInfo, field_validator

from twinhub.connectors.base import SourceConfig, SourceError
from twinhub.connectors.points import points_from_columns

_EWKT_PREFIX = re.compile(r"^SRID=\d+;", re.IGNORECASE)  # PostGIS EWKT; the CRS comes from source.crs instead


class TabularConfig(SourceConfig):
    """Keys of sources whose rows are table records: where each row's geometry is."""

    x: str | None = None
    y: str | None = Field(default=None, validate_default=True)
    geometry: str | None = Field(default=None, validate_default=True)  # one column of WKT or GeoJSON text

    @field_validator("y")
    @classmethod
    def _x_and_y_together(cls, y: str | None, info: ValidationInfo) -> str | None:
        if bool(info.data.get("x")) != bool(y):
            raise ValueError("source.x and source.y go together: name both coordinate columns")
        return y

    @field_validator("geometry")
    @classmethod
    def _one_way_to_locate(cls, geometry: str | None, info: ValidationInfo) -> str | None:
        if geometry and (info.data.get("x") or info.data.get("y")):
            raise ValueError("give either source.geometry or source.x and source.y, not both")
        return geometry


def geometries_from_text(values: pd.Series) -> np.ndarray:
    """Shapely geometries from WKT or GeoJSON cells; a blank, "None" or unparseable cell gives None.

    A cell starting with ``{`` is read as GeoJSON (a geometry or a Feature), any other as
    WKT or EWKT. Empty geometries (``POINT EMPTY``) count as missing too.
    """
    cells = np.array([_EWKT_PREFIX.sub("", v.strip()) if isinstance(v, str) else "" for v in values], dtype=object)
    is_json = np.array([c.startswith("{") for c in cells], dtype=bool)
    out = np.full(len(cells), None, dtype=object)
    out[is_json] = shapely.from_geojson(cells[is_json], on_invalid="ignore")
    out[~is_json] = shapely.from_wkt(cells[~is_json], on_invalid="ignore")
    out[shapely.is_empty(out)] = None
    return out


def frame_geometry(frame: pd.DataFrame, config: TabularConfig, where: str) -> np.ndarray | None:
    """The geometry of each row of ``frame`` as ``config`` locates it, or None if it names no columns."""
    named = {key: getattr(config, key) for key in ("x", "y", "geometry") if getattr(config, key)}
    for key, column in named.items():
        if column not in frame.columns:
            raise SourceError(
                f"{where}: source.{key} names column {column!r}, which is not in the header "
                f"({', '.join(map(str, frame.columns))}); correct source.{key} in the manifest"
            )
    if config.geometry:
        return geometries_from_text(frame[config.geometry])
    if config.x and config.y:
        return points_from_columns(frame, config.x, config.y)
    return None
