"""Point geometries from a pair of x/y columns (tabular sources)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely


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


def points_from_columns(frame: pd.DataFrame, x: str, y: str) -> np.ndarray:
    """Shapely points; a row whose x or y is blank or not a number gets None."""
    xs, ys = coordinates(frame[x]), coordinates(frame[y])
    ok = np.isfinite(xs) & np.isfinite(ys)
    out = np.full(len(frame), None, dtype=object)
    out[ok] = shapely.points(xs[ok], ys[ok])
    return out
