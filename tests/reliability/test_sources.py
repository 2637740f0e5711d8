"""Sources failing half-way through a run: a real local HTTP server that drops connections, a real
PostgreSQL reader whose backend is terminated mid-read. The run retries to completion or fails
cleanly; the catalog never holds a partial version."""

from __future__ import annotations

import http.server
import json
import os
import pathlib
import socket
import threading
import time
import urllib.parse
import uuid

import psycopg
import pytest
import yaml

from twinhub.connectors import SourceError
from twinhub.hub import faults
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.ledger import ledger
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup

from .conftest import BAD_EVERY, expected, stage_folders, write_source

DATASET = "emergency.remote_points"


class Source:
    """What the server serves and how it misbehaves: ``cut`` responses (half a body, then the socket
    closes) once ``good`` requests have been answered, ``cut_times`` times (None: for ever)."""

    def __init__(self, rows: int, version: int = 1):
        self.rows, self.version, self.good, self.cut_times, self.requests, self.cuts = rows, version, None, None, 0, 0

    def feature(self, i: int) -> dict:
        capacity = -5 if i % BAD_EVERY == 0 else 100 + i
        return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.30 + i * 0.001, 31.10]},
                "properties": {"id": f"R-{i:05d}", "name": f"remote point {i} v{self.version}", "type": "shelter",
                               "capacity": capacity}}

    def cut_now(self) -> bool:
        self.requests += 1
        due = self.good is not None and self.requests > self.good
        if due and (self.cut_times is None or self.cuts < self.cut_times):
            self.cuts += 1
            return True
        return False


def _handler(source: Source, csv_path: pathlib.Path):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):  # noqa: N802
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/points.csv":
                body, kind = csv_path.read_bytes(), "text/csv"
            else:
                query = dict(urllib.parse.parse_qsl(url.query))
                limit, offset = int(query.get("limit", 10)), int(query.get("offset", 0))
                end = min(offset + limit, source.rows)
                page = {"type": "FeatureCollection", "numberMatched": source.rows,
                        "features": [source.feature(i) for i in range(offset + 1, end + 1)], "links": []}
                if end < source.rows:
                    page["links"].append({"rel": "next", "type": "application/geo+json",
                                          "href": f"http://127.0.0.1:{self.server.server_port}/items?limit={limit}&offset={end}"})
                body, kind = json.dumps(page).encode(), "application/geo+json"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if source.cut_now():  # half the body, then the connection drops
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def server(tmp_path):
    source = Source(rows=60)
    csv_path = write_source(tmp_path / "served.csv", 60)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(source, csv_path))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield source, csv_path, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def _hub(tmp_path: pathlib.Path, source_spec: dict) -> Hub:
    hub = Hub.open(tmp_path / "home")
    config = hub.home / "twinhub.yaml"
    text = config.read_text(encoding="utf-8").replace("\nhttp:\n", "\nhttp: {allow_hosts: [127.0.0.1]}\n")
    config.write_text(text + "\nchunk_rows: 10\n", encoding="utf-8")
    hub = Hub.open(hub.home)
    manifest = {"department": "emergency", "dataset": "remote_points", "title": "Remote points",
                "description": "Served by a test server.", "standard": "facility", "source": source_spec,
                "fields": {"facility_id": "id", "name": "name", "category": "type", "capacity": "capacity"},
                "classification": "public"}
    path = tmp_path / "remote_points.yaml"
    path.write_text(yaml.safe_dump(manifest), encoding="utf-8")
    register(hub, path)
    return hub


def _served(hub: Hub) -> tuple[int, int, int]:
    con = hub.lake.connect(read_only=True)
    try:
        return con.execute("SELECT count(*), count(DISTINCT facility_id), count(*) FILTER (WHERE name LIKE '%v2') "
                           "FROM emergency.remote_points").fetchone()
    finally:
        con.close()


def test_a_paged_source_dropping_mid_way_publishes_nothing_partial(tmp_path, server):
    source, _, base = server
    hub = _hub(tmp_path, {"format": "ogcapi", "url": f"{base}/items", "limit": 10, "retries": 1, "backoff": 0})
    ingest(hub, lookup(hub, DATASET), run_id="first")
    old = _served(hub)
    assert old == (expected(60)[0], expected(60)[0], 0)

    source.version, source.requests = 2, 0
    source.good = 2  # pages 1 and 2 arrive, then every page is cut (the run spools all 6 pages before staging)
    with pytest.raises(SourceError, match=r"http://127\.0\.0\.1:\d+/items"):
        ingest(hub, lookup(hub, DATASET), run_id="second")
    assert source.cuts >= 2, "the cut page was retried before giving up"
    assert _served(hub) == old  # the first version, whole
    assert stage_folders(hub) == []
    second = next(r for r in ledger(hub.lake, DATASET) if r["run_id"] == "second")
    assert second["status"] == "failed" and second["version"] is None


