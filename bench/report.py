"""The benchmark's outputs: the targets checked, a markdown table of ratios, and a PNG plot.

The plot is drawn with Pillow (already a dependency): rows/s and peak RSS against
rows, on a log scale of rows, one line per path.
"""

from __future__ import annotations

import math
import pathlib

from PIL import Image, ImageDraw

PATHS = {  # key in each size's figures -> legend and colour
    "twinhub_csv": ("twinhub, GBK CSV (GCJ-02 points)", (31, 119, 180)),
    "floor_csv": ("I/O floor: iconv + DuckDB CSV -> Parquet", (127, 127, 127)),
    "twinhub_gpkg": ("twinhub, GeoPackage EPSG:4549 polygons", (214, 39, 40)),
    "ogr2ogr": ("ogr2ogr -t_srs, same GeoPackage", (44, 160, 44)),
}


def _at(sizes: list[dict], rows: int) -> dict | None:
    return next((s for s in sizes if s["rows"] == rows), None)


def targets(result: dict) -> list[dict]:
    """Each target of issue 8 with the figure measured in this run (None: not measured in this run)."""
    sizes = result["sizes"]
    largest = sizes[-1] if sizes else None
    mid = _at(sizes, 1_000_000) or largest
    big = _at(sizes, 10_000_000)
    out = []

    def add(name: str, target: str, measured, met, where: str = "") -> None:
        out.append({"target": name, "wanted": target, "measured": measured, "met": met, "where": where})

    if mid:
        r = mid["ratios"]
        add("end to end vs the I/O floor", "< 2x", r["twinhub_vs_floor"], r["twinhub_vs_floor"] < 2, f"{mid['rows']:,} rows")
        add("GeoPackage: twinhub vs ogr2ogr -t_srs", "< 1x", r["twinhub_gpkg_vs_ogr2ogr"],
            r["twinhub_gpkg_vs_ogr2ogr"] < 1, f"{mid['rows']:,} rows")
    if big:
        peak = big["twinhub_csv"]["peak_rss_mb"]
        add("peak memory at 1e7 rows", "< 1500 MB", peak, peak < 1500, "GBK CSV")
        if _at(sizes, 1_000_000):
            grow = round(peak / _at(sizes, 1_000_000)["twinhub_csv"]["peak_rss_mb"], 2)
            add("peak memory 1e7 vs 1e6", "< 1.2x", grow, grow < 1.2, "GBK CSV")
    d = result.get("definitions")
    if d:
        for key, label in (("definitions_s", "Dagster definitions load"), ("datasets_cli_s", "twinhub datasets")):
            figure = d[key][f"n_{d['datasets']}"]
            add(f"{label}, {d['datasets']:,} datasets", f"< {d[key]['target']} s", figure, figure < d[key]["target"])
    o = result.get("run_overhead")
    if o:
        per = round(o["overhead_per_dataset_s"], 3)
        add(f"run --all overhead, {o['datasets']} datasets of {o['rows_each']:,} rows", "< 0.5 s/dataset", per, per < 0.5)
    q = result.get("queries")
    if q:
        add("count by label", "< 1 s", round(q["count_by_label"]["seconds"], 3), q["count_by_label"]["seconds"] < 1,
            f"{q['rows']:,}-row table")
        add("spatial join, 1e5 points x 1e3 polygons", "< 2 s", round(q["spatial_join"]["seconds"], 3),
            q["spatial_join"]["seconds"] < 2, f"{q['rows']:,}-row table")
    return out


