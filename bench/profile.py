"""Where a run's time goes, stage by stage: the profile behind the benchmark's figures.

    python -m bench.profile --rows 1e6 [--source csv|gpkg]

Generates the benchmark's source (bench/generate.py), then runs it through
``twinhub.hub.ingest`` with a timer around each stage's function (read, the manifest's
derived fields and filter, labels and types, reprojection, validation, quarantine
records, run figures, stage writes,
key duplicates, publish and its parts) and prints seconds and share of the run.
Stages nest (publish contains its parts), so the shares of nested rows are of the
whole run too, not of their parent. The run here is serial (``twinhub.hub.ingest.OVERLAP``
off) so that each stage's time is its own; a real run reads the next chunk and writes
the last one's stage in threads while a chunk is conformed, and takes less.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import pathlib
import tempfile
import time

TIMES: collections.Counter = collections.Counter()


def _timed(owner, name: str, label: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            TIMES[label] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def _timed_generator(owner, name: str, label: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        iterator = original(*args, **kwargs)
        while True:
            start = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                TIMES[label] += time.perf_counter() - start
                return
            TIMES[label] += time.perf_counter() - start
            yield item

    setattr(owner, name, wrapper)


def instrument() -> None:
    from twinhub.catalog import notes, preview, publish, stage
    from twinhub.connectors.csv import CsvConnector
    from twinhub.connectors.vector import VectorConnector
    from twinhub.standards import conform
    from twinhub.standards.privacy import PrivacyScan

    _timed_generator(CsvConnector, "chunks", "read (CSV: parse, decode, points)")
    _timed_generator(VectorConnector, "chunks", "read (GDAL: Arrow batches, WKB)")
    _timed(conform.Conformer, "_attributes", "conform: labels and types")
    _timed(conform, "transform_geometries", "conform: reprojection")
    _timed(conform.Conformer, "_validate", "conform: validation (pandera)")
    _timed(conform.Conformer, "_count", "conform: run figures")
    _timed(conform.Conformer, "_quarantine", "conform: quarantine records")
    _timed(conform.Conformer, "conform", "conform (all)")
    from twinhub.hub.derive import Derivation

    _timed(Derivation, "apply", "derive: derived fields, filter, label levels")
    _timed(stage.Stage, "write", "stage: Parquet writes")
    _timed(PrivacyScan, "feed", "privacy scan")
    _timed(stage.Stage, "hold_duplicates", "stage: key order or duplicates")
    _timed(publish, "_write_table", "publish: table write (DuckLake)")
    _timed(publish, "_changes", "publish: change counts")
    _timed(notes, "facts", "publish: release-note facts")
    _timed(publish, "_extent", "publish: extent")
    _timed(publish, "render_preview", "publish: preview image")
    _timed(publish, "publish", "publish (all)")
    del preview
    import twinhub.hub.ingest  # after the patches: it imports publish by name

    twinhub.hub.ingest.OVERLAP = False  # each stage on its own: a real run overlaps reading and stage writes


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=lambda s: int(float(s)), default=1_000_000)
    parser.add_argument("--source", choices=("csv", "gpkg"), default="csv")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    instrument()
    from bench.generate import generate
    from twinhub.hub.home import Hub
    from twinhub.hub.ingest import ingest
    from twinhub.hub.registration import register

    with tempfile.TemporaryDirectory() as tmp:
        sources = generate(pathlib.Path(tmp) / "src", args.rows)
        hub = Hub.open(pathlib.Path(tmp) / "home")
        entry, _ = register(hub, sources.csv_manifest if args.source == "csv" else sources.gpkg_manifest)
        start = time.perf_counter()
        ingest(hub, entry, run_id="profile")
        total = time.perf_counter() - start
    report = {"rows": args.rows, "source": args.source, "seconds": round(total, 2),
              "stages": {k: {"seconds": round(v, 2), "share": round(v / total, 3)} for k, v in TIMES.most_common()}}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{args.rows:,} rows ({args.source}) in {total:.1f} s")
        for label, figures in report["stages"].items():
            print(f"  {figures['seconds']:>7.2f} s  {figures['share']:>6.1%}  {label}")
    return report


if __name__ == "__main__":
    main()
