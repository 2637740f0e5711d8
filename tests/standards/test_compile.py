"""The Table Schema compiled to pandera: each constraint becomes a named check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from twinhub.standards.compile import compile_schema, failure_table
from twinhub.standards.pack import load_pack

PACK = load_pack()
FACILITY = PACK.standard("facility")
EXTENT = (120.85, 30.67, 122.2, 31.88)


def _frame(**overrides) -> pd.DataFrame:
    row = {"facility_id": "A1", "name": "n", "category": "hospital", "district": None, "address": None,
           "capacity": 10, "geometry": shapely.Point(121.4, 31.2)}
    row.update(overrides)
    frame = pd.DataFrame([row])
    return frame.astype({"facility_id": "string", "name": "string", "category": "string", "district": "string",
                         "address": "string", "capacity": "Int64"})


def test_the_compiled_schema_follows_the_table_schema():
    schema = compile_schema(FACILITY, PACK, EXTENT)
    assert list(schema.columns) == FACILITY.field_names
    assert not schema.columns["facility_id"].nullable and schema.columns["facility_id"].unique
    assert schema.columns["district"].nullable
    assert {c.name for c in schema.columns["capacity"].checks} == {"minimum", "maximum"}
    assert {c.name for c in schema.columns["geometry"].checks} >= {"geometry_type", "outside_city"}
    assert not compile_schema(FACILITY, PACK, cross_row=False).columns["facility_id"].unique


@pytest.mark.parametrize(
    "overrides, column, check",
    [
        ({"capacity": -1}, "capacity", "minimum"),
        ({"capacity": 200_000}, "capacity", "maximum"),
        ({"category": "library"}, "category", "label_unmapped"),
        ({"name": None}, "name", "required"),
        ({"name": "x" * 201}, "name", "max_length"),
        ({"geometry": None}, "geometry", "required"),
        ({"geometry": shapely.Point(116.4, 39.9)}, "geometry", "outside_city"),
        ({"geometry": shapely.Point(31.2, 121.4)}, "geometry", "outside_city"),  # swapped axes
        ({"geometry": shapely.LineString([(121.4, 31.2), (121.5, 31.3)])}, "geometry", "geometry_type"),
        ({"geometry": shapely.Point()}, "geometry", "geometry_empty"),
        ({"geometry": shapely.Point(np.nan, np.nan)}, "geometry", "geometry_invalid"),
    ],
)
def test_each_violation_is_reported_with_its_check(overrides, column, check):
    failures = failure_table(compile_schema(FACILITY, PACK, EXTENT), _frame(**overrides))
    assert (column, check) in set(zip(failures["column"], failures["check"])), failures
    assert set(failures["index"]) == {0}


def test_a_conforming_row_has_no_failures():
    assert failure_table(compile_schema(FACILITY, PACK, EXTENT), _frame()).empty


def test_a_multipoint_is_accepted_for_a_point_field():
    frame = _frame(geometry=shapely.MultiPoint([(121.4, 31.2), (121.41, 31.21)]))
    assert failure_table(compile_schema(FACILITY, PACK, EXTENT), frame).empty
