"""Cast raw source values to a Table Schema's field types, column by column.

Departments' values arrive as text (CSV, Excel) or as whatever their GIS
wrote. A value that cannot be read as its field's type is not dropped: it
becomes null here and is reported as a ``type`` failure for that row, so the
row is quarantined with the original value in the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import frictionless
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from twinhub.standards.dates import parse_datetimes
from twinhub.standards.labels import NULL_SPELLINGS

# Table Schema type -> pandas dtype the catalog stores
DTYPES = {
    "string": "string",
    "integer": "Int64",
    "number": "Float64",
    "boolean": "boolean",
    "date": "datetime64[ms]",
    "datetime": "datetime64[ms, UTC]",  # naive source values are the city's local time
}

TRUE_VALUES = frozenset({"true", "yes", "y", "1", "t", "是"})
FALSE_VALUES = frozenset({"false", "no", "n", "0", "f", "否"})


@dataclass(frozen=True)
class TypeFailure:
    column: str
    index: object
    value: object
    expected: str


def _blank(raw: pd.Series) -> pd.Series:
    # lower() runs in Arrow; for NULL_SPELLINGS' characters it agrees with casefold() (Python, per value)
    text = raw.astype("string").str.strip().str.lower()
    return raw.isna() | text.isin(NULL_SPELLINGS).fillna(True)


def _integer(raw: pd.Series) -> pd.Series:
    number = pd.to_numeric(raw.astype("string").str.strip().str.replace(",", "", regex=False), errors="coerce")
    whole = number.where(number.round() == number)
    return whole.astype("Float64").astype("Int64")


def _number(raw: pd.Series) -> pd.Series:
    text = raw.astype("string").str.strip().str.replace(",", "", regex=False)
    return pd.to_numeric(text, errors="coerce").astype("Float64")


def _boolean(raw: pd.Series) -> pd.Series:
    text = raw.astype("string").str.strip().str.casefold()
    out = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    out[text.isin(TRUE_VALUES).fillna(False)] = True
    out[text.isin(FALSE_VALUES).fillna(False)] = False
    return out


def _string(raw: pd.Series) -> pd.Series:
    return raw.astype("string").str.strip()


def _already_numeric(raw: pd.Series, kind: str) -> pd.Series | None:
    """A number or integer field from a column that is numeric already (GIS attributes, Excel):
    cast directly, not through text. None when the column is text or holds infinities (the text path
    decides those). Same values and failures as the text path: NaN is blank, 2.5 is no integer."""
    if kind not in ("integer", "number") or not pd.api.types.is_numeric_dtype(raw) or pd.api.types.is_bool_dtype(raw):
        return None
    values = raw.astype("Float64")
    if bool(np.isinf(values.to_numpy(dtype=float, na_value=np.nan)).any()):
        return None
    if kind == "number":
        return values
    if pd.api.types.is_integer_dtype(raw):
        return raw.astype("Int64")
    return values.where(values.round() == values).astype("Int64")


def _arrow_text(raw: pd.Series) -> pa.Array | None:
    """The column's Arrow strings when it holds them already (pandas' str and string dtypes), else None."""
    dtype = raw.dtype
    arrow = isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"
    arrow = arrow or isinstance(dtype, pd.ArrowDtype) and (pa.types.is_string(dtype.pyarrow_dtype)
                                                           or pa.types.is_large_string(dtype.pyarrow_dtype))
    return arrow_array(raw) if arrow else None


def arrow_array(values: pd.Series) -> pa.Array:
    """The Arrow array behind an Arrow-backed column, in one piece (a column sliced from a larger
    table holds several chunks, and Arrow compute over many small chunks is much slower)."""
    array = pa.array(values.array)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


_NULLS = pa.array(sorted(NULL_SPELLINGS))
# text Arrow casts to float64 exactly as pd.to_numeric reads it (both round correctly); other
# spellings pandas accepts (1e5, .5, +1, inf, 1_0) are left to pd.to_numeric
_PLAIN_NUMBER = r"^-?[0-9]+(\.[0-9]+)?$"


def _arrow_coerce(text: pa.Array, kind: str, index: pd.Index, name) -> tuple[pd.Series, np.ndarray]:
    """``coerce_column``'s cast of Arrow strings for string, integer and number fields, in Arrow:
    (typed column, blank); the same values as the pandas path below, without its conversions."""
    trimmed = pc.utf8_trim_whitespace(text)
    blank = pc.or_(pc.is_null(text), pc.is_in(pc.utf8_lower(trimmed), value_set=_NULLS))
    if kind == "string":
        kept = pc.if_else(blank, pa.scalar(None, trimmed.type), trimmed) if blank.true_count else trimmed
        strings = pd.arrays.ArrowStringArray(pa.chunked_array([kept]).cast(pa.large_string()))
        return pd.Series(strings, index=index, name=name), blank.to_numpy(zero_copy_only=False)
    clean = pc.replace_substring(trimmed, ",", "")
    plain = pc.fill_null(pc.and_kleene(pc.invert(blank), pc.match_substring_regex(clean, _PLAIN_NUMBER)), False)
    number = pc.cast(pc.if_else(plain, clean, pa.scalar(None, clean.type)), pa.float64())
    number = number.to_numpy(zero_copy_only=False).copy()  # writable: the other spellings go in below
    blank = blank.to_numpy(zero_copy_only=False)
    other = ~blank & ~plain.to_numpy(zero_copy_only=False)
    if other.any():  # the few other spellings: as pd.to_numeric reads them
        number[other] = pd.to_numeric(pd.Series(clean.filter(pa.array(other)).to_pylist(), dtype=object),
                                      errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    number = pd.Series(number, index=index, name=name)
    if kind == "number":
        return number.astype("Float64"), blank
    return number.where(number.round() == number).astype("Float64").astype("Int64"), blank


CASTS = {
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
}


def coerce_column(
    raw: pd.Series, field: frictionless.Field, timezone: str = "UTC", day_first: bool = True
) -> tuple[pd.Series, list[TypeFailure]]:
    """Typed column plus the rows whose non-blank value could not be read.

    Dates and datetimes are read in any of the forms :mod:`standards.dates` knows;
    ``timezone`` is the city's (datetimes without an offset are local time).
    """
    typed = _already_numeric(raw, field.type)
    if typed is not None:
        failed = typed.isna() & raw.notna()
        return typed, [TypeFailure(field.name, i, raw[i], field.type) for i in raw.index[failed]]
    text = _arrow_text(raw) if field.type in ("string", "integer", "number") else None
    if text is not None:
        typed, blank = _arrow_coerce(text, field.type, raw.index, raw.name)
        if field.type == "string":
            return typed, []
        failed = typed.isna().to_numpy() & ~blank
        return typed, [TypeFailure(field.name, i, raw[i], field.type) for i in raw.index[failed]]
    if field.type in ("date", "datetime"):
        cast = partial(parse_datetimes, timezone=timezone, day_first=day_first, dates=field.type == "date")
    else:
        cast = CASTS.get(field.type, _string)
    blank = _blank(raw)
    typed = cast(raw.where(~blank))
    if field.type == "string":
        return typed.where(~blank), []
    failed = typed.isna() & ~blank
    failures = [TypeFailure(field.name, i, raw[i], field.type) for i in raw.index[failed]]
    return typed, failures
