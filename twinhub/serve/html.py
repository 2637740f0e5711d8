"""HTML pages of the OGC API – Features resources (Part 1's HTML conformance class), rendered on the server.

A request for HTML (``?f=html``, or an ``Accept`` header preferring ``text/html``) to the landing page,
conformance, the collections, a collection, its queryables, items or an item is answered by the JSON
route itself, asked for JSON on the same request (same reader, token, grants, audit), and its answer
rendered with the templates in ``templates/`` (Jinja2, every value escaped). An error keeps its status
and says what its JSON body says, nothing more. The pages load nothing but themselves (no script, no
font, no stylesheet from elsewhere: the service's Content-Security-Policy holds). The landing page in a
browser stays the city map; ``/?f=html`` is its page of links.

    >>> prefers_html("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
    True
    >>> prefers_html("application/geo+json, application/json")
    False
"""

from __future__ import annotations

import json
import logging
import pathlib
import re
import urllib.parse
from dataclasses import dataclass

import anyio.to_thread
import jinja2

CONFORMANCE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html"
HTML = "text/html"
JSON_TYPES = ("application/json", "application/geo+json", "application/schema+json")
CRS84 = "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
PAGES = {  # the resources with an HTML page: path pattern -> template
    "landing": re.compile(r"/"),
    "api": re.compile(r"/api(?:\.html)?"),  # /api.html: the landing page's service-doc
    "conformance": re.compile(r"/conformance"),
    "collections": re.compile(r"/collections"),
    "collection": re.compile(r"/collections/(?P<cid>[^/]+)"),
    "queryables": re.compile(r"/collections/(?P<cid>[^/]+)/queryables"),
    "items": re.compile(r"/collections/(?P<cid>[^/]+)/items"),
    "item": re.compile(r"/collections/(?P<cid>[^/]+)/items/(?P<fid>[^/]+)"),
}
KEPT_HEADERS = (b"www-authenticate", b"retry-after")  # what an HTML error keeps of the JSON answer's headers
DROPPED_REQUEST_HEADERS = (b"accept", b"if-none-match", b"if-modified-since")
log = logging.getLogger("twinhub.serve")


def install(app, site: str, dagster_url: str | None) -> None:
    """Answer HTML requests of ``app``'s OGC API resources with pages (call before the headers middleware,
    so that its security headers apply to the pages too)."""
    app.add_middleware(HtmlPages, site=site, dagster_url=dagster_url)


def alternate(href: str) -> dict:
    """The ``alternate`` link to ``href``'s HTML page, for a JSON answer's ``links``."""
    return {"rel": "alternate", "type": HTML, "title": "this document as HTML", "href": with_query(href, f="html")}


def with_query(href: str, **params: str) -> str:
    """``href`` with ``params`` set in its query string (the others kept)."""
    parts = urllib.parse.urlsplit(href)
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    query.update(params)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def prefers_html(accept: str) -> bool:
    """Whether an ``Accept`` header ranks ``text/html`` above JSON (``*/*`` alone is JSON)."""
    ranks: dict[str, float] = {}
    for part in accept.split(","):
        kind, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        ranks[kind.lower()] = max(q, ranks.get(kind.lower(), 0.0))
    html = ranks.get(HTML, 0.0)
    json_rank = max([ranks.get(t, 0.0) for t in JSON_TYPES] + [ranks.get("*/*", 0.0)])
    return html > 0 and html > json_rank


def page_of(path: str) -> tuple[str, dict[str, str]] | None:
    """The page ``path`` has (its template and path parameters), or None."""
    for name in ("item", "items", "queryables", "collection", "collections", "conformance", "api", "landing"):
        match = PAGES[name].fullmatch(path)
        if match:
            return name, match.groupdict()
    return None


def wants_html(name: str, path: str, query: dict[str, str], accept: str) -> bool:
    """``?f=html``; else, but for the landing page (a browser there gets the map), an Accept preferring HTML."""
    if "f" in query:
        return query["f"] == "html"
    return name != "landing" and prefers_html(accept) or path == "/api.html"


