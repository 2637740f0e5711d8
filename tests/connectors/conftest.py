"""A real HTTP server on 127.0.0.1 serving real data the ways departments' servers do (and fail).

Data: the Bath & NE Somerset grit bins (GeoJSON, CRS84) and the Adur public toilets
(CSV, British National Grid), from shared/data/realworld (attribution in their SOURCE.txt).

Routes (all GET):
  /files/grit.geojson, /files/toilets.csv         whole files, with Content-Length
  /ogc/collections/grit/items?limit=&offset=&bbox=  OGC API - Features pages with next links
  /arcgis/<grit|toilets>/FeatureServer/0/query?... ArcGIS query: count, GeoJSON or Esri JSON pages
  /flaky/<n>/<key>/grit.geojson                   503 for the first n requests of <key>, then the file
  /cut/<n>/<key>/grit.geojson                     Content-Length says all, half is sent, n times
  /cut-json/<n>/<key>/items                       JSON without a length, closed half-way, n times
  /status/<code>                                  that status
  /slow                                           answers after 3 s
  /redirect?to=URL                                302 to URL
  /auth/toilets.csv                               401 unless "Authorization: Bearer s3cret-t0ken"
  /arcgis-error/FeatureServer/0/query             ArcGIS's error-in-a-200 (invalid token)
"""

from __future__ import annotations

import collections
import http.server
import json
import pathlib
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass

import pytest

REALWORLD = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data" / "realworld"
GRIT = REALWORLD / "uk_bath_banes_street_assets" / "banes_grit_bins.geojson"
TOILETS = REALWORLD / "uk_adur_public_toilets" / "adur-public-toilets.csv"
TOKEN = "s3cret-t0ken"
ARCGIS_MAX_RECORDS = 40


def grit_features() -> list[dict]:
    return json.loads(GRIT.read_text(encoding="utf-8"))["features"]


def toilet_features() -> list[dict]:
    """The toilets as Esri JSON features in the layer's spatial reference (EPSG:27700)."""
    import csv

    with TOILETS.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [
        {"attributes": {"OBJECTID": i, **{k: v for k, v in r.items() if k not in ("GeoX", "GeoY")}},
         "geometry": {"x": float(r["GeoX"]), "y": float(r["GeoY"])}}
        for i, r in enumerate(rows, start=1)
    ]


