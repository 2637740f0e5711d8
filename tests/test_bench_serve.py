"""`python -m bench.serve` at a tiny size: it runs end to end against TiPg on PostGIS, both servers
match the same features for every bbox, and it writes its figures and targets (no timing asserts:
the speed figures are the benchmark's, docs/bench-results/serve.md)."""

from __future__ import annotations

import json

import psycopg
import pytest

from bench import serve

pytestmark = pytest.mark.slow


def test_the_serve_benchmark_compares_twinhub_with_tipg_on_the_same_layer(tmp_path):
    result = serve.run(rows=10_000, requests=8, tiles_n=4, clients=3, load_s=5, warmup_s=1, paint_repeat=1,
                       out=tmp_path)
    assert result["rows"] == result["postgis_rows"] > 9_000  # ~1 % of the generated rows are quarantined
    items = result["items_bbox"]
    assert items["count_mismatches"] == [] and items["twinhub"]["n"] == items["tipg"]["n"] == 8
    assert result["tiles_z14"]["tiles"] == 4 and set(result["tiles_z14"]) == {"cold", "warm", "tiles"}
    for name in ("twinhub", "tipg"):
        assert result["load"][name]["n"] > 0 and result["load"][name]["errors"] == 0, result["load"][name]
    assert result["first_paint"]["collections"] == result["first_paint"]["layers_listed"] >= 2
    assert [t["figure"] for t in result["targets"]] == list(serve.TARGETS)
    assert all(t["tipg_ms"] for t in result["targets"] if t["figure"] != "first_paint_ms")
    saved = json.loads((tmp_path / "serve.json").read_text(encoding="utf-8"))
    assert saved["targets"] == result["targets"] and "load_after" in saved["machine"]
    report = (tmp_path / "serve.md").read_text(encoding="utf-8")
    assert "| figure | target | twinhub | TiPg |" in report and "load average" in report
    with psycopg.connect(serve.PG_DSN) as pg:  # the anchor's schema is gone
        assert pg.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", [serve.PG_SCHEMA]).fetchone()[0] == 0
