"""Validation throughput: the hub's pandera validation against frictionless, and a full conform.

Measurements on generated facility rows (1 % of them with a planted defect):

* ``pandera``: the facility standard compiled to pandera (standards.compile) over
  typed columns, validated by pandera (``validate(lazy=True)``): every attribute check,
  the geometry checks and the city gate;
* ``direct``: the same compiled checks run by the hub itself
  (``standards.compile.failure_table``: vectorized, in pandera's order and with its
  values; what a run uses, pandera validating whatever it does not cover);
* ``frictionless``: frictionless-py validating the same attribute fields from CSV
  with the same Table Schema, the vocabulary as an enum (row by row, as
  frictionless does), on fewer rows; it also parses the text, which pandera's
  typed columns have behind them (that work is in ``conform``);
* ``conform``: the whole per-chunk path of a run (standards.conform: labels,
  types, GCJ-02 -> CGCS2000 reprojection, validation, the run's figures).

The report gives rows per second for each and pandera / frictionless as a ratio::

    python -m bench.validate                  # 1e6 rows; frictionless on 1e5
    python -m bench.validate --rows 200000 --compare-rows 20000 --json
"""

from __future__ import annotations

import argparse
import json
import pathlib
import tempfile
import time

import frictionless
import numpy as np
import pandas as pd
import shapely

from twinhub.standards.chinese_crs import wgs84_to_gcj02
from twinhub.standards.compile import compile_schema, failure_table, pandera_failures
from twinhub.standards.conform import Conformance, Conformer
from twinhub.standards.pack import load_pack

CHUNK = 50_000
CATEGORIES = np.array(["养老院", "日间照料中心", "Emergency Shelter", "clinic", "泵站", "老年活动室"])


