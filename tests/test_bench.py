"""The benchmarks' code paths at small sizes: the reports are produced and the counts add up (not timings)."""

from __future__ import annotations

import json

import pytest

from bench import definitions, streaming


@pytest.mark.slow
def test_streaming_benchmark_reports_every_size_with_counts_that_add_up(tmp_path):
    streaming.main(["--rows", "3000", "6000", "--out", str(tmp_path)])
    runs = json.loads((tmp_path / "streaming.json").read_text())
    assert [r["rows"] for r in runs] == [3000, 6000]
    for r in runs:
        assert r["read"] == r["published"] + r["quarantined"] == r["rows"]
        assert 0.15 < r["quarantined"] / r["rows"] < 0.35  # the unmapped label planted in a quarter of the rows
        assert r["peak_rss_mb"] > 0 and r["rows_per_s"] > 0
    assert runs[0]["peak_vs_smallest"] == 1.0


@pytest.mark.slow
def test_definitions_benchmark_compares_n_datasets_with_one(tmp_path):
    result = definitions.main(["--datasets", "12", "--repeat", "1", "--out", str(tmp_path), "--ui"])
    saved = json.loads((tmp_path / "definitions.json").read_text())
    assert saved == result
    for name in ("definitions_s", "datasets_cli_s"):
        figures = saved[name]
        assert figures["baseline_1"] > 0 and figures["n_12"] > 0
        assert figures["ratio"] == round(figures["n_12"] / figures["baseline_1"], 2)
    for size in ("baseline_1", "n_12"):  # the UI served the hub and the catalog page rendered
        assert saved["ui"][size]["code_location_loaded_s"] > 0 and saved["ui"][size]["catalog_page_s"] > 0