class HtmlPages:
    """ASGI middleware: the HTML answer of the JSON route (see the module's docstring)."""

    def __init__(self, app, site: str, dagster_url: str | None = None):
        self.app, self.site = app, site
        self.dagster_url = dagster_url.rstrip("/") if dagster_url and dagster_url.startswith(("http://", "https://")) \
            else None

    async def __call__(self, scope, receive, send):
        found = page_of(scope.get("path", "")) if scope["type"] == "http" else None
        if found is None:
            return await self.app(scope, receive, send)
        query = dict(urllib.parse.parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if not wants_html(found[0], scope["path"], query, headers.get(b"accept", b"").decode("latin-1")):
            return await self.app(scope, receive, _vary(send))
        inner = dict(scope, headers=[(k, v) for k, v in scope["headers"] if k.lower() not in DROPPED_REQUEST_HEADERS]
                     + [(b"accept", b"application/json")])
        if found[0] == "api":
            inner.update(path="/api", raw_path=b"/api")
        answer = _Answer()
        try:
            await self.app(inner, receive, answer.send)
        except Exception:  # answered as the JSON route would (errors.handle): logged, a 500 that says nothing
            log.exception("unexpected error on %s", scope.get("path"))
            answer = _Answer(500, [], json.dumps({"code": "ServerError", "description": "the server failed to "
                                                  "answer; the steward can find why in its log"}).encode())
        # parsing and rendering a page of up to 10,000 features: off the event loop, as the routes run
        body, status, kept = await anyio.to_thread.run_sync(self.render, found, query, answer,
                                                            bool(headers.get(b"authorization")))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"vary", b"Accept"),
                                (b"cache-control", b"private, no-cache"),
                                (b"content-length", str(len(body)).encode()), *kept]})
        await send({"type": "http.response.body", "body": body})

    def render(self, found, query: dict[str, str], answer: _Answer, authenticated: bool) -> tuple[bytes, int, list]:
        name, params = found
        kept = [(k, v) for k, v in answer.headers if k.lower() in KEPT_HEADERS]
        try:
            doc = json.loads(answer.body or b"{}")
        except ValueError:
            doc = {}
        if answer.status != 200:
            return _error(self.site, answer.status, doc), answer.status, kept
        context = Context(self.site, self.dagster_url, params.get("cid", ""), params.get("fid", ""), query,
                          authenticated, answer.header(b"content-crs") in (None, CRS84))
        return RENDERERS[name](doc, context).encode("utf-8"), 200, kept


class _Answer:
    """The inner JSON answer, kept whole to be rendered."""

    def __init__(self, status: int = 0, headers: list | None = None, body: bytes = b""):
        self.status, self.headers, self._chunks = status, headers or [], [body] if body else []

    async def send(self, message) -> None:
        if message["type"] == "http.response.start":
            self.status, self.headers = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self._chunks.append(message.get("body", b""))

    @property
    def body(self) -> bytes:
        return b"".join(self._chunks)

    def header(self, name: bytes) -> str | None:
        return next((v.decode("latin-1") for k, v in self.headers if k.lower() == name), None)


def _vary(send):
    """``send`` adding ``Vary: Accept`` to the answer's headers: the same URL answers HTML or JSON."""
    async def sending(message):
        if message["type"] == "http.response.start":
            message = dict(message, headers=[*message.get("headers", []), (b"vary", b"Accept")])
        await send(message)
    return sending


@dataclass(frozen=True)
class Context:
    site: str
    dagster_url: str | None
    cid: str
    fid: str
    query: dict[str, str]
    authenticated: bool
    lon_lat: bool  # the features' coordinates are CRS84 (the map's), not another CRS


_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(pathlib.Path(__file__).with_name("templates")),
                          autoescape=True, undefined=jinja2.StrictUndefined)
_ENV.filters["show"] = lambda v: "" if v is None else (json.dumps(v, ensure_ascii=False)
                                                       if isinstance(v, (dict, list)) else str(v))


def _render(template: str, heading: str, site: str, alternates: list[dict] = (), **values) -> str:
    return _ENV.get_template(template).render(heading=heading, site=site, alternates=list(alternates), **values)


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _href(path: str, query: dict[str, str] | None = None, fmt: str = "html") -> str:
    """A link on this server (relative: the Host header never reaches a page)."""
    return f"{path}?{urllib.parse.urlencode({**(query or {}), 'f': fmt})}"