def raw_rows(n: int, seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    """Department-style text columns and GCJ-02 points; about 1 % of rows carry a defect."""
    rng = np.random.default_rng(seed)
    lon, lat = rng.uniform(121.2, 121.8, n), rng.uniform(30.9, 31.4, n)
    glon, glat = wgs84_to_gcj02(lon, lat)
    capacity = rng.integers(0, 500, n).astype(str).astype(object)
    defect = rng.random(n) < 0.01
    capacity[defect] = "约50"
    frame = pd.DataFrame({
        "编号": [f"F{i:08d}" for i in range(n)],
        "名称": [f"设施{i}" for i in range(n)],
        "类型": rng.choice(CATEGORIES, n, p=[0.3, 0.2, 0.2, 0.15, 0.145, 0.005]),  # 老年活动室 is unmapped
        "床位": capacity,
    })
    return frame, shapely.points(glon, glat)


def typed_rows(n: int, seed: int = 7) -> pd.DataFrame:
    """The same rows as the standard's typed columns (what pandera validates)."""
    frame, points = raw_rows(n, seed)
    capacity = pd.to_numeric(frame["床位"], errors="coerce").astype("Int64")
    codes = {"养老院": "elderly_care_home", "日间照料中心": "day_care_centre", "Emergency Shelter": "emergency_shelter",
             "clinic": "clinic", "泵站": "pumping_station", "老年活动室": "老年活动室"}
    return pd.DataFrame({
        "facility_id": frame["编号"].astype("string"),
        "name": frame["名称"].astype("string"),
        "category": frame["类型"].map(codes).astype("string"),
        "district": pd.Series(pd.NA, index=frame.index, dtype="string"),
        "address": pd.Series(pd.NA, index=frame.index, dtype="string"),
        "capacity": capacity,
        "geometry": np.asarray(points, dtype=object),
    })


def bench_pandera(n: int, direct: bool = False) -> dict:
    """pandera's own ``validate(lazy=True)`` of the compiled standard, chunk by chunk; ``direct``: the
    hub's run of the same compiled checks (``failure_table``: vectorized, pandera's order and values)."""
    pack = load_pack()
    schema = compile_schema(pack.standard("facility"), pack, pack.city.gate(geographic=True), cross_row=False)
    frame = typed_rows(n)
    validate = failure_table if direct else pandera_failures
    start = time.perf_counter()
    failures = sum(len(validate(schema, frame.iloc[i:i + CHUNK])) for i in range(0, n, CHUNK))
    seconds = time.perf_counter() - start
    return {"rows": n, "seconds": round(seconds, 3), "rows_per_s": round(n / seconds), "failures": failures}


def bench_frictionless(n: int) -> dict:
    """frictionless reads the attribute columns as text (capacities such as 约50 included) and checks the
    vocabulary as an enum: the same rules as pandera's, which gets the columns already typed."""
    pack = load_pack()
    standard = pack.standard("facility")
    descriptor = standard.schema.to_descriptor()
    descriptor["fields"] = [f for f in descriptor["fields"] if f["type"] != "geojson"]
    for f in descriptor["fields"]:
        if f.get("vocabulary"):
            f.setdefault("constraints", {})["enum"] = pack.vocabulary(f["vocabulary"]).codes
    typed = typed_rows(n).drop(columns="geometry")
    typed["capacity"] = raw_rows(n)[0]["床位"]
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "facility.csv"
        typed.to_csv(path, index=False)
        resource = frictionless.Resource(path=path.name, basepath=tmp, schema=frictionless.Schema.from_descriptor(descriptor))
        start = time.perf_counter()
        report = frictionless.validate(resource, limit_errors=10 * n)
        seconds = time.perf_counter() - start
    return {"rows": n, "seconds": round(seconds, 3), "rows_per_s": round(n / seconds),
            "failures": len(report.flatten(["rowNumber"]))}


def bench_conform(n: int) -> dict:
    pack = load_pack()
    conformer = Conformer(Conformance(
        standard=pack.standard("facility"), pack=pack,
        fields={"facility_id": "编号", "name": "名称", "category": "类型", "capacity": "床位"},
        source_crs="GCJ-02", target_crs=pack.city.target_crs, gate=pack.city.gate(geographic=True),
    ))
    frame, points = raw_rows(n)
    quarantined = 0
    start = time.perf_counter()
    for i in range(0, n, CHUNK):
        out = conformer.conform(frame.iloc[i:i + CHUNK], points[i:i + CHUNK], np.arange(i + 1, min(i + CHUNK, n) + 1))
        quarantined += len(out.quarantine)
    conformer.details()
    seconds = time.perf_counter() - start
    return {"rows": n, "seconds": round(seconds, 3), "rows_per_s": round(n / seconds), "quarantined": quarantined}


def run(rows: int, compare_rows: int) -> dict:
    """The report: each measurement and the pandera / frictionless ratio on ``compare_rows`` rows."""
    pandera_compare = bench_pandera(compare_rows)
    frictionless_compare = bench_frictionless(compare_rows)
    return {
        "pandera": bench_pandera(rows),
        "direct": bench_pandera(rows, direct=True),
        "conform": bench_conform(rows),
        "compare": {
            "rows": compare_rows,
            "pandera": pandera_compare,
            "frictionless": frictionless_compare,
            "ratio": round(pandera_compare["rows_per_s"] / frictionless_compare["rows_per_s"], 1),
        },
    }


def describe(report: dict) -> str:
    c = report["compare"]
    return "\n".join([
        f"pandera validation: {report['pandera']['rows']:,} rows in {report['pandera']['seconds']} s "
        f"= {report['pandera']['rows_per_s']:,} rows/s",
        f"the same checks run directly by the hub (standards.compile.failure_table): "
        f"{report['direct']['rows_per_s']:,} rows/s",
        f"full conform (labels, types, GCJ-02 reprojection, validation): {report['conform']['rows']:,} rows in "
        f"{report['conform']['seconds']} s = {report['conform']['rows_per_s']:,} rows/s",
        f"on {c['rows']:,} rows: pandera {c['pandera']['rows_per_s']:,} rows/s, frictionless "
        f"{c['frictionless']['rows_per_s']:,} rows/s: pandera is {c['ratio']}x faster",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Validation throughput: pandera vs frictionless, and a full conform.")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--compare-rows", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = run(args.rows, args.compare_rows)
    print(json.dumps(report, indent=2) if args.json else describe(report))


if __name__ == "__main__":
    main()
