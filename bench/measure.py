"""The benchmark's measurements, each in a fresh process so peak memory (RSS) is its own.

- :func:`twinhub_run`: pull -> map labels -> reproject -> validate -> stage -> publish
  of one manifest into a hub (``twinhub.hub.ingest``), timed inside the process (the
  interpreter's start and imports are reported apart, as ``process_s``);
- :func:`duckdb_floor`: the I/O floor: DuckDB reading the CSV and writing Parquet with
  a point geometry, no mapping and no checks. DuckDB reads only UTF-8/UTF-16/Latin-1
  without its encodings extension (not available offline), so the floor first
  transcodes the GBK file with ``iconv``; both steps are timed and reported apart;
- :func:`ogr2ogr`: the GDAL path, ``ogr2ogr -t_srs`` to a GeoPackage without a spatial index;
- :func:`queries`: a count by label and a spatial join on the published tables;
- :func:`run_overhead`: ``twinhub run --all`` over many small datasets against the same
  datasets' data work done directly.

Peak RSS comes from ``os.wait4`` on the child: the most memory the process held.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

REPO = pathlib.Path(__file__).resolve().parents[1]

INGEST = textwrap.dedent(
    """
    import json, pathlib, sys, time
    from twinhub.hub.home import Hub
    from twinhub.hub.ingest import ingest
    from twinhub.hub.registration import register
    hub = Hub.open(sys.argv[1])
    results = []
    for manifest in sys.argv[2:]:
        entry, _ = register(hub, pathlib.Path(manifest))
        start = time.perf_counter()
        result = ingest(hub, entry, run_id=f"bench-{entry.id}", force=True)
        seconds = time.perf_counter() - start
        con = hub.lake.connect(read_only=True)  # the run's record: rows left out by the manifest's filter
        filtered = con.execute("SELECT coalesce(rows_filtered, 0) FROM catalog.runs WHERE run_id = ? AND dataset = ?",
                               [f"bench-{entry.id}", entry.id]).fetchone()[0]
        con.close()
        results.append({"dataset": entry.id, "seconds": seconds, "read": result.rows_read,
                        "published": result.rows_published, "quarantined": result.rows_quarantined,
                        "filtered": filtered})
    print(json.dumps(results))
    """
)

FLOOR = textwrap.dedent(
    """
    import json, sys, time
    from twinhub.catalog.extensions import connect
    source, out = sys.argv[1], sys.argv[2]
    start = time.perf_counter()
    con = connect(extensions=("spatial",))
    rows = con.execute(
        f"COPY (SELECT * EXCLUDE (经度, 纬度), ST_AsWKB(ST_Point(经度, 纬度)) AS geometry "
        f"FROM read_csv('{source}', header = true)) TO '{out}' (FORMAT parquet)"
    ).fetchone()[0]
    print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows}))
    """
)


# A lean process (python -S) forks and execs the measured command and reports its rusage: on Linux a
# child's peak RSS starts at its parent's (fork copies the parent's pages, exec keeps the high-water
# mark), so the benchmark's own process, with pandas imported, must not be the parent.
LAUNCHER = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execvp(sys.argv[2], sys.argv[2:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def child(cmd: list[str], env: dict | None = None, stdin=None) -> tuple[str, float, float]:
    """Run ``cmd``: its stdout, wall seconds and peak RSS in MB (its own, see LAUNCHER)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, \
            tempfile.NamedTemporaryFile("r") as rss:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, rss.name, *map(str, cmd)], stdout=out,
                              stderr=err, stdin=stdin, cwd=REPO, env={**os.environ, **(env or {})})
        seconds = time.perf_counter() - start
        out.seek(0), err.seek(0)
        text, error, peak_kb = out.read(), err.read(), rss.read()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd[-2:]))} failed ({proc.returncode}): {error[-3000:]}")
    return text, seconds, round(int(peak_kb) / 1024, 1)


def twinhub_run(home: pathlib.Path, manifests: list[pathlib.Path]) -> dict:
    """Ingest ``manifests`` into the hub at ``home`` in one fresh process."""
    out, process_s, peak = child([sys.executable, "-c", INGEST, str(home), *map(str, manifests)])
    runs = json.loads(out.strip().splitlines()[-1])
    seconds = sum(r["seconds"] for r in runs)
    return {"seconds": seconds, "process_s": process_s, "peak_rss_mb": peak, "runs": runs,
            **{k: sum(r[k] for r in runs) for k in ("read", "published", "quarantined", "filtered")}}


def duckdb_floor(csv: pathlib.Path, work: pathlib.Path) -> dict:
    """iconv GBK -> UTF-8, then DuckDB CSV -> Parquet with a point geometry."""
    utf8, parquet = work / "floor.csv", work / "floor.parquet"
    with csv.open("rb") as source:
        _, transcode_s, _ = child(["iconv", "-f", "GBK", "-t", "UTF-8", "-o", str(utf8)], stdin=source)
    out, process_s, peak = child([sys.executable, "-c", FLOOR, str(utf8), str(parquet)])
    result = json.loads(out.strip().splitlines()[-1])
    utf8.unlink(), parquet.unlink()
    return {"seconds": transcode_s + result["seconds"], "transcode_s": transcode_s, "duckdb_s": result["seconds"],
            "process_s": transcode_s + process_s, "peak_rss_mb": peak, "rows": result["rows"]}


