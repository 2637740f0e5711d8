"""A chunk's points given as coordinates (an x/y source's PointColumn) conform exactly as their shapely points."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from twinhub.connectors.points import PointColumn
from twinhub.standards.conform import Conformance, Conformer
from twinhub.standards.pack import load_pack

PACK = load_pack()
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _conformer(source_crs: str, target_crs: str, repair: bool = False) -> Conformer:
    return Conformer(Conformance(
        standard=PACK.standard("facility"), pack=PACK,
        fields={"facility_id": "编号", "name": "名称", "category": "类型", "capacity": "床位"},
        labels={"category": {"老人院": "elderly_care_home"}}, source_crs=source_crs, target_crs=target_crs,
        gate=PACK.city.gate(geographic=True), repair_geometry=repair,
    ))


def _chunk(n: int, seed: int):
    rng = np.random.default_rng(seed)
    pick = lambda options: [options[i] for i in rng.integers(0, len(options), n)]  # noqa: E731
    frame = pd.DataFrame({"编号": pick(["A1"] * 9 + [None]), "名称": pick(["甲"] * 9 + [""]),
                          "类型": pick(["老人院"] * 9 + ["图书馆"]), "床位": pick(["10"] * 9 + ["-1", "x", None])},
                         dtype="str")
    x = rng.choice([121.47] * 6 + [121.5, 116.4, 31.2, np.nan, np.inf, 0.0], n)
    y = rng.choice([31.23] * 6 + [31.1, 39.9, 121.4, np.nan, 0.0], n)
    return frame, PointColumn.of(x, y)


def _outcome(conformer: Conformer, frame, geometry) -> tuple:
    out = [conformer.conform(frame.iloc[i:i + 100], geometry(i), np.arange(i, i + 100)) for i in range(0, 300, 100)]
    rows = [{c: [None if v is None or v is pd.NA else v for v in o.rows[c].tolist()] for c in o.rows.columns}
            for o in out]
    return rows, [o.quarantine.to_dict("list") for o in out], json.dumps(conformer.details(now=NOW), default=str)


@pytest.mark.parametrize(("source", "target", "repair"), [
    ("GCJ-02", "EPSG:4490", False), ("EPSG:4326", "EPSG:4490", False), ("EPSG:4490", "EPSG:4490", False),
    ("GCJ-02", "EPSG:4490", True),
])
def test_coordinates_conform_as_their_shapely_points(source, target, repair):
    frame, column = _chunk(300, seed=len(source) + repair)
    part = lambda i: PointColumn(column.x[i:i + 100], column.y[i:i + 100])  # noqa: E731
    as_coordinates = _outcome(_conformer(source, target, repair), frame, part)
    as_shapely = _outcome(_conformer(source, target, repair), frame, lambda i: part(i).shapely())
    assert as_coordinates == as_shapely
    rows, quarantine, _ = as_coordinates
    assert sum(len(q["checks"]) for q in quarantine) > 0 and any(r["geometry"] for r in rows)
    assert any('"geometry": null' in record for q in quarantine for record in q["record"])
    assert any('"geometry": "POINT' in record for q in quarantine for record in q["record"])
