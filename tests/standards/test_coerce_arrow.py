"""Arrow-backed text columns are cast in Arrow: the same values, dtypes and failures as the pandas path."""

from __future__ import annotations

import frictionless
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import twinhub.standards.coerce as coerce

SPELLINGS = ["1", " 2 ", "1,000", "3.0", "3.5", "-0", "007", "1e5", ".5", "+7", "inf", "-inf", "nan", "NaN", "N/A",
             "无", "", "  ", None, "abc", "十", "1_000", "0x10", "9007199254740993", "１２", "12.", "-", "--",
             " null ", "1.000,5", "2,5", "123456789.123456789", "-0.1"]


def _both(raw: pd.Series, kind: str, monkeypatch):
    field = frictionless.Field.from_descriptor({"name": "f", "type": kind})
    new = coerce.coerce_column(raw, field)
    with monkeypatch.context() as m:
        m.setattr(coerce, "_arrow_text", lambda _: None)  # the pandas path
        old = coerce.coerce_column(raw, field)
    return old, new


@pytest.mark.parametrize("kind", ["string", "integer", "number"])
@pytest.mark.parametrize("dtype", ["str", "string"])
def test_the_arrow_cast_matches_the_pandas_cast(kind, dtype, monkeypatch):
    rng = np.random.default_rng(7)
    assert coerce._arrow_text(pd.Series(["x"], dtype=dtype)) is not None
    for _ in range(20):
        raw = pd.Series(list(rng.choice(np.array(SPELLINGS, dtype=object), 50)), dtype=dtype, name="源")
        (old, old_failures), (new, new_failures) = _both(raw, kind, monkeypatch)
        assert old.dtype == new.dtype and old.name == new.name
        pd.testing.assert_series_equal(old, new)
        if kind == "string":
            assert pa.array(old.array).type == pa.array(new.array).type
        assert [(f.index, f.value) for f in old_failures] == [(f.index, f.value) for f in new_failures]


def test_a_comma_and_blank_spellings_are_read_as_before(monkeypatch):
    raw = pd.Series(["1,200", " 无 ", "12.5", "x"], dtype="str")
    (_, _), (typed, failures) = _both(raw, "integer", monkeypatch)
    assert typed.tolist()[:1] == [1200] and typed.isna().tolist() == [False, True, True, True]
    assert [(f.index, f.value) for f in failures] == [(2, "12.5"), (3, "x")]


@pytest.mark.parametrize("kind", ["string", "integer", "number"])
def test_a_column_in_several_arrow_chunks_is_cast_alike(kind, monkeypatch):
    pieces = pa.chunked_array([pa.array(["1", " 2 ", None], pa.large_string()),
                               pa.array(["x", "无", "3,000"], pa.large_string())])
    raw = pd.Series(pd.arrays.ArrowStringArray(pieces, dtype=pd.StringDtype("pyarrow", na_value=np.nan)), name="源")
    assert isinstance(pa.array(raw.array), pa.ChunkedArray)
    (old, old_failures), (new, new_failures) = _both(raw, kind, monkeypatch)
    pd.testing.assert_series_equal(old, new)
    assert [(f.index, f.value) for f in old_failures] == [(f.index, f.value) for f in new_failures]
