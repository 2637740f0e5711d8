"""Matcher.map takes Arrow text through its distinct values: the same codes as a lookup per row."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from twinhub.standards.labels import _mapped


@pytest.mark.parametrize("dtype", ["str", "string", "object"])
def test_codes_by_distinct_values_match_a_lookup_per_row(dtype):
    values = pd.Series(["养老院", None, "敬老院", "老年活动室", "养老院", "无", ""] * 3, dtype=dtype, name="类型")
    codes = {"养老院": "elderly_care_home", "敬老院": "elderly_care_home", "老年活动室": "老年活动室", "无": None, "": None}
    expected = values.map(codes).astype("string")
    got = _mapped(values, codes)
    pd.testing.assert_series_equal(got, expected)
    assert pa.array(got.array).type == pa.array(expected.array).type
    assert got.tolist()[:4] == ["elderly_care_home", pd.NA, "elderly_care_home", "老年活动室"]


def test_no_values_and_only_nulls():
    for values in (pd.Series([], dtype="str"), pd.Series([None, None], dtype="str")):
        pd.testing.assert_series_equal(_mapped(values, {}), values.map({}).astype("string"))
