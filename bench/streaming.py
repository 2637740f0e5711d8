"""Peak memory of one dataset's run as the source grows: streaming, not loading whole tables.

    python -m bench.streaming [--rows 100000 1000000] [--out bench-results]

Writes a GBK CSV of facilities with GCJ-02 lng/lat (the sample city's format,
a label column included) at each size, runs it through the hub (pull, map
labels, reproject, validate, stage, publish) in a fresh process, and reports
wall time, rows/s and peak RSS. The smallest size is the baseline of the same
run: peak memory at the largest size should stay within ~20% of it.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

from standards.chinese_crs import wgs84_to_gcj02

RUN = textwrap.dedent(
    """
    import json, resource, sys, time
    from twinhub.home import Hub
    from twinhub.ingest import ingest
    from twinhub.registry import register
    hub = Hub.open(sys.argv[1])
    entry, _ = register(hub, __import__("pathlib").Path(sys.argv[2]))
    start = time.perf_counter()
    result = ingest(hub, entry, run_id="bench")
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb, "read": result.rows_read,
                      "published": result.rows_published, "quarantined": result.rows_quarantined}))
    """
)

MANIFEST = """\
department: bench
dataset: care_{rows}
title: Synthetic care facilities ({rows} rows)
standard: facility
source: {{format: csv, path: care.csv, encoding: gbk, crs: GCJ-02, x: 经度, y: 纬度}}
fields: {{facility_id: 编号, name: 名称, category: 类型, district: 区, capacity: 床位}}
labels: {{category: {{养老院: elderly_care_home, 日间照料中心: day_care_centre}}}}
"""


def write_source(folder: pathlib.Path, rows: int, chunk: int = 200_000) -> pathlib.Path:
    """A GBK CSV of ``rows`` facilities in central Shanghai, written in chunks."""
    rng = np.random.default_rng(rows)
    path = folder / "care.csv"
    kinds = np.array(["养老院", "日间照料中心", "敬老院", "老年活动室"])  # the last is unmapped: quarantined
    with path.open("w", encoding="gbk", newline="") as fh:
        fh.write("编号,名称,类型,区,床位,经度,纬度\n")
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            lon, lat = rng.uniform(121.35, 121.6, n), rng.uniform(31.12, 31.32, n)
            glon, glat = wgs84_to_gcj02(lon, lat)
            ids = np.arange(start, start + n)
            kind = kinds[rng.integers(0, 4, n)]
            beds = rng.integers(10, 400, n)
            fh.writelines(
                f"F{i:08d},机构{i},{k},静安区,{b},{x:.9f},{y:.9f}\n"
                for i, k, b, x, y in zip(ids, kind, beds, glon, glat)
            )
    (folder / "care.yaml").write_text(MANIFEST.format(rows=rows), encoding="utf-8")
    return folder / "care.yaml"


def measure(rows: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_source(pathlib.Path(tmp), rows)
        out = subprocess.run([sys.executable, "-c", RUN, str(pathlib.Path(tmp) / "home"), str(manifest)],
                             check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(rows=rows, rows_per_s=round(rows / result["seconds"]), seconds=round(result["seconds"], 2),
                  peak_rss_mb=round(result["peak_rss_mb"], 1))
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("bench-results"))
    args = parser.parse_args(argv)
    runs = [measure(n) for n in sorted(args.rows)]
    base = runs[0]
    for r in runs:
        r["peak_vs_smallest"] = round(r["peak_rss_mb"] / base["peak_rss_mb"], 2)
        assert r["read"] == r["published"] + r["quarantined"] == r["rows"], r
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "streaming.json").write_text(json.dumps(runs, indent=2), encoding="utf-8")
    for r in runs:
        print(f"{r['rows']:>10,} rows: {r['seconds']:>7} s, {r['rows_per_s']:>7,} rows/s, peak RSS {r['peak_rss_mb']} MB "
              f"(x{r['peak_vs_smallest']} of {base['rows']:,} rows); published {r['published']:,}, "
              f"quarantined {r['quarantined']:,}")
    return {"runs": runs}


if __name__ == "__main__":
    main()
