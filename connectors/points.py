"""Point geometries from a pair of x/y columns (tabular sources)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely


def points_from_columns(frame: pd.DataFrame, x: str, y: str) -> np.ndarray:
    """Shapely points; a row whose x or y is blank or not a number gets None."""
    xs = pd.to_numeric(frame[x].astype("string").str.strip(), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ys = pd.to_numeric(frame[y].astype("string").str.strip(), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ok = np.isfinite(xs) & np.isfinite(ys)
    out = np.full(len(frame), None, dtype=object)
    out[ok] = shapely.points(xs[ok], ys[ok])
    return out
