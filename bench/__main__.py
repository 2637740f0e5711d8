"""twinhub's benchmark: the hub against the I/O floor and the GDAL path, on the same files.

    python -m bench [--sizes 1e5,1e6,1e7] [--repeat 3] [--out bench-results]
    python -m bench --quick          # 1e4 rows, one run: the test suite's check of the code paths

At each size it generates a GBK CSV of facilities (GCJ-02 lng/lat, ten attribute
columns, a label column) and a GeoPackage of building polygons in EPSG:4549
(bench/generate.py), then measures, in the same run and on the same files
(bench/measure.py), each the median of --repeat runs (sizes above --once-above run once):

- twinhub end to end on each file (pull -> map labels -> reproject -> validate -> stage
  -> publish to the catalog): seconds, rows/s, peak RSS;
- the I/O floor: iconv GBK -> UTF-8, then DuckDB CSV -> Parquet with a point geometry;
- ogr2ogr -t_srs on the GeoPackage to a GeoPackage without a spatial index;

and once: validation alone (pandera vs frictionless, bench/validate.py), queries on
the largest published table, the overhead of ``twinhub run --all`` on many small
datasets, and Dagster definitions at 1,000 datasets (bench/definitions.py).

Writes bench.json, bench.md (ratios and targets) and bench.png (rows/s and peak
memory against rows) into --out. docs/benchmarks.md explains the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import shutil
import statistics
import sys
import tempfile

from bench import definitions, measure, report, validate
from bench.generate import generate

TARGET_CRS = "EPSG:4490"  # the city's target CRS (standards/city.yaml)


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _median(runs: list[dict], rows: int) -> dict:
    """The median seconds and peak RSS over ``runs``; the counts of the last run."""
    seconds = statistics.median(r["seconds"] for r in runs)
    out = {k: v for k, v in runs[-1].items() if k not in ("runs",)}
    out.update(seconds=round(seconds, 3), rows_per_s=round(rows / seconds) if seconds else 0,
               peak_rss_mb=round(statistics.median(r["peak_rss_mb"] for r in runs), 1),
               all_seconds=[round(r["seconds"], 3) for r in runs])
    if "process_s" in out:
        out["process_s"] = round(statistics.median(r["process_s"] for r in runs), 3)
    return out


def measure_size(rows: int, repeat: int, work: pathlib.Path, keep_home: pathlib.Path | None) -> dict:
    """All four paths on the same generated files, interleaved run by run (so the machine's load is shared)."""
    sources = generate(work / f"src_{rows}", rows)
    runs: dict[str, list[dict]] = {k: [] for k in report.PATHS}
    for i in range(repeat):
        last = i == repeat - 1
        home = keep_home if (last and keep_home) else work / f"home_{rows}_{i}"
        runs["twinhub_csv"].append(measure.twinhub_run(home, [sources.csv_manifest]))
        runs["floor_csv"].append(measure.duckdb_floor(sources.csv, work))
        runs["twinhub_gpkg"].append(measure.twinhub_run(home, [sources.gpkg_manifest]))
        runs["ogr2ogr"].append(measure.ogr2ogr(sources.gpkg, work, TARGET_CRS))
        if home != keep_home:
            shutil.rmtree(home, ignore_errors=True)
    figures = {k: _median(v, rows) for k, v in runs.items()}
    csv, gpkg = figures["twinhub_csv"], figures["twinhub_gpkg"]
    # every row read is published, quarantined (the unmapped label) or filtered (closed), exactly as generated
    if not (csv["read"] == rows and csv["quarantined"] == sources.csv_quarantined
            and csv["filtered"] == sources.csv_filtered
            and csv["published"] + csv["quarantined"] + csv["filtered"] == csv["read"]):
        raise AssertionError(f"CSV at {rows} rows: read {csv['read']}, published {csv['published']}, "
                             f"quarantined {csv['quarantined']}, filtered {csv['filtered']}; expected "
                             f"{sources.csv_quarantined} quarantined and {sources.csv_filtered} filtered")
    if not (gpkg["read"] == gpkg["published"] == rows == figures["ogr2ogr"]["rows"] == figures["floor_csv"]["rows"]):
        raise AssertionError(f"at {rows} rows the paths disagree: {json.dumps(figures)[:2000]}")
    shutil.rmtree(sources.folder)
    return {
        "rows": rows,
        **figures,
        "expected_quarantined": sources.csv_quarantined,
        "expected_filtered": sources.csv_filtered,
        "ratios": {
            "twinhub_vs_floor": round(csv["seconds"] / figures["floor_csv"]["seconds"], 2),
            "twinhub_gpkg_vs_ogr2ogr": round(gpkg["seconds"] / figures["ogr2ogr"]["seconds"], 2),
            "twinhub_gpkg_process_vs_ogr2ogr": round(gpkg["process_s"] / figures["ogr2ogr"]["seconds"], 2),
        },
    }


def validation(rows: int) -> dict:
    """pandera and frictionless on the same ``rows`` rows (bench/validate.py), and the hub's direct run of
    the pandera checks it compiles (what a run uses; pandera validates whatever that run does not cover)."""
    pandera, frictionless = validate.bench_pandera(rows), validate.bench_frictionless(rows)
    return {"rows": rows, "pandera": pandera, "frictionless": frictionless,
            "direct": validate.bench_pandera(rows, direct=True),
            "ratio": round(pandera["rows_per_s"] / frictionless["rows_per_s"], 1)}


def run(sizes: list[int], repeat: int, out: pathlib.Path, validate_rows: int, overhead: tuple[int, int],
        definitions_n: int, work_dir: pathlib.Path | None = None, once_above: int = 1_000_000) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    result: dict = {"machine": {"cpus": os.cpu_count(), "load_before": _load(), "python": platform.python_version()},
                    "repeat": repeat, "once_above": once_above, "sizes": []}
    small, big = [n for n in sorted(sizes) if n <= once_above], [n for n in sorted(sizes) if n > once_above]
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        work = pathlib.Path(tmp)
        for n in small:
            _size(result, n, repeat, work, out)
        print("bench: validation, run overhead, definitions…", file=sys.stderr, flush=True)
        result["validation"] = validation(validate_rows)
        if overhead[0]:
            result["run_overhead"] = measure.run_overhead(work, *overhead)
        if definitions_n:
            result["definitions"] = definitions.measure(definitions_n, repeat)
        _save(result, out)
        for n in big:  # last: the side figures are saved even if the largest size is stopped
            _size(result, n, 1, work, out)
    result["machine"]["load_after"] = _load()
    result["targets"] = report.targets(result)
    _save(result, out)
    return result


def _size(result: dict, rows: int, repeat: int, work: pathlib.Path, out: pathlib.Path) -> None:
    """One size's paths, then the queries on its published tables (kept as the largest so far)."""
    print(f"bench: {rows:,} rows…", file=sys.stderr, flush=True)
    home = work / "largest_home"
    result["sizes"].append(measure_size(rows, repeat, work, home))
    result["queries"] = {"rows": rows, **measure.queries(
        home, f"bench.facilities_{rows}", f"bench.buildings_{rows}", max(repeat, 3))}
    shutil.rmtree(home)
    _save(result, out)


def _save(result: dict, out: pathlib.Path) -> None:
    result.setdefault("machine", {}).setdefault("load_after", _load())
    result["targets"] = report.targets(result)
    (out / "bench.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "bench.md").write_text(report.markdown(result), encoding="utf-8")
    if result["sizes"]:
        report.plot(result, out / "bench.png")


def _sizes(text: str) -> list[int]:
    return [int(float(s)) for s in text.split(",") if s.strip()]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=_sizes, default=_sizes("1e5,1e6,1e7"), help="rows, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (the median is reported)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("bench-results"))
    parser.add_argument("--validate-rows", type=int, default=100_000)
    parser.add_argument("--overhead", type=int, nargs=2, default=(100, 1000), metavar=("DATASETS", "ROWS"),
                        help="twinhub run --all over DATASETS datasets of ROWS rows (0 0 skips it)")
    parser.add_argument("--definitions", type=int, default=1000, help="datasets for bench/definitions.py (0 skips it)")
    parser.add_argument("--once-above", type=_sizes, default=[1_000_000], metavar="ROWS",
                        help="sizes above ROWS run once, whatever --repeat says (1e7 rows take minutes per pass)")
    parser.add_argument("--work", type=pathlib.Path, help="folder for the generated files (default: the temp folder)")
    parser.add_argument("--quick", action="store_true", help="1e4 rows, one run, small side benchmarks")
    parser.add_argument("--render", type=pathlib.Path, metavar="BENCH_JSON",
                        help="only write bench.md and bench.png again from a saved bench.json (into --out)")
    args = parser.parse_args(argv)
    if args.render:
        result = json.loads(args.render.read_text(encoding="utf-8"))
        args.out.mkdir(parents=True, exist_ok=True)
        _save(result, args.out)
        print(report.markdown(result))
        return result
    if args.quick:
        args.sizes, args.repeat, args.validate_rows, args.overhead, args.definitions = [10_000], 1, 2_000, (4, 200), 0
    result = run(args.sizes, args.repeat, args.out, args.validate_rows, tuple(args.overhead), args.definitions, args.work,
                 args.once_above[0])
    print(report.markdown(result))
    return result


if __name__ == "__main__":
    main()
