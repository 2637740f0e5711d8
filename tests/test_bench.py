"""The benchmarks' code paths at small sizes: the reports are produced and the counts add up (not timings)."""

from __future__ import annotations

import json

import pytest

from bench import definitions
from bench.__main__ import main as bench_main


@pytest.mark.slow
def test_definitions_benchmark_compares_n_datasets_with_one(tmp_path):
    result = definitions.main(["--datasets", "12", "--repeat", "1", "--out", str(tmp_path), "--ui"])
    saved = json.loads((tmp_path / "definitions.json").read_text())
    assert saved == result
    for name in ("definitions_s", "datasets_cli_s"):
        figures = saved[name]
        assert figures["baseline_1"] > 0 and figures["n_12"] > 0
        assert figures["ratio"] == pytest.approx(figures["n_12"] / figures["baseline_1"], abs=0.011)  # of unrounded times
    for size in ("baseline_1", "n_12"):  # the UI served the hub and the catalog page rendered
        assert saved["ui"][size]["code_location_loaded_s"] > 0 and saved["ui"][size]["catalog_page_s"] > 0


@pytest.mark.slow
def test_the_benchmark_command_measures_every_path_on_the_same_rows_and_reports(tmp_path):
    """``python -m bench --quick``: 1e4 rows through twinhub, the DuckDB floor and ogr2ogr; counts, not timings."""
    bench_main(["--quick", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "bench.json").read_text())
    (size,) = saved["sizes"]
    assert size["rows"] == 10_000
    csv, gpkg = size["twinhub_csv"], size["twinhub_gpkg"]
    assert csv["read"] == 10_000 and csv["quarantined"] == size["expected_quarantined"] > 0  # the unmapped label
    assert csv["filtered"] == size["expected_filtered"] > 0  # closed: left out by the manifest's filter
    assert csv["published"] == 10_000 - csv["quarantined"] - csv["filtered"]
    assert gpkg["read"] == gpkg["published"] == size["ogr2ogr"]["rows"] == size["floor_csv"]["rows"] == 10_000
    for path in ("twinhub_csv", "floor_csv", "twinhub_gpkg", "ogr2ogr"):
        assert size[path]["seconds"] > 0 and size[path]["rows_per_s"] > 0 and size[path]["peak_rss_mb"] > 0
    assert size["ogr2ogr"]["peak_rss_mb"] < csv["peak_rss_mb"]  # each process's own peak, not its parent's
    assert size["ratios"]["twinhub_vs_floor"] == round(csv["seconds"] / size["floor_csv"]["seconds"], 2)
    # the queries ran on the published tables: a count per label adds up to the published rows
    counts = saved["queries"]["count_by_label"]["result"]
    assert sum(int(n) for _, n in counts) == csv["published"]
    assert {label for label, _ in counts} == {"elderly_care_home", "day_care_centre", "clinic"}
    assert saved["validation"]["pandera"]["failures"] > 0 and saved["validation"]["frictionless"]["failures"] > 0
    assert saved["validation"]["direct"]["failures"] == saved["validation"]["pandera"]["failures"]  # the same checks
    overhead = saved["run_overhead"]
    assert overhead["published_cli"] == overhead["published_direct"] > 0
    wanted = {t["target"] for t in saved["targets"]}
    assert {"end to end vs the I/O floor", "GeoPackage: twinhub vs ogr2ogr -t_srs", "count by label"} <= wanted
    table = (tmp_path / "bench.md").read_text()
    assert "| 10,000 | twinhub, GBK CSV (GCJ-02 points) |" in table and "twinhub / floor" in table
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_the_profile_times_each_stage_of_a_serial_run(tmp_path):
    """``python -m bench.profile``: in its own process (it patches the pipeline's functions)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "bench.profile", "--rows", "3000", "--json"], capture_output=True,
                         text=True, check=True).stdout
    report = json.loads(out[out.index("{"):])
    assert report["rows"] == 3000 and report["seconds"] > 0
    stages = report["stages"]
    for name in ("stage: Parquet writes", "privacy scan", "publish: table write (DuckLake)"):
        assert name in stages, name  # each timed (a few ms at this size)
    for name in ("read (CSV: parse, decode, points)", "conform (all)", "publish (all)"):
        assert stages[name]["seconds"] > 0, name
    parts = sum(stages[n]["share"] for n in ("read (CSV: parse, decode, points)", "conform (all)",
                                             "stage: Parquet writes", "privacy scan", "publish (all)"))
    assert 0.3 < parts <= 1.0  # serial: the top-level stages do not overlap, so their shares add up to at most the run
