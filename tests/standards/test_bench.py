"""The validation benchmark runs and reports (its timings are not asserted: it is not a timed test)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_benchmark_reports_rows_per_second_and_the_ratio():
    done = subprocess.run(
        [sys.executable, "-m", "bench.validate", "--rows", "3000", "--compare-rows", "1000", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["pandera"]["rows"] == report["conform"]["rows"] == 3000
    assert report["compare"]["rows"] == report["compare"]["frictionless"]["rows"] == 1000
    for measured in (report["pandera"], report["conform"], report["compare"]["pandera"], report["compare"]["frictionless"]):
        assert measured["rows_per_s"] > 0 and measured["seconds"] > 0
    assert report["compare"]["ratio"] > 0
    # the generated rows carry defects, and both engines find the same ones among the compared rows
    assert report["conform"]["quarantined"] > 0
    assert report["compare"]["pandera"]["failures"] > 0 and report["compare"]["frictionless"]["failures"] > 0
    assert report["direct"]["failures"] == report["pandera"]["failures"] > 0  # the hub's run of pandera's checks