def _json_link(path: str, query: dict[str, str], label: str = "JSON", media: str = "application/json") -> dict:
    return {"href": _href(path, query, "json"), "type": media, "label": label}


def _dagster(context: Context, cid: str) -> str | None:
    if not context.dagster_url or "." not in cid:
        return None
    schema, name = cid.split(".", 1)
    return f"{context.dagster_url}/assets/{_q(schema)}/{_q(name)}"


def _map(bbox: list[float] | None, cid: str, fid: str | None = None) -> str | None:
    """The city map framed on ``bbox`` (lon/lat), with the item's popup when it has an id."""
    if not bbox:
        return None
    fragment = {"bbox": ",".join(f"{v:.7f}" for v in bbox), "collection": cid}
    if fid:
        fragment["item"] = fid
    return "/map#" + urllib.parse.urlencode(fragment)


def _bounds(geometries: list[dict | None]) -> list[list[float] | None]:
    """Each GeoJSON geometry's [minx, miny, maxx, maxy] (None for none or an empty one), vectorized."""
    import numpy as np
    import shapely

    texts = [json.dumps(g) if g else None for g in geometries]
    parsed = shapely.from_geojson(np.array(texts, dtype=object), on_invalid="ignore")
    boxes = shapely.bounds(parsed)
    return [None if np.isnan(b).any() else [float(v) for v in b] for b in boxes]


def landing(doc: dict, c: Context) -> str:
    links = [{**link, "href": _local(link.get("href", ""))} for link in doc.get("links", [])]
    return _render("landing.html", doc.get("title", c.site), c.site, [_json_link("/", {})], doc=doc, links=links)


def _local(href: str) -> str:
    """A link of a JSON answer as a path on this server (its scheme and host came from the request)."""
    parts = urllib.parse.urlsplit(href)
    return urllib.parse.urlunsplit(("", "", parts.path, parts.query, parts.fragment))


def conformance(doc: dict, c: Context) -> str:
    return _render("conformance.html", "Conformance", c.site, [_json_link("/conformance", {})], doc=doc)


def collections(doc: dict, c: Context) -> str:
    rows = []
    for item in doc.get("collections", []):
        t = item.get("twinhub", {})
        path = f"/collections/{_q(item['id'])}"
        rows.append({"id": item["id"], "title": item.get("title") or "", "department": t.get("department") or "",
                     "standard": t.get("standard") or "", "tier": t.get("tier") or "",
                     "rows": "" if t.get("rows") is None else t["rows"], "updated": (t.get("updated") or "")[:16],
                     "href": _href(path), "items": _href(path + "/items")})
    return _render("collections.html", "Collections", c.site, [_json_link("/collections", {})], rows=rows,
                   authenticated=c.authenticated)


def collection(doc: dict, c: Context) -> str:
    t = doc.get("twinhub", {})
    path = f"/collections/{_q(c.cid)}"
    box = (doc.get("extent") or {}).get("spatial", {}).get("bbox", [None])[0]
    share = t.get("quarantined_share")
    facts = [("department", t.get("department")), ("standard", t.get("standard")), ("tier", t.get("tier")),
             ("licence", doc.get("license")), ("version", t.get("version")), ("updated", t.get("updated")),
             ("rows published", t.get("rows")),
             ("rows quarantined", None if share is None else f"{100 * share:.1f} %"),
             ("protected columns (masked or pseudonymized for you)", ", ".join(t.get("protected_columns") or [])),
             ("extent (lon/lat)", None if not box else ", ".join(str(v) for v in box)),
             ("CRS", ", ".join(doc.get("crs") or []))]
    return _render("collection.html", doc.get("title") or c.cid, c.site, [_json_link(path, {})], doc=doc,
                   facts=[(k, v) for k, v in facts if v not in (None, "")], items=_href(path + "/items"),
                   queryables=_href(path + "/queryables"), map=_map(box, c.cid), dagster=_dagster(c, c.cid))


def queryables(doc: dict, c: Context) -> str:
    path = f"/collections/{_q(c.cid)}"
    rows = [(k, v.get("type") or v.get("format") or "") for k, v in (doc.get("properties") or {}).items()]
    return _render("queryables.html", f"Queryables of {c.cid}", c.site,
                   [_json_link(path + "/queryables", {}, "JSON Schema", "application/schema+json")],
                   rows=rows, collection=_href(path))


