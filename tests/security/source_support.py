"""What the source attack tests share: a hub with a given twinhub.yaml, manifests, a loopback HTTP server
that records every request it gets (an attack "held" when it got none)."""

from __future__ import annotations

import http.server
import pathlib
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml

from twinhub.hub.home import Hub

FIELDS = {"facility_id": "shelter_id", "name": "name", "category": "type"}
SHELTERS = pathlib.Path(__file__).resolve().parents[2] / "twinhub" / "sample" / "city" / "emergency" / "shelters.geojson"


def hub_with(home: pathlib.Path, **config: object) -> Hub:
    """A hub in ``home`` whose twinhub.yaml holds ``config`` (landing:, secrets:, http:, limits: ...)."""
    Hub.open(home)
    (home / "twinhub.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return Hub.open(home)


def write_manifest(folder: pathlib.Path, dataset: str, source: dict, department: str = "emergency",
                   classification: str = "internal", fields: dict | None = None) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dataset}.yaml"
    path.write_text(yaml.safe_dump({
        "department": department, "dataset": dataset, "title": "An attack", "standard": "facility",
        "source": source, "fields": fields or FIELDS, "classification": classification,
    }, allow_unicode=True), encoding="utf-8")
    return path


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str | None] = field(default_factory=dict)


class LoopbackServer:
    """An HTTP server on 127.0.0.1 answering ``routes`` (path -> Reply or callable) and recording requests."""

    def __init__(self, routes: dict[str, Reply | Callable[[], Reply]] | None = None):
        self.routes = routes or {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.requests.append((self.path, dict(self.headers)))
                route = server.routes.get(self.path.split("?", 1)[0])
                reply = route() if callable(route) else route or Reply(404, b"not found")
                self.send_response(reply.status)
                headers = {"Content-Length": str(len(reply.body)), **reply.headers}
                for name, value in headers.items():
                    if value is not None:  # None: the header is left out (no length: the body ends at close)
                        self.send_header(name, value)
                self.close_connection = headers["Content-Length"] is None
                self.end_headers()
                try:
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):  # the hub stopped reading: what a cap does
                    pass

            do_HEAD = do_GET  # noqa: N815 - GDAL's /vsicurl/ starts with a HEAD

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FakePostgres:
    """A PostgreSQL server on 127.0.0.1 that asks for a cleartext password and records what it is sent.

    It speaks just enough of the protocol (SSL/GSS requests refused, startup message, ``R`` 3,
    the ``p`` answer, then an error): ``passwords`` holds every password a client sent.
    """

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.startups: list[bytes] = []
        self.passwords: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FakePostgres:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    self._session(conn)
                except OSError:
                    continue

    @staticmethod
    def _exactly(conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            part = conn.recv(size - len(data))
            if not part:
                raise OSError("closed")
            data += part
        return data

    def _session(self, conn: socket.socket) -> None:
        while True:  # SSLRequest / GSSENCRequest first, then the startup message
            length = struct.unpack("!i", self._exactly(conn, 4))[0]
            body = self._exactly(conn, length - 4)
            if struct.unpack("!i", body[:4])[0] in (80877103, 80877104):
                conn.sendall(b"N")
                continue
            self.startups.append(body)
            break
        conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        kind = conn.recv(1)
        if kind != b"p":
            return  # the client had no password to send and hung up
        length = struct.unpack("!i", self._exactly(conn, 4))[0]
        self.passwords.append(self._exactly(conn, length - 4).rstrip(b"\0").decode())
        fields = b"SFATAL\0C28P01\0Mpassword authentication failed\0\0"
        conn.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)