def markdown(result: dict) -> str:
    """The report: per size, each path's seconds, rows/s and peak RSS, the ratios, then the targets."""
    m = result["machine"]
    lines = [
        "# twinhub benchmark",
        "",
        f"{m['cpus']} CPUs, load average {m['load_before']} before and {m['load_after']} after; "
        f"median of {result['repeat']} run(s) per figure (one run above {result.get('once_above', 0):,} rows). Seconds are the pipeline's own (interpreter start "
        "and imports excluded; ogr2ogr and iconv as whole processes). Ratios compare figures of the same run.",
        "",
        "| rows | path | seconds | rows/s | peak RSS MB |",
        "|---:|---|---:|---:|---:|",
    ]
    for size in result["sizes"]:
        for key, (label, _) in PATHS.items():
            f = size.get(key)
            if f:
                lines.append(f"| {size['rows']:,} | {label} | {f['seconds']:.2f} | {f['rows_per_s']:,} | {f['peak_rss_mb']:,.0f} |")
    lines += ["", "| rows | twinhub / floor | twinhub / ogr2ogr | published | quarantined | filtered |",
              "|---:|---:|---:|---:|---:|---:|"]
    for size in result["sizes"]:
        r, c = size["ratios"], size["twinhub_csv"]
        lines.append(f"| {size['rows']:,} | {r['twinhub_vs_floor']} | {r['twinhub_gpkg_vs_ogr2ogr']} | "
                     f"{c['published']:,} | {c['quarantined']:,} | {c.get('filtered', 0):,} |")
    v = result.get("validation")
    if v:
        lines += ["", f"Validation alone on {v['rows']:,} rows: pandera {v['pandera']['rows_per_s']:,} rows/s, "
                      f"frictionless {v['frictionless']['rows_per_s']:,} rows/s (pandera x{v['ratio']})"
                      + (f"; the same compiled checks run directly by the hub {v['direct']['rows_per_s']:,} rows/s."
                         if v.get("direct") else ".")]
    lines += ["", "| target | wanted | measured | met | on |", "|---|---|---:|---|---|"]
    for t in targets(result):
        lines.append(f"| {t['target']} | {t['wanted']} | {t['measured']} | {'yes' if t['met'] else 'NO'} | {t['where']} |")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: pathlib.Path) -> None:
    """Two panels, rows/s and peak RSS against rows (log scale), one line per path."""
    sizes = result["sizes"]
    width, height, pad = 1100, 460, 70
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    panel_w = (width - 3 * pad) // 2
    for i, (metric, title, log_y) in enumerate((("rows_per_s", "rows/s (log scale)", True),
                                                 ("peak_rss_mb", "peak RSS (MB)", False))):
        left, top, bottom = pad + i * (panel_w + pad), 40, height - 120
        _panel(draw, sizes, metric, title, (left, top, left + panel_w, bottom), log_y)
    y = height - 80
    for j, (label, colour) in enumerate(v for k, v in PATHS.items() if any(k in s for s in sizes)):
        x = pad + (j % 2) * (width // 2)
        yy = y + (j // 2) * 22
        draw.line([(x, yy + 7), (x + 30, yy + 7)], fill=colour, width=3)
        draw.text((x + 38, yy), label, fill="black")
    image.save(path)


def _panel(draw: ImageDraw.ImageDraw, sizes: list[dict], metric: str, title: str, box: tuple[int, int, int, int],
           log_y: bool = False) -> None:
    left, top, right, bottom = box
    rows = [s["rows"] for s in sizes]
    values = [s[k][metric] for s in sizes for k in PATHS if k in s]
    lo_x, hi_x = math.log10(min(rows)), math.log10(max(rows))
    margin = max(hi_x - lo_x, 1) * 0.08  # keep the end points off the frame
    lo_x, hi_x = lo_x - margin, hi_x + margin
    if log_y:
        lo_y = math.floor(math.log10(max(min(values), 1))) if values else 0
        hi_y = math.ceil(math.log10(max(values))) if values else 1
        hi_y += hi_y == lo_y
    else:
        lo_y, hi_y = 0, max(values) * 1.1 if values else 1

    def scale(v: float) -> float:
        return (math.log10(max(v, 1)) if log_y else v) - lo_y

    def xy(n: float, v: float) -> tuple[float, float]:
        return (left + (math.log10(n) - lo_x) / (hi_x - lo_x) * (right - left),
                bottom - scale(v) / (hi_y - lo_y) * (bottom - top))

    draw.rectangle(box, outline="black")
    draw.text((left, top - 25), title, fill="black")
    steps = (hi_y - lo_y) if log_y else 4
    for k in range(steps + 1):  # y grid: decades on a log scale, quarters otherwise
        v = 10 ** (lo_y + k) if log_y else hi_y * k / 4
        y = bottom - k / steps * (bottom - top)
        draw.line([(left, y), (right, y)], fill=(225, 225, 225))
        draw.text((left - 60, y - 6), f"{v:,.0f}", fill="black")
    for n in rows:
        x, _ = xy(n, 0)
        draw.text((x - 15, bottom + 6), f"{n:.0e}", fill="black")
    for key, (_, colour) in PATHS.items():
        points = [xy(s["rows"], s[key][metric]) for s in sizes if key in s]
        if len(points) > 1:
            draw.line(points, fill=colour, width=3)
        for x, y in points:
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour)
