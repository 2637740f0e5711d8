"""Vectorized helpers the checks' forms share: Arrow text stays in Arrow, as pandas' own methods keep it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute as pc

from twinhub.standards.coerce import arrow_array


def arrow_text(values: pd.Series) -> bool:
    """Whether the values are Arrow strings (pandas' str/string on pyarrow): their checks run in Arrow,
    as pandas' own ``.str.len`` and ``isin`` of them do."""
    return isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"


def lengths(values: pd.Series) -> np.ndarray:
    """Characters per value (code points, as ``str.len``)."""
    if arrow_text(values):
        return pc.utf8_length(arrow_array(values)).to_numpy(zero_copy_only=False)
    return values.str.len().to_numpy()


def length_between(low: int | None, high: int | None):
    """``values -> bool``: a length within [low, high], as pandera's ``str_length``."""
    low = low if low is not None else 0
    high = high if high is not None else np.inf
    return lambda v: (lambda n: (n >= low) & (n <= high))(lengths(v))


def isin(allowed: list):
    """``values -> bool``: the value is one of ``allowed``, as pandera's ``isin`` (in Arrow for Arrow text)."""
    text = all(isinstance(a, str) for a in allowed)
    value_set = pyarrow.array(list(allowed), pyarrow.large_string()) if text else None

    def test(values: pd.Series) -> np.ndarray:
        if text and arrow_text(values):
            array = arrow_array(values)
            return pc.is_in(array, value_set=value_set.cast(array.type)).to_numpy(zero_copy_only=False)
        return values.isin(allowed)

    return test


def bound(field, value):
    """A minimum/maximum in the column's own type (dates are written as ISO text in the schema)."""
    if field.type == "datetime":
        stamp = pd.Timestamp(value)
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return pd.Timestamp(value) if field.type == "date" else value