def grit_esri_features() -> list[dict]:
    return [{"attributes": f["properties"], "geometry": dict(zip("xy", f["geometry"]["coordinates"]))} for f in grit_features()]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    counts: collections.Counter = collections.Counter()
    lock = threading.Lock()

    def log_message(self, *args) -> None:  # quiet
        pass

    def _count(self, key: str) -> int:
        with self.lock:
            self.counts[key] += 1
            return self.counts[key]

    def _send(self, status: int, body: bytes, content_type: str = "application/json", length: int | None = None,
              headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, data: object, status: int = 200) -> None:
        self._send(status, json.dumps(data).encode())

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        parts = url.path.strip("/").split("/")
        route = getattr(self, "route_" + parts[0].replace("-", "_"), None)
        if route is None:
            return self._send(404, b"not found", "text/plain")
        route(parts[1:], q)

    def route_files(self, parts: list[str], q: dict) -> None:
        path = {"grit.geojson": GRIT, "toilets.csv": TOILETS}.get(parts[0])
        if path is None:
            return self._send(404, b"no such file", "text/plain")
        self._send(200, path.read_bytes(), "text/csv" if path.suffix == ".csv" else "application/geo+json")

    def route_ogc(self, parts: list[str], q: dict) -> None:
        features = grit_features()
        if "bbox" in q:
            x0, y0, x1, y1 = map(float, q["bbox"].split(","))
            features = [f for f in features if x0 <= f["geometry"]["coordinates"][0] <= x1 and y0 <= f["geometry"]["coordinates"][1] <= y1]
        limit, offset = int(q.get("limit", 10)), int(q.get("offset", 0))
        page = features[offset : offset + limit]
        links = [{"rel": "self", "href": self.path, "type": "application/geo+json"}]
        if offset + limit < len(features):
            nxt = dict(q, offset=offset + limit)
            links.append({"rel": "next", "type": "text/html", "href": "/ogc/html-page"})  # must not be taken
            links.append({"rel": "next", "type": "application/geo+json", "href": "items?" + urllib.parse.urlencode(nxt)})
        self._json({"type": "FeatureCollection", "numberMatched": len(features), "numberReturned": len(page),
                    "timeStamp": time.strftime("%Y-%m-%dT%H:%M:%S") + f".{time.time_ns()}", "links": links, "features": page})

    def route_arcgis(self, parts: list[str], q: dict) -> None:
        """/arcgis/<grit|toilets>/FeatureServer/0/query: grit bins in WGS 84, toilets in EPSG:27700."""
        layer = parts[0]
        features = toilet_features() if layer == "toilets" else grit_esri_features()
        wkid = 27700 if layer == "toilets" else 4326
        if q.get("returnCountOnly") == "true":
            return self._json({"count": len(features)})
        if q.get("f") == "geojson" and layer == "toilets":
            return self._json({"error": {"code": 400, "message": "GeoJSON needs the layer in WGS 84", "details": []}})
        count = min(int(q.get("resultRecordCount", ARCGIS_MAX_RECORDS)), ARCGIS_MAX_RECORDS)
        offset = int(q.get("resultOffset", 0))
        more = offset + count < len(features)
        if q.get("f") == "json":
            body = {"objectIdFieldName": "OBJECTID", "spatialReference": {"wkid": wkid, "latestWkid": wkid},
                    "features": features[offset : offset + count]}
            if more:
                body["exceededTransferLimit"] = True
        else:
            body = {"type": "FeatureCollection", "features": grit_features()[offset : offset + count]}
            if more:
                body["properties"] = {"exceededTransferLimit": True}
        self._json(body)

    def route_arcgis_error(self, parts: list[str], q: dict) -> None:
        self._json({"error": {"code": 498, "message": "Invalid token.", "details": []}})

    def route_flaky(self, parts: list[str], q: dict) -> None:
        failures, key = int(parts[0]), parts[1]
        if self._count("flaky" + key) <= failures:
            return self._send(503, b"busy", "text/plain", headers={"Retry-After": "0"})
        self.route_files(["grit.geojson"], q)

    def route_cut(self, parts: list[str], q: dict) -> None:
        failures, key = int(parts[0]), parts[1]
        body = GRIT.read_bytes()
        if self._count("cut" + key) <= failures:
            self.send_response(200)
            self.send_header("Content-Type", "application/geo+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(200, body, "application/geo+json")

    def route_cut_json(self, parts: list[str], q: dict) -> None:
        failures, key = int(parts[0]), parts[1]
        body = json.dumps({"type": "FeatureCollection", "features": grit_features()[:20], "links": []}).encode()
        cut = self._count("cutjson" + key) <= failures
        self.send_response(200)
        self.send_header("Content-Type", "application/geo+json")
        self.send_header("Connection", "close")  # no length: the body ends when the connection does
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if cut else body)
        self.close_connection = True

    def route_status(self, parts: list[str], q: dict) -> None:
        self._send(int(parts[0]), b"status", "text/plain")

    def route_slow(self, parts: list[str], q: dict) -> None:
        time.sleep(3)
        self.route_files(["grit.geojson"], q)

    def route_redirect(self, parts: list[str], q: dict) -> None:
        self.send_response(302)
        self.send_header("Location", q["to"])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def route_auth(self, parts: list[str], q: dict) -> None:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._send(401, b"unauthorized", "text/plain")
        self.route_files(["toilets.csv"], q)


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # the cut-off routes reset connections on purpose
        pass


@dataclass(frozen=True)
class Served:
    url: str  # the server's base URL, e.g. http://127.0.0.1:41234
    grit: list[dict]  # the grit bins' features as the file has them
    toilets: int  # the number of toilets
    grit_path: pathlib.Path = GRIT
    token: str = TOKEN

    def count(self, name: str) -> int:
        return len(self.grit) if name == "grit" else self.toilets


@pytest.fixture(scope="session")
def server() -> Served:
    """The test server, running for the session."""
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield Served(f"http://127.0.0.1:{httpd.server_address[1]}", grit_features(), len(toilet_features()))
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every socket connection the test opens, recorded; one to a non-loopback address fails the test
    before it is made (a safety net: the policy must refuse those before connecting)."""
    opened: list = []
    real_connect = socket.socket.connect

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(address, tuple) and not (host.startswith("127.") or host == "::1"):
            raise AssertionError(f"a connection to {address} was attempted")
        opened.append(address)
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return opened


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, pathlib.Path]:
    """The same routes over HTTPS, with a self-signed certificate for 127.0.0.1: (base URL, certificate)."""
    import ssl
    import subprocess

    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}", cert
    httpd.shutdown()
    httpd.server_close()
