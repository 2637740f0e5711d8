"""failure_table runs compile_schema's checks itself: the same table as pandera's validation, and
geometry held as coordinates (:class:`Points`) gives the same as shapely points."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from twinhub.standards.checks import registry
from twinhub.standards.compile import Points, compile_schema, failure_table, pandera_failures
from twinhub.standards.pack import load_pack

PACK = load_pack()
FACILITY = PACK.standard("facility")
EXTENT = (120.85, 30.67, 122.2, 31.88)


def _frame(n: int = 400, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    codes = list(PACK.vocabulary("facility_category").codes)
    pick = lambda options: [options[i] for i in rng.integers(0, len(options), n)]  # noqa: E731
    x = rng.choice([121.4, 116.4, 31.2, np.nan, EXTENT[0], 121.5], n)
    y = rng.choice([31.2, 39.9, 121.4, np.nan, 31.3, EXTENT[3]], n)
    missing = rng.random(n) < 0.1
    frame = pd.DataFrame({
        "facility_id": pd.array(pick(["A1", None, "x" * 70, "B2"]), dtype="string"),
        "name": pd.array(pick(["n", None, "y" * 201, "名称"]), dtype="string"),
        "category": pd.array(pick(codes[:3] + ["library", None]), dtype="string"),
        "district": pd.array(pick([None, "黄浦区"]), dtype="string"),
        "address": pd.array(pick([None, "某路1号"]), dtype="string"),
        "capacity": pd.array(pick([10, -1, 200_000, None, 0]), dtype="Int64"),
    })
    return frame, x, y, missing


def _objects(x, y, missing) -> np.ndarray:
    out = np.full(len(x), None, dtype=object)
    out[~missing] = shapely.points(x[~missing], y[~missing])
    return out


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert len(a) == len(b) > 0
    assert [int(i) for i in a["index"]] == [int(i) for i in b["index"]]
    assert list(a["column"]) == list(b["column"]) and list(a["check"]) == list(b["check"])
    assert list(a["message"]) == list(b["message"])
    for p, q in zip(a["value"], b["value"]):
        if isinstance(p, shapely.Geometry) or isinstance(q, shapely.Geometry):
            assert shapely.to_wkt(p) == shapely.to_wkt(q)
        elif pd.isna(p) or pd.isna(q):
            assert pd.isna(p) and pd.isna(q)
        else:
            assert p == q and str(p) == str(q)


def test_the_direct_checks_report_what_pandera_reports():
    schema = compile_schema(FACILITY, PACK, EXTENT, cross_row=False)
    frame, x, y, missing = _frame()
    frame["geometry"] = _objects(x, y, missing)
    frame.loc[5, "geometry"] = shapely.LineString([(121.4, 31.2), (121.5, 31.3)])
    frame.loc[6, "geometry"] = shapely.Point()
    frame.loc[7, "geometry"] = shapely.MultiPoint([(121.4, 31.2), (121.41, 31.21)])
    expected = pandera_failures(schema, frame)
    assert {"required", "max_length", "label_unmapped", "minimum", "maximum", "outside_city", "geometry_type",
            "geometry_empty", "geometry_invalid"} <= set(expected["check"])
    # every registered check the schema carries was tried (the registry's, not a list kept here)
    carried = {check.name for column in schema.columns.values() for check in column.checks}
    assert carried <= {c.name for c in registry.checks()} and carried <= set(expected["check"])
    _same(failure_table(schema, frame), expected)


def test_points_as_coordinates_fail_as_their_shapely_points():
    schema = compile_schema(FACILITY, PACK, EXTENT, cross_row=False)
    frame, x, y, missing = _frame(seed=4)
    expected = pandera_failures(schema, frame.assign(geometry=_objects(x, y, missing)))
    _same(failure_table(schema, frame, {"geometry": Points(x, y, missing)}), expected)


def test_a_frame_pandera_must_judge_still_gets_its_failures():
    schema = compile_schema(FACILITY, PACK, EXTENT, cross_row=False)
    frame, x, y, missing = _frame(seed=5)
    frame["capacity"] = frame["capacity"].astype("Float64")  # the wrong dtype: pandera's own report
    frame["geometry"] = _objects(x, y, missing)
    _same(failure_table(schema, frame), pandera_failures(schema, frame))


def test_point_wkb_is_shapelys_byte_for_byte():
    x = np.array([121.4, np.nan, 1e308, -0.0, 3.0, np.inf])
    y = np.array([31.2, np.nan, -5.5, 2.0, np.nan, 1.0])
    for missing in (np.zeros(6, dtype=bool), np.array([False, True, False, False, True, False])):
        column = Points(x, y, missing)
        expected = shapely.to_wkb(_objects(x, y, missing))
        written = list(column.wkb())
        assert [None if pd.isna(b) else bytes(b) for b in written] == list(expected)
