"""The quarantine records, written column by column, are what json.dumps writes row by row."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import shapely

from twinhub.standards.checks import Reason
from twinhub.standards.conform import SOURCE_ROW, Conformer, _short


def _row_by_row(chunk, geometry, source_rows, failures) -> pd.DataFrame:
    """The record as it was first written: one dict and two json.dumps per row."""
    records = []
    held = sorted(failures)
    for i, values in zip(held, chunk.iloc[held].to_dict("records")):
        record = {str(k): _short(v) for k, v in values.items()}
        if geometry is not None:
            record["geometry"] = _short(geometry[i], limit=1000)
        records.append({
            SOURCE_ROW: int(source_rows[i]),
            "checks": ",".join(dict.fromkeys(r.check for r in failures[i])),
            "reasons": json.dumps([r.as_dict() for r in failures[i]], ensure_ascii=False, default=str),
            "record": json.dumps(record, ensure_ascii=False, default=str),
        })
    return pd.DataFrame(records, columns=[SOURCE_ROW, "checks", "reasons", "record"])


def test_quarantine_records_match_row_by_row_json():
    n = 8
    chunk = pd.DataFrame({
        "名称": pd.array(["a", None, "引号\"和\\反斜杠\n", "长" * 250, "", "x", "y", "z"], dtype="str"),
        "count": pd.array([1, None, 3, 4, 5, 6, 7, 8], dtype="Int64"),
        "ratio": np.array([0.5, np.nan, np.inf, -0.0, 1e300, 2.0, 3.0, 4.0]),
        "flag": np.array([True, False] * 4),
        7: pd.to_datetime(["2024-01-02"] * n),
    })
    long_line = shapely.LineString(np.column_stack([np.arange(200.0), np.arange(200.0) / 3]))
    geometry = np.array([shapely.Point(1, 2), None, long_line, shapely.Point(), shapely.Point(np.nan, 1),
                         shapely.Point(3, 4), None, shapely.Point(5, 6)], dtype=object)
    same = Reason("label_unmapped", "category", "类型", "老年活动室", "not a code")
    failures = {
        0: [same], 2: [same], 3: [same, Reason("type", "capacity", None, 0.0, None)],
        4: [Reason("type", "capacity", None, -0.0, None)], 5: [Reason("type", None, None, True, None)],
        6: [Reason("type", None, None, 1, None)], 7: [Reason("x", None, None, {"a": [1]}, None)],  # unhashable
    }
    source_rows = np.arange(100, 100 + n)
    got = Conformer._quarantine(None, chunk, geometry, source_rows, failures)
    expected = _row_by_row(chunk, geometry, source_rows, failures)
    pd.testing.assert_frame_equal(got, expected)
    assert got.loc[1, "record"].endswith("…\"}")  # the long line's WKT, cut at 1000 characters
    assert got.loc[2, "record"].count("…") == 1 and "-0.0" in got.loc[3, "reasons"]
    without = Conformer._quarantine(None, chunk, None, source_rows, failures)
    pd.testing.assert_frame_equal(without, _row_by_row(chunk, None, source_rows, failures))


def test_no_quarantined_rows_is_an_empty_frame_with_the_columns():
    got = Conformer._quarantine(None, pd.DataFrame({"a": ["x"]}), None, np.arange(1), {})
    pd.testing.assert_frame_equal(got, _row_by_row(pd.DataFrame({"a": ["x"]}), None, np.arange(1), {}))