def items(doc: dict, c: Context) -> str:
    path = f"/collections/{_q(c.cid)}/items"
    query = {k: v for k, v in c.query.items() if k != "f"}
    features = doc.get("features", [])
    limit, offset = _int(query.get("limit"), 100), _int(query.get("offset"), 0)
    limit = max(1, min(limit, 10_000))
    matched = doc.get("numberMatched", len(features))
    boxes = _bounds([f.get("geometry") for f in features]) if c.lon_lat else [None] * len(features)
    columns = list(dict.fromkeys(k for f in features for k in (f.get("properties") or {})))
    rows = []
    for feature, box in zip(features, boxes):
        fid = feature.get("id")
        rows.append({"id": fid, "properties": feature.get("properties") or {},
                     "href": None if fid is None else _href(f"{path}/{_q(str(fid))}"),
                     "geometry_type": (feature.get("geometry") or {}).get("type", ""),
                     "map": _map(box, c.cid, None if fid is None else str(fid))})
    nxt = _href(path, {**query, "offset": str(offset + limit), "limit": str(limit)}) \
        if offset + limit < matched else None
    prev = _href(path, {**query, "offset": str(max(0, offset - limit)), "limit": str(limit)}) if offset > 0 else None
    return _render("items.html", f"Items of {c.cid}", c.site, [_json_link(path, query, "GeoJSON", "application/geo+json")],
                   features=rows, columns=columns, with_ids=any(r["id"] is not None for r in rows),
                   first=offset + 1 if features else 0, last=offset + len(features), matched=matched,
                   filtered=any(k in query for k in ("bbox", "filter")), next=nxt, prev=prev,
                   collection=_href(f"/collections/{_q(c.cid)}"), dagster=_dagster(c, c.cid))


def item(doc: dict, c: Context) -> str:
    path = f"/collections/{_q(c.cid)}"
    query = {k: v for k, v in c.query.items() if k != "f"}
    box = _bounds([doc.get("geometry")])[0] if c.lon_lat else None
    return _render("item.html", f"{c.fid} · {c.cid}", c.site,
                   [_json_link(f"{path}/items/{_q(c.fid)}", query, "GeoJSON", "application/geo+json")],
                   feature={"properties": doc.get("properties") or {}},
                   geometry_type=(doc.get("geometry") or {}).get("type", "none"),
                   bbox=None if not box else ", ".join(f"{v:.6f}" for v in box),
                   collection=_href(path), items=_href(path + "/items"), map=_map(box, c.cid, c.fid),
                   dagster=_dagster(c, c.cid))


def _error(site: str, status: int, doc: dict) -> bytes:
    """The JSON error's words (they name nothing the reader may not see), as a page."""
    description = doc.get("description") if isinstance(doc.get("description"), str) else "the request failed"
    code = doc.get("code") if isinstance(doc.get("code"), str) else ""
    return _render("error.html", {401: "Not signed in", 403: "Not readable with your access",
                                  404: "Not found"}.get(status, "Request failed"), site,
                   description=description, status=status, code=code).encode("utf-8")


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def api(doc: dict, c: Context) -> str:
    """The OpenAPI definition as a table of its operations."""
    operations = [{"method": method.upper(), "path": path, "summary": op.get("summary") or "",
                   "parameters": [p.get("name", "") for p in op.get("parameters", []) if isinstance(p, dict)],
                   "answers": sorted(op.get("responses", {}))}
                  for path, item in sorted((doc.get("paths") or {}).items()) for method, op in item.items()
                  if isinstance(op, dict) and method in ("get", "post", "put", "delete", "patch")]
    info = doc.get("info") or {}
    return _render("api.html", "API definition", c.site, [{"href": "/api", "type": "application/vnd.oai.openapi+json;"
                                                           "version=3.1", "label": "OpenAPI 3.1"}],
                   description=info.get("description") or "", operations=operations)


RENDERERS = {"api": api, "landing": landing, "conformance": conformance, "collections": collections, "collection": collection,
             "queryables": queryables, "items": items, "item": item}