def ogr2ogr(gpkg: pathlib.Path, work: pathlib.Path, target_crs: str) -> dict:
    """``ogr2ogr -t_srs`` of the GeoPackage to a GeoPackage without a spatial index (Debian gdal-bin)."""
    exe = shutil.which("ogr2ogr")
    if exe is None:
        raise RuntimeError("ogr2ogr not found: install Debian's gdal-bin (apt-get install gdal-bin)")
    out = work / "ogr2ogr.gpkg"
    out.unlink(missing_ok=True)
    _, seconds, peak = child([exe, "-f", "GPKG", "-t_srs", target_crs, "-lco", "SPATIAL_INDEX=NO",
                                     "-nln", "buildings", str(out), str(gpkg)])
    features = _count_features(out)
    out.unlink()
    return {"seconds": seconds, "process_s": seconds, "peak_rss_mb": peak, "rows": features}


def _count_features(gpkg: pathlib.Path) -> int:
    import pyogrio

    return int(pyogrio.read_info(str(gpkg))["features"])


QUERIES = textwrap.dedent(
    """
    import json, sys, time
    from twinhub.hub.home import Hub
    hub = Hub.open(sys.argv[1])
    points, polygons, label = sys.argv[2], sys.argv[3], sys.argv[4]
    con = hub.lake.connect(read_only=True)
    out = {}
    for name, sql in (
        ("count_by_label", f"SELECT {label}, count(*) FROM {points} GROUP BY 1 ORDER BY 1"),
        ("spatial_join", f"WITH pts AS (SELECT geometry FROM {points} LIMIT 100000), "
                         f"polys AS (SELECT ST_Envelope(ST_Buffer(geometry, 0.002)) AS g FROM {polygons} LIMIT 1000) "
                         "SELECT count(*), count(DISTINCT polys.g) FROM pts JOIN polys ON ST_Intersects(polys.g, pts.geometry)"),
    ):
        times = []
        for _ in range(int(sys.argv[5])):
            start = time.perf_counter()
            rows = con.execute(sql).fetchall()
            times.append(time.perf_counter() - start)
        out[name] = {"seconds": sorted(times)[len(times) // 2], "result": [list(map(str, r)) for r in rows]}
    print(json.dumps(out))
    """
)


def queries(home: pathlib.Path, points: str, polygons: str, repeat: int) -> dict:
    """A count by label over the published facilities, and 1e5 of their points joined with 1e3 polygons."""
    out, _, _ = child([sys.executable, "-c", QUERIES, str(home), points, polygons, "category", str(repeat)])
    return json.loads(out.strip().splitlines()[-1])


def run_overhead(work: pathlib.Path, datasets: int, rows: int) -> dict:
    """``twinhub run --all`` over ``datasets`` small CSV datasets, against their data work done directly
    (``twinhub.hub.ingest`` in one process, in another hub): the difference per dataset is the overhead."""
    from bench.generate import FACILITY_MANIFEST, write_csv

    folder = work / "small"
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(folder / "facilities.csv", rows)
    manifests = []
    for i in range(datasets):
        path = folder / f"small_{i:04d}.yaml"
        path.write_text(FACILITY_MANIFEST.format(rows=rows).replace(f"facilities_{rows}", f"small_{i:04d}"),
                        encoding="utf-8")
        manifests.append(path)
    direct = twinhub_run(work / "direct_home", manifests)
    cli_home = work / "cli_home"
    child([sys.executable, "-c", textwrap.dedent("""
        import pathlib, sys
        from twinhub.hub.home import Hub
        from twinhub.hub.registration import register
        hub = Hub.open(sys.argv[1])
        for m in sys.argv[2:]:
            register(hub, pathlib.Path(m))
        """), str(cli_home), *map(str, manifests)])
    _, cli_s, peak = child([sys.executable, "-m", "twinhub", "run", "--all"], env={"TWINHUB_HOME": str(cli_home)})
    published = _published(cli_home)
    shutil.rmtree(folder), shutil.rmtree(work / "direct_home"), shutil.rmtree(cli_home)
    return {"datasets": datasets, "rows_each": rows, "cli_s": cli_s, "data_work_s": direct["seconds"],
            "overhead_per_dataset_s": (cli_s - direct["seconds"]) / datasets, "peak_rss_mb": peak,
            "published_direct": direct["published"], "published_cli": published}


def _published(home: pathlib.Path) -> int:
    out, _, _ = child([sys.executable, "-c", textwrap.dedent("""
        import sys
        from twinhub.hub.home import Hub
        con = Hub.open(sys.argv[1]).lake.connect(read_only=True)
        print(con.execute("SELECT coalesce(sum(rows_published), 0) FROM catalog.runs WHERE status = 'published'").fetchone()[0])
        """), str(home)])
    return int(out.strip().splitlines()[-1])