def test_an_http_file_cut_off_twice_is_retried_and_published_whole(tmp_path, server):
    source, csv_path, base = server
    spec = {"format": "http", "url": f"{base}/points.csv", "data_format": "csv", "x": "lon", "y": "lat",
            "crs": "EPSG:4490", "retries": 2, "backoff": 0}
    hub = _hub(tmp_path, spec)
    source.good, source.cut_times = 0, 2
    result = ingest(hub, lookup(hub, DATASET), run_id="first")
    assert source.cuts == 2
    assert (result.rows_read, result.rows_published) == (60, expected(60)[0])
    assert _served(hub)[:2] == (expected(60)[0], expected(60)[0])


@pytest.fixture
def pg_table():
    name = f"rel_points_{uuid.uuid4().hex[:8]}"
    conn = psycopg.connect(host="127.0.0.1", dbname="test", user="postgres", autocommit=True)
    conn.execute(f"CREATE TABLE {name} (id text, name text, type text, capacity int, lon float8, lat float8)")
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {name} VALUES (%s, %s, %s, %s, %s, %s)",
                        [(f"P-{i:05d}", f"pg point {i} v1", "shelter", 100 + i, 121.30 + i * 0.0001, 31.10)
                         for i in range(1, 301)])
    if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'twinhub_reader'").fetchone():
        conn.execute("CREATE ROLE twinhub_reader LOGIN")  # the hub refuses superusers as source accounts
    conn.execute(f"GRANT SELECT ON {name} TO twinhub_reader")
    yield conn, name
    conn.execute(f"DROP TABLE IF EXISTS {name}")
    conn.close()


def test_a_database_reader_cut_off_mid_read_fails_cleanly(tmp_path, pg_table, monkeypatch):
    conn, table = pg_table
    hub = _hub(tmp_path, {"format": "postgres", "host": "127.0.0.1", "port": 5432, "database": "test",
                          "user": "twinhub_reader", "table": table, "x": "lon", "y": "lat", "crs": "EPSG:4490"})
    ingest(hub, lookup(hub, DATASET), run_id="first")
    assert _served(hub)[:2] == (300, 300)
    conn.execute(f"UPDATE {table} SET name = replace(name, 'v1', 'v2')")

    marker = tmp_path / "paused"
    monkeypatch.setenv(faults.PAUSE_AT, "stage.mid_read")
    monkeypatch.setenv(faults.PAUSE_MARKER, str(marker))
    monkeypatch.setenv(faults.PAUSE_SECONDS, "3")
    failure: list[BaseException] = []
    run = threading.Thread(target=lambda: _catch(failure, lambda: ingest(hub, lookup(hub, DATASET), run_id="second")))
    run.start()
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the run never reached the middle of its read"
    killed = conn.execute(  # the reader's backend (only this process's), as a server restart would end it
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'twinhub' "
        "AND client_port = ANY(%s) AND pid <> pg_backend_pid()", [_our_ports(5432)]).fetchall()
    run.join(timeout=120)
    assert killed and all(k[0] for k in killed), "a reader backend was found and terminated"
    assert len(failure) == 1 and isinstance(failure[0], SourceError), failure
    assert "the query failed" in str(failure[0]) and "Traceback" not in str(failure[0])
    assert _served(hub) == (300, 300, 0)  # the first version, whole
    assert stage_folders(hub) == []
    assert next(r for r in ledger(hub.lake, DATASET) if r["run_id"] == "second")["status"] == "failed"


def _catch(errors: list, action) -> None:
    try:
        action()
    except BaseException as exc:  # noqa: BLE001 - handed to the test thread
        errors.append(exc)


def _our_ports(remote: int) -> list[int]:
    """Local ports of this process's TCP connections to port ``remote`` (from /proc)."""
    inodes = set()
    for fd in pathlib.Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in pathlib.Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == remote and fields[9] in inodes:
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
