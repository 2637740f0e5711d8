"""Point geometries from a pair of x/y columns (tabular sources), kept as coordinates.

A chunk of a CSV, workbook or database table with x/y columns carries its points as
two float arrays (:class:`PointColumn`); shapely points are made only if something asks
for them (``Chunk.geometry``). The hub's conforming reprojects and checks the
coordinates themselves, so a million-row CSV makes no GEOS object per row.

>>> import pandas as pd
>>> column = points_from_columns(pd.DataFrame({"x": ["1", "", "3"], "y": ["2", "5", "x"]}, dtype="str"), "x", "y")
>>> column.x, column.missing
(array([ 1., nan, nan]), array([False,  True,  True]))
>>> column.shapely()
array([<POINT (1 2)>, None, None], dtype=object)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely


@dataclass(frozen=True, eq=False)
class PointColumn:
    """One point per row as coordinates; a row without a point has NaN for both x and y."""

    x: np.ndarray
    y: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray) -> PointColumn:
        """From coordinates where a row whose x or y is not finite has no point."""
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.all():
            return cls(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        return cls(np.where(ok, x, np.nan), np.where(ok, y, np.nan))

    def __len__(self) -> int:
        return len(self.x)

    @property
    def missing(self) -> np.ndarray:
        return np.isnan(self.x)

    def shapely(self) -> np.ndarray:
        """shapely points, None where a row has no point."""
        ok = ~self.missing
        out = np.full(len(self), None, dtype=object)
        out[ok] = shapely.points(self.x[ok], self.y[ok])
        return out


def coordinates(values: pd.Series) -> np.ndarray:
    """Numbers of a coordinate column as floats; a blank cell or one that is not a number gives NaN.

    Text columns parse in Arrow (C); a chunk with any cell Arrow refuses (``N/A``, ``1,234``)
    is parsed by pandas instead, which gives NaN for those cells. The two accept the same numbers.
    """
    if isinstance(values.dtype, pd.StringDtype):
        text = pc.utf8_trim_whitespace(pa.array(values))
        try:
            return pc.cast(pc.if_else(pc.equal(text, ""), None, text), pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            pass
    text = values.astype("string").str.strip()
    return pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def points_from_columns(frame: pd.DataFrame, x: str, y: str) -> PointColumn:
    """The points of ``frame``'s x/y columns; a row whose x or y is blank or not a number has none."""
    return PointColumn.of(coordinates(frame[x]), coordinates(frame[y]))
