"""How fast `twinhub serve` answers, beside TiPg on PostGIS serving the same layer in the same run.

    python -m bench.serve [--rows 1e6] [--requests 200] [--load-s 60] [--clients 20] [--workers 1] [--out bench-results]
    python -m bench.serve --rows 1e4 --requests 20 --load-s 5    # what tests/test_bench_serve.py runs

It publishes a point layer of --rows care facilities (bench/generate.py's CSV, ~1 % quarantined) into
a fresh hub, copies the published rows into PostGIS (schema ``twinhub_bench_<pid>`` of the database
``test`` at 127.0.0.1:5432, with a GiST index; dropped at the end) and serves them twice, --workers
uvicorn workers each (the same number for both): ``twinhub serve`` and TiPg 1.6.1 (the anchor). After a warm-up, it times, each
request alternating between the two servers:

- a page of 100 items with a bbox (~1 km, random over the layer's extent; the same boxes for both),
  checking that both servers match the same number of features;
- z14 vector tiles over the same area: cold (first request of each tile) and warm (the same again);
- --clients concurrent clients for --load-s seconds (items with a bbox and tiles, mixed): errors and p95;
- the map's first paint (``/`` in headless Chromium until MapLibre is idle with every layer drawn),
  on the sample city of `twinhub demo`, signed in with a token granted every table, so that every
  sample layer is on the map (TiPg has no such page: no anchor).

Writes serve.json and serve.md (targets, figures, ratios to the anchor, load average) into --out.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import pathlib
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from sqlglot import exp

TIPG_VERSION = "1.6.1"
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_SCHEMA = f"twinhub_bench_{os.getpid()}"  # one per run: two runs never share it
ZOOM = 14
BOX_DEGREES = 0.01  # ~1 km
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--use-gl=angle", "--use-angle=swiftshader",
                 "--enable-unsafe-swiftshader"]  # WebGL in software: MapLibre needs it without a GPU
TARGETS = {  # figure -> (target in ms, what)
    "items_bbox_p95_ms": (100, "a page of 100 items with a bbox, p95"),
    "tile_warm_p95_ms": (50, "a z14 tile, warm, p95"),
    "tile_cold_p95_ms": (300, "a z14 tile, cold, p95"),
    "load_p95_ms": (250, "concurrent clients, p95 (and no error)"),
    "first_paint_ms": (2000, "the map's first paint with every sample layer"),
}


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _summary(ms: list[float]) -> dict:
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 1), "p95_ms": round(_percentile(ms, 0.95), 1),
            "max_ms": round(max(ms), 1)}


# --- the layer ---------------------------------------------------------------------------------------

def publish_layer(work: pathlib.Path, rows: int):
    """A hub with the generated facilities published as a public layer; (hub, table, published rows)."""
    from bench.generate import FACILITY_MANIFEST, write_csv
    from twinhub.hub.home import Hub
    from twinhub.hub.ingest import ingest
    from twinhub.hub.registration import register

    write_csv(work / "facilities.csv", rows)
    (work / "facilities.yaml").write_text(FACILITY_MANIFEST.format(rows=rows) + "classification: public\n",
                                          encoding="utf-8")
    hub = Hub.open(work / "home")
    entry, _ = register(hub, work / "facilities.yaml")
    result = ingest(hub, entry, run_id="bench-serve", force=True)
    return hub, entry.id, result.rows_published


def load_postgis(hub, table: str) -> int:
    """The published rows into PostGIS ``twinhub_bench.facilities`` (same columns, the same points in the
    hub's CRS, a GiST index, the key as primary key); returns the rows loaded."""
    import psycopg

    from twinhub.catalog.extensions import extension_path

    schema, name = table.split(".", 1)
    with psycopg.connect(PG_DSN, autocommit=True) as pg:
        pg.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        pg.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")  # our own schema, a constant
        pg.execute(f"CREATE SCHEMA {PG_SCHEMA}")
    con = hub.lake.connect(read_only=True)
    try:
        con.load_extension(str(extension_path("postgres_scanner")))  # from its PyPI package, never downloaded
        con.execute(f"ATTACH '{PG_DSN}' AS pg (TYPE postgres)")  # PG_DSN: this module's constant
        source = exp.table_(name, db=schema, catalog="lake", quoted=True)
        columns = [c for c, t in con.execute(exp.select("column_name", "data_type").from_("duckdb_columns()").where(
            exp.and_(exp.column("database_name").eq(exp.Literal.string("lake")),
                     exp.column("schema_name").eq(exp.Literal.string(schema)),
                     exp.column("table_name").eq(exp.Literal.string(name)))).sql("duckdb")).fetchall()
                   if not t.startswith("GEOMETRY")]
        select = exp.select(*[exp.column(exp.to_identifier(c, quoted=True)) for c in columns],
                            exp.alias_(exp.Anonymous(this="ST_AsWKB", expressions=[exp.column("geometry")]), "wkb")
                            ).from_(source)
        target = exp.table_("staging", db=PG_SCHEMA, catalog="pg", quoted=True)
        con.execute(exp.Create(this=target, kind="TABLE", expression=select).sql("duckdb"))
    finally:
        con.close()
    crs = int(hub.target_crs.split(":")[1])
    with psycopg.connect(PG_DSN, autocommit=True) as pg:
        pg.execute(f"CREATE TABLE {PG_SCHEMA}.facilities AS SELECT s.*, "
                   f"ST_SetSRID(ST_GeomFromWKB(s.wkb), {crs})::geometry(Point, {crs}) AS geom "
                   f"FROM {PG_SCHEMA}.staging s")
        pg.execute(f"ALTER TABLE {PG_SCHEMA}.facilities DROP COLUMN wkb")
        pg.execute(f"DROP TABLE {PG_SCHEMA}.staging")
        pg.execute(f"ALTER TABLE {PG_SCHEMA}.facilities ADD PRIMARY KEY (facility_id)")
        pg.execute(f"CREATE INDEX ON {PG_SCHEMA}.facilities USING gist (geom)")
        pg.execute(f"ANALYZE {PG_SCHEMA}.facilities")
        return pg.execute(f"SELECT count(*) FROM {PG_SCHEMA}.facilities").fetchone()[0]


def drop_postgis() -> None:
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as pg:
        pg.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")


# --- the servers -------------------------------------------------------------------------------------

class Server:
    """A server in its own process group on a loopback port; ``base`` is its URL."""

    def __init__(self, name: str, cmd: list[str], env: dict, ready_path: str):
        self.name, self.port = name, _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([c.replace("{port}", str(self.port)) for c in cmd], env={**os.environ, **env},
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.base + ready_path, timeout=5).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{name} exited: {self.process.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"{name} did not answer in 300 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def twinhub_server(home: pathlib.Path, workers: int = 1) -> Server:
    return Server("twinhub", [sys.executable, "-m", "twinhub", "--home", str(home), "serve", "--port", "{port}",
                              "--workers", str(workers)], {}, "/conformance")


def tipg_server(workers: int = 1) -> Server:
    env = {"DATABASE_URL": PG_URL, "TIPG_DB_SCHEMAS": json.dumps([PG_SCHEMA])}
    return Server("tipg", [sys.executable, "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1", "--port", "{port}",
                           "--workers", str(workers), "--log-level", "warning", "--no-access-log"], env, "/conformance")


class Routes:
    """The same request on each server (TiPg's tile path is z/x/y, OGC's and twinhub's z/row/col)."""

    def __init__(self, twinhub: Server, tipg: Server, table: str):
        self.servers = {"twinhub": twinhub, "tipg": tipg}
        self.ids = {"twinhub": table, "tipg": f"{PG_SCHEMA}.facilities"}

    def items(self, name: str, box: tuple[float, ...]) -> str:
        return (f"{self.servers[name].base}/collections/{self.ids[name]}/items?limit=100&"
                f"bbox={','.join(f'{v:.6f}' for v in box)}")

    def tile(self, name: str, z: int, x: int, y: int) -> str:
        path = f"{z}/{y}/{x}" if name == "twinhub" else f"{z}/{x}/{y}"
        return f"{self.servers[name].base}/collections/{self.ids[name]}/tiles/WebMercatorQuad/{path}"


def fetch(url: str, timeout: float = 60) -> tuple[int, bytes, float]:
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body, status = response.read(), response.status
    except urllib.error.HTTPError as error:
        body, status = error.read(), error.code
    return status, body, (time.perf_counter() - start) * 1000


# --- the measurements --------------------------------------------------------------------------------

def boxes(extent: tuple[float, ...], n: int, seed: int = 7) -> list[tuple[float, ...]]:
    rng = random.Random(seed)
    minx, miny, maxx, maxy = extent
    out = []
    for _ in range(n):
        x, y = rng.uniform(minx, maxx - BOX_DEGREES), rng.uniform(miny, maxy - BOX_DEGREES)
        out.append((x, y, x + BOX_DEGREES, y + BOX_DEGREES))
    return out


def z14_tiles(extent: tuple[float, ...], n: int, seed: int = 11) -> list[tuple[int, int, int]]:
    """``n`` distinct z14 tiles (z, x, y) inside the extent."""
    import math

    def tile_of(lon: float, lat: float) -> tuple[int, int]:
        scale = 2**ZOOM
        x = int((lon + 180) / 360 * scale)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * scale)
        return x, y

    (x0, y1), (x1, y0) = tile_of(extent[0], extent[1]), tile_of(extent[2], extent[3])
    every = [(ZOOM, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    random.Random(seed).shuffle(every)
    return every[:n]


def items_bbox(routes: Routes, extent, n: int) -> dict:
    """Alternating requests, the same boxes; both must match the same number of features."""
    times: dict[str, list[float]] = {"twinhub": [], "tipg": []}
    mismatches = []
    for box in boxes(extent, n):
        matched = {}
        for name in ("twinhub", "tipg"):
            status, body, ms = fetch(routes.items(name, box))
            if status != 200:
                raise RuntimeError(f"{name} answered {status} to {routes.items(name, box)}: {body[:300]!r}")
            doc = json.loads(body)
            matched[name] = (doc.get("numberMatched"), doc.get("numberReturned"))
            times[name].append(ms)
        if matched["twinhub"] != matched["tipg"]:
            mismatches.append({"bbox": box, **matched})
    return {name: _summary(ms) for name, ms in times.items()} | {"requests": n, "count_mismatches": mismatches}


def tiles(routes: Routes, extent, n: int) -> dict:
    """Cold: each tile's first request (twinhub has not made it yet); warm: the same tiles again."""
    chosen = z14_tiles(extent, n)
    out: dict = {}
    for phase in ("cold", "warm"):
        times: dict[str, list[float]] = {"twinhub": [], "tipg": []}
        for z, x, y in chosen:
            for name in ("twinhub", "tipg"):
                status, body, ms = fetch(routes.tile(name, z, x, y))
                if status not in (200, 204):
                    raise RuntimeError(f"{name} answered {status} to {routes.tile(name, z, x, y)}: {body[:300]!r}")
                times[name].append(ms)
        out[phase] = {name: _summary(ms) for name, ms in times.items()}
    out["tiles"] = len(chosen)
    return out


def load(routes: Routes, name: str, extent, clients: int, seconds: float) -> dict:
    """``clients`` threads, each with its own requests (items with a bbox, or a z14 tile), for ``seconds``."""
    stop = time.monotonic() + seconds
    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    every_box, every_tile = boxes(extent, 500, seed=23), z14_tiles(extent, 500, seed=29)

    def client(i: int) -> None:
        rng = random.Random(i)
        while time.monotonic() < stop:
            url = routes.items(name, rng.choice(every_box)) if rng.random() < 0.5 else \
                routes.tile(name, *rng.choice(every_tile))
            try:
                status, body, ms = fetch(url)
            except OSError as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            with lock:
                times.append(ms)
                if status not in (200, 204):
                    errors.append(f"{status} {url}: {body[:120]!r}")

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return {**_summary(times), "clients": clients, "seconds": seconds, "errors": len(errors),
            "first_errors": errors[:5], "requests_per_s": round(len(times) / seconds, 1)}


def first_paint(repeat: int) -> dict:
    """The sample city of `twinhub demo` served by twinhub; ms from navigation to MapLibre 'idle' with every
    layer (the page marks it: body[data-idle]), and the browser's own first paint."""
    from playwright.sync_api import sync_playwright

    from twinhub.cli.demo import prepare_demo
    from twinhub.hub.home import Hub
    from twinhub.pipelines.runner import run_datasets

    with tempfile.TemporaryDirectory() as tmp:
        hub = Hub.open(pathlib.Path(tmp) / "home")
        prepare_demo(hub)
        if not run_datasets(hub).ok:
            raise RuntimeError("the sample city did not publish")
        token = _every_layer_token(hub)
        server = twinhub_server(hub.home)
        try:
            request = urllib.request.Request(server.base + "/collections", headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=60) as response:
                layers = len(json.load(response)["collections"])
            runs = []
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for _ in range(repeat + 1):  # the first run warms the server's caches
                    page = browser.new_page(viewport={"width": 1280, "height": 800})
                    page.add_init_script(f"sessionStorage.setItem('twinhub-token', {json.dumps(token)})")  # as signed in
                    page.goto(server.base + "/", wait_until="load")
                    page.wait_for_selector("body[data-idle]", timeout=120_000, state="attached")
                    runs.append(page.evaluate(
                        "({idle: Number(document.body.dataset.idle) - performance.timeOrigin, "
                        "paint: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || null, "
                        "layers: document.querySelectorAll('#layers .layer').length})"))
                    page.close()
                browser.close()
        finally:
            server.stop()
    warm = runs[1:]
    return {"first_run_idle_ms": round(runs[0]["idle"], 1), "idle_ms": round(statistics.median(r["idle"] for r in warm), 1),
            "first_contentful_paint_ms": round(statistics.median(r["paint"] or 0 for r in warm), 1),
            "layers_listed": warm[-1]["layers"], "collections": layers, "runs": len(warm)}


def _every_layer_token(hub) -> str:
    """A token of a bench reader granted every table of the catalog: the map then shows every layer."""
    import datetime as dt

    from twinhub.catalog import tokens
    from twinhub.catalog.grants import Consumer, Grant, catalog_tables, save_grant

    today = dt.date.today()
    until = today + dt.timedelta(days=1)
    for table in catalog_tables(hub.lake):
        if not table.startswith("catalog."):
            save_grant(hub.lake, Grant("user:bench", table, "restricted", until, "bench", today.isoformat()))
    text, _ = tokens.issue_token(hub.lake, Consumer("user:bench"), until, today, note="bench.serve map")
    return text


def warm_up(routes: Routes, extent, seconds: float) -> None:
    """Both servers answer a few of each request; twinhub builds its in-memory copy meanwhile."""
    stop = time.monotonic() + seconds
    for box, tile in zip(boxes(extent, 10_000, seed=3), z14_tiles(extent, 10_000, seed=5)):
        for name in ("twinhub", "tipg"):
            fetch(routes.items(name, box))
            fetch(routes.tile(name, *tile))
        if time.monotonic() > stop:
            return


# --- the run and its report --------------------------------------------------------------------------

def run(rows: int, requests: int, tiles_n: int, clients: int, load_s: float, warmup_s: float, paint_repeat: int,
        out: pathlib.Path, workers: int = 1) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"machine": {"cpus": os.cpu_count(), "load_before": _load(), "python": platform.python_version()},
                    "tipg": TIPG_VERSION, "rows_generated": rows, "workers": workers}
    with tempfile.TemporaryDirectory() as tmp:
        print(f"bench.serve: publishing {rows:,} rows…", file=sys.stderr, flush=True)
        hub, table, published = publish_layer(pathlib.Path(tmp), rows)
        result.update(table=table, rows=published)
        print("bench.serve: loading PostGIS…", file=sys.stderr, flush=True)
        try:
            result["postgis_rows"] = load_postgis(hub, table)
            twinhub, tipg = twinhub_server(hub.home, workers), None
            try:
                tipg = tipg_server(workers)
                routes = Routes(twinhub, tipg, table)
                extent = tuple(json.loads(fetch(f"{twinhub.base}/collections/{table}")[1])
                               ["extent"]["spatial"]["bbox"][0])
                result["extent"] = extent
                print("bench.serve: warm-up, items, tiles, load…", file=sys.stderr, flush=True)
                warm_up(routes, extent, warmup_s)
                result["items_bbox"] = items_bbox(routes, extent, requests)
                result["tiles_z14"] = tiles(routes, extent, tiles_n)
                result["load"] = {name: load(routes, name, extent, clients, load_s) for name in ("twinhub", "tipg")}
            finally:
                twinhub.stop()
                if tipg is not None:
                    tipg.stop()
        finally:
            drop_postgis()
    if paint_repeat:
        print("bench.serve: the map's first paint…", file=sys.stderr, flush=True)
        result["first_paint"] = first_paint(paint_repeat)
    result["machine"]["load_after"] = _load()
    result["targets"] = targets(result)
    (out / "serve.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "serve.md").write_text(markdown(result), encoding="utf-8")
    return result


def figures(result: dict) -> dict[str, tuple[float | None, float | None]]:
    """figure -> (twinhub, TiPg)."""
    items, tiles_, load_ = result.get("items_bbox", {}), result.get("tiles_z14", {}), result.get("load", {})

    def pair(doc: dict, key: str = "p95_ms"):
        return doc.get("twinhub", {}).get(key), doc.get("tipg", {}).get(key)

    paint = result.get("first_paint", {})
    return {"items_bbox_p95_ms": pair(items), "tile_warm_p95_ms": pair(tiles_.get("warm", {})),
            "tile_cold_p95_ms": pair(tiles_.get("cold", {})), "load_p95_ms": pair(load_),
            "first_paint_ms": (paint.get("idle_ms"), None)}


def targets(result: dict) -> list[dict]:
    out = []
    for key, (twinhub, tipg) in figures(result).items():
        target, what = TARGETS[key]
        met = twinhub is not None and twinhub < target
        if key == "load_p95_ms":
            met = met and result.get("load", {}).get("twinhub", {}).get("errors", 1) == 0
        out.append({"figure": key, "what": what, "target_ms": target, "twinhub_ms": twinhub, "tipg_ms": tipg,
                    "ratio": round(twinhub / tipg, 2) if twinhub and tipg else None, "met": met})
    return out


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [f"# twinhub serve against TiPg {result['tipg']} (PostGIS), the same layer, the same run", "",
             f"{result.get('rows', 0):,} published points (`{result.get('table')}`; PostGIS: "
             f"{result.get('postgis_rows', 0):,}), {result.get('workers', 1)} uvicorn worker(s) each, loopback. {m['cpus']} CPUs, "
             f"load average {m['load_before']} before, {m['load_after']} after.", "",
             "| figure | target | twinhub | TiPg | twinhub / TiPg | met |", "|---|---|---|---|---|---|"]
    for t in result["targets"]:
        ratio = f"{t['ratio']}" if t["ratio"] is not None else "—"
        tipg = f"{t['tipg_ms']} ms" if t["tipg_ms"] is not None else "— (no such page)"
        lines.append(f"| {t['what']} | < {t['target_ms']} ms | {t['twinhub_ms']} ms | {tipg} | {ratio} | "
                     f"{'yes' if t['met'] else 'NO'} |")
    items = result.get("items_bbox", {})
    load_ = result.get("load", {})
    lines += ["", f"Items with a bbox: {items.get('requests')} requests per server, p50 "
                  f"{items.get('twinhub', {}).get('p50_ms')} ms (TiPg {items.get('tipg', {}).get('p50_ms')} ms); "
                  f"boxes where the counts differ: {len(items.get('count_mismatches', []))}."]
    for name in ("twinhub", "tipg"):
        doc = load_.get(name)
        if doc:
            lines.append(f"Load on {name}: {doc['clients']} clients for {doc['seconds']} s, {doc['n']} requests "
                         f"({doc['requests_per_s']}/s), errors {doc['errors']}, p50 {doc['p50_ms']} ms, "
                         f"p95 {doc['p95_ms']} ms.")
    paint = result.get("first_paint")
    if paint:
        lines.append(f"Map: {paint['collections']} collections; MapLibre idle after {paint['idle_ms']} ms (median of "
                     f"{paint['runs']}; the very first load {paint['first_run_idle_ms']} ms), first contentful paint "
                     f"{paint['first_contentful_paint_ms']} ms.")
    return "\n".join(lines) + "\n"


def _rows(text: str) -> int:
    return int(float(text))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=_rows, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200, help="items requests per server")
    parser.add_argument("--tiles", type=int, default=50, help="distinct z14 tiles (cold, then warm)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--load-s", type=float, default=60.0)
    parser.add_argument("--warmup-s", type=float, default=15.0)
    parser.add_argument("--paint", type=int, default=5, help="map loads timed (0 skips the map)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of each server (the same for both)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("bench-results"))
    args = parser.parse_args(argv)
    result = run(args.rows, args.requests, args.tiles, args.clients, args.load_s, args.warmup_s, args.paint, args.out,
                 args.workers)
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
