"""The OGC API – Features service of a hub (Part 1 Core, Part 2 CRS by reference, Part 3 CQL2 text).

Every request resolves its reader (catalog/tokens.py: a bearer token's consumer, else the anonymous
public reader) and reads through that reader's view of each table (catalog/features.py): the same
grants, column protection and row filtering as ``twinhub query --as``. The worker keeps the catalog
open and its decisions per catalog snapshot and reader (serve/cache.py). Data requests are audited with the reader, the path and the rows returned;
the token never reaches the audit log, a log line or a URL.
"""

from __future__ import annotations

import datetime as dt
import pathlib
import threading
import time
import urllib.parse

import duckdb
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from twinhub.catalog import audit, features, tiles
from twinhub.catalog.enforce import AsConsumer
from twinhub.catalog.filters import CONFORMANCE as CQL2_CONFORMANCE
from twinhub.catalog.grants import read_grants
from twinhub.catalog.lake import UnknownVersion
from twinhub.hub.consumers import city_today, derived_inputs
from twinhub.hub.home import Hub
from twinhub.serve import errors, html, models
from twinhub.serve.cache import Context, Served
from twinhub.serve.collections import CRS84, Meta, crs_of_uri, crs_uri
from twinhub.serve.models import EVERY_READ, GEOJSON, MVT, OF_A_COLLECTION
from twinhub.serve.readers import reader
from twinhub.serve.tilecache import TileCache, tiles_folder

OPENAPI = "application/vnd.oai.openapi+json;version=3.1"  # FastAPI writes OpenAPI 3.1
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    html.CONFORMANCE,
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    *CQL2_CONFORMANCE,
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
)
DEFAULT_LIMIT = 100
MAX_QUERY_CHARS = 16_384  # a request's query string (filters included)
STATIC = pathlib.Path(__file__).with_name("static")
CSP = ("default-src 'self'; script-src 'self'; worker-src 'self' blob:; child-src 'self' blob:; "
       "img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'; font-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class GeoJSONResponse(JSONResponse):
    """What the items routes answer (they build it themselves; this names the media type in /api)."""

    media_type = GEOJSON


class Reading:
    """One request's reader, catalog cursor and access (released when the request ends).

    The latest catalog is read on the worker's cursor of this thread, in one transaction, with the
    access decisions and views the worker keeps for this snapshot and reader (serve/cache.py); the
    token and the consumer's grants are read again on every request. ``as-of`` (a catalog version)
    opens the catalog as it was then, each column at the stricter of its tiers then and now, as
    ``twinhub query --as-of`` does (not cached: a rare request)."""

    def __init__(self, hub: Hub, request: Request, today: dt.date, budget_s: float = 30.0,
                 served: Served | None = None):
        self.hub, self.request, self._served = hub, request, served
        self._deadline = time.monotonic() + budget_s
        as_of = _as_of(request)
        self._own = as_of is not None or served is None
        self._transaction = False
        if self._own:
            try:
                self.con = hub.lake.connect(read_only=True, snapshot=as_of)
            except UnknownVersion as exc:
                raise errors.ApiError(404, "NotFound", f"as-of: {exc}") from None
        else:
            self.con = served.take()
        try:
            self.consumer = reader(request, hub, today, self.con)  # tokens live beside DuckLake's metadata
            if self._own:
                self.context = _uncached_context(hub, self.con, self.consumer, today, as_of is not None)
            else:
                grants = read_grants(self.con, hub.lake, consumer=self.consumer.name)  # before the transaction:
                self.con.execute("BEGIN TRANSACTION")  # a missing grants table's error would abort it
                self._transaction = True
                self.context = served.context(self.con, served.snapshot(self.con), self.consumer, grants, today)
        except BaseException:
            self._release()
            raise
        self.access, self.tables, self.protect = self.context.access, self.context.tables, self.context.protect
        # the time budget: past it, every statement still to run is interrupted and the request answers 503
        self._closed = threading.Event()
        self._timer = threading.Thread(target=self._expire, args=(budget_s,), daemon=True)
        self._timer.start()

    def _expire(self, budget_s: float) -> None:
        if self._closed.wait(budget_s):
            return
        while not self._closed.wait(0.05):  # an interrupt stops the running statement only: keep at it
            self.con.interrupt()

    def _in_budget(self) -> None:
        """Refuse to start a statement once the budget is spent (the timer stops those already running)."""
        if time.monotonic() > self._deadline:
            raise duckdb.InterruptException("the request's time budget is spent")

    def view(self, cid: str) -> features.View:
        self._in_budget()
        if cid not in self.tables:
            raise errors.not_found(f"no collection {cid!r}: GET /collections lists them")
        try:
            return self.context.view(self.con, cid)
        except features.UnknownCollection:
            raise errors.forbidden() from None

    def readable(self) -> list[tuple[features.View, Meta]]:
        out = []
        for table in self.tables:
            try:
                view = self.context.view(self.con, table)
            except features.UnknownCollection:
                continue
            out.append((view, self.context.meta(self.con, table)))
        return out

    def meta(self, cid: str) -> Meta:
        return self.context.meta(self.con, cid)

    def table_crs(self, cid: str) -> str:
        return self.context.table_crs(self.con, cid)

    def id_column(self, cid: str, view: features.View) -> str | None:
        return self.context.id_column(self.con, cid, view)

    def extent(self, cid: str, view: features.View) -> list[float] | None:
        return self.context.extent(self.con, cid, view)

    def source(self, cid: str, view: features.View):
        """An indexed in-memory copy of the collection's table at this snapshot, when the worker has one."""
        if self._own:
            return None
        return self._served.source(self.con, self.context.snapshot, cid, view)

    def close(self) -> None:
        self._closed.set()
        self._timer.join()
        self._release()

    def _release(self) -> None:
        if self._own:
            self.con.close()
            return
        try:
            if self._transaction:
                self.con.execute("ROLLBACK")  # read only: nothing to keep
        except duckdb.Error:
            self.con.close()  # a cursor in an unknown state is not lent again
            return
        self._served.give(self.con)


def _uncached_context(hub: Hub, con, consumer, today: dt.date, time_travel: bool) -> Context:
    """A context of its own for a connection of its own (``as-of``, or an app without a worker cache)."""
    tables = features.tables(con)
    who = AsConsumer(consumer, today, derived_inputs(hub, tables))
    _masking(con)
    return Context(hub, Served.snapshot(con), consumer, who.access(con, hub.lake, time_travel=time_travel), tables)


def _as_of(request: Request) -> int | None:
    text = request.query_params.get("as-of")
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise errors.ApiError(400, "InvalidParameterValue", "as-of: a catalog version number (GET /versions)")
    return int(text)


def _masking(con) -> None:
    from twinhub.catalog import masking

    masking.register_functions(con)


def create_app(hub: Hub, today: dt.date | None = None, dagster_url: str | None = None,
               budget_s: float = 30.0) -> FastAPI:
    """The service for ``hub``; ``today`` fixes the day grants and tokens are checked against (tests);
    ``dagster_url`` is where the map links each feature's Dagster asset (none: no link)."""
    app = FastAPI(title=f"twinhub: {hub.city.name}", openapi_url="/api", docs_url=None, redoc_url=None,
                  description="The city's published datasets, city layers and derived tables (OGC API – Features).")
    app.add_exception_handler(Exception, errors.handle)
    for kind in errors.EXPECTED:  # answered as they are: not server errors
        app.add_exception_handler(kind, errors.handle)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    html.install(app, f"twinhub · {hub.city.name}", dagster_url)  # HTML pages; added first: the headers below apply

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        if len(request.url.query) > MAX_QUERY_CHARS:
            return JSONResponse(errors.exception_body(413, "RequestTooLarge", f"the query string is longer than "
                                                      f"{MAX_QUERY_CHARS} characters: shorten the filter"),
                                status_code=413)
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP  # the map may reach this server and nothing else
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    served = Served(hub)  # this worker's catalog and caches (serve/cache.py)
    app.state.served = served
    app.router.on_shutdown.append(served.close)

    def reading(request: Request) -> Reading:
        return Reading(hub, request, today or city_today(hub), budget_s, served)

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    @app.get("/map", summary="The city map (HTML)", include_in_schema=False)
    def city_map():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/map/config", summary="What the map page needs to know", include_in_schema=False)
    def map_config():
        return {"title": f"twinhub · {hub.city.name}", "dagster_url": dagster_url}

    @app.get("/versions", summary="Catalog versions of the collections the reader may read",
             responses={200: {"model": models.Versions}, **models.errors(*EVERY_READ)})
    def versions(request: Request):
        r = reading(request)
        try:
            readable = {view.table for view, _ in r.readable()}
            rows = r.con.execute("SELECT version, dataset, published_at FROM catalog.versions "
                                 "ORDER BY version DESC").fetchall()
        finally:
            r.close()
        return {"versions": [{"version": v, "dataset": d, "published_at": str(at)} for v, d, at in rows
                             if d in readable]}

    @app.get("/", summary="Landing page",
             responses={200: {"model": models.LandingPage, "content": models.HTML}, **models.errors(413)})
    def landing(request: Request):
        if "text/html" in request.headers.get("accept", "") and request.query_params.get("f") != "json":
            return FileResponse(STATIC / "index.html", media_type="text/html")  # a browser: the map
        b = base(request)
        return {"title": f"twinhub: {hub.city.name}", "description": "The city's data hub as OGC API – Features.",
                "links": [{"rel": "self", "href": f"{b}/", "type": "application/json"}, html.alternate(f"{b}/"),
                          {"rel": "service-desc", "href": f"{b}/api", "type": OPENAPI},
                          {"rel": "service-doc", "href": f"{b}/api.html", "type": "text/html"},
                          {"rel": "conformance", "href": f"{b}/conformance", "type": "application/json"},
                          {"rel": "data", "href": f"{b}/collections", "type": "application/json"}]}

    @app.get("/conformance", summary="Conformance classes",
             responses={200: {"model": models.Conformance}, **models.errors(413)})
    def conformance():
        return {"conformsTo": list(CONFORMANCE)}

    @app.get("/collections", summary="The collections the reader may read",
             responses={200: {"model": models.Collections}, **models.errors(*EVERY_READ)})
    def collections(request: Request):
        r = reading(request)
        try:
            docs = [_collection(r, view, meta, base(request)) for view, meta in r.readable()]
        finally:
            r.close()
        b = base(request)
        return {"links": [{"rel": "self", "href": f"{b}/collections", "type": "application/json"},
                          html.alternate(f"{b}/collections")],
                "collections": docs, "crs": [CRS84, crs_uri(hub.target_crs)]}

    @app.get("/collections/{cid}", summary="One collection",
             responses={200: {"model": models.Collection}, **models.errors(*OF_A_COLLECTION)})
    def collection(cid: str, request: Request):
        r = reading(request)
        try:
            view = r.view(cid)
            return _collection(r, view, r.meta(cid), base(request))
        finally:
            r.close()

    @app.get("/collections/{cid}/queryables", summary="What a filter may use",
             responses={**models.QUERYABLES, **models.errors(*OF_A_COLLECTION)})
    def queryables(cid: str, request: Request):
        r = reading(request)
        try:
            view = r.view(cid)
        finally:
            r.close()
        props = {c: {"type": _json_type(t)} for c, t in view.queryables.items() if c != view.geometry}
        if view.geometry:
            props[view.geometry] = {"format": "geometry-any"}
        return JSONResponse({"$schema": "https://json-schema.org/draft/2019-09/schema", "type": "object",
                             "$id": f"{base(request)}/collections/{cid}/queryables", "properties": props},
                            media_type="application/schema+json")

    @app.get("/collections/{cid}/items", summary="Features, paged", response_class=GeoJSONResponse,
             responses={200: {"model": models.FeatureCollection}, **models.errors(*OF_A_COLLECTION)})
    def items(cid: str, request: Request, limit: int = DEFAULT_LIMIT, offset: int = 0, bbox: str | None = None,
              crs: str | None = None, filter: str | None = None):  # noqa: A002 - the OGC parameter's name
        params = request.query_params
        _known_params(params, {"limit", "offset", "bbox", "bbox-crs", "crs", "filter", "filter-lang", "f", "as-of"})
        if params.get("filter-lang", "cql2-text") != "cql2-text":
            raise errors.ApiError(400, "InvalidParameterValue", "filter-lang: only cql2-text is supported")
        r = reading(request)
        started = time.monotonic()
        entry = audit.AuditEntry(action="api-items", statement=_statement(request), tables=[cid],
                                 consumer=r.consumer.name or "anonymous")
        try:
            view = r.view(cid)
            out_crs = _crs_param(crs, hub)
            box = _bbox_param(bbox, params.get("bbox-crs"), hub)
            id_column = r.id_column(cid, view)
            page = features.read_page(r.con, view, min(limit, features.MAX_LIMIT), offset, box[0] if box else None,
                                      filter, target_crs=crs_of_uri(out_crs), table_crs=r.table_crs(cid),
                                      id_column=id_column, bbox_crs=crs_of_uri(box[1]) if box else None,
                                      source=r.source(cid, view))
            entry.rows_returned, entry.columns = len(page.features), [f"{cid}.{c}" for c in view.columns]
        except BaseException as exc:
            entry.status, entry.message = ("refused" if isinstance(exc, errors.ApiError) else "error"), str(exc)[:500]
            raise
        finally:
            entry.duration_ms = (time.monotonic() - started) * 1000
            served.audit(entry)
            r.close()
        links = _page_links(request, page)
        body = {"type": "FeatureCollection", "features": page.features, "numberMatched": page.matched,
                "numberReturned": len(page.features), "timeStamp": dt.datetime.now(dt.timezone.utc).isoformat(),
                "links": links}
        return JSONResponse(body, media_type=GEOJSON, headers={"Content-Crs": f"<{out_crs}>"})

    @app.get("/collections/{cid}/items/{fid}", summary="One feature", response_class=GeoJSONResponse,
             responses={200: {"model": models.Feature}, **models.errors(*OF_A_COLLECTION)})
    def item(cid: str, fid: str, request: Request, crs: str | None = None):
        r = reading(request)
        entry = audit.AuditEntry(action="api-item", statement=_statement(request), tables=[cid],
                                 consumer=r.consumer.name or "anonymous")
        try:
            view = r.view(cid)
            out_crs = _crs_param(crs, hub)
            id_column = r.id_column(cid, view)
            if id_column is None:
                raise errors.not_found(f"{cid} has no identifier column: read its items instead")
            found = features.read_one(r.con, view, fid, id_column, crs_of_uri(out_crs), r.table_crs(cid),
                                      r.source(cid, view))
            if found is None:
                raise errors.not_found(f"no feature {fid!r} in {cid}")
            entry.rows_returned = 1
        except BaseException as exc:
            entry.status, entry.message = ("refused" if isinstance(exc, errors.ApiError) else "error"), str(exc)[:500]
            raise
        finally:
            served.audit(entry)
            r.close()
        b = base(request)
        found["links"] = [{"rel": "self", "href": f"{b}/collections/{cid}/items/{fid}", "type": GEOJSON},
                          html.alternate(f"{b}/collections/{cid}/items/{fid}"),
                          {"rel": "collection", "href": f"{b}/collections/{cid}", "type": "application/json"}]
        return JSONResponse(found, media_type=GEOJSON, headers={"Content-Crs": f"<{out_crs}>"})

    cache = TileCache(tiles_folder(hub.home))  # shared by the workers (serve/tilecache.py)

    @app.get("/collections/{cid}/tiles", summary="The collection's tilesets (OGC API – Tiles)",
             responses={200: {"model": models.TileSets}, **models.errors(*OF_A_COLLECTION)})
    def tilesets(cid: str, request: Request):
        r = reading(request)
        try:
            r.view(cid)
        finally:
            r.close()
        b = f"{base(request)}/collections/{cid}/tiles/WebMercatorQuad"
        return {"tilesets": [{
            "title": f"{cid} (vector tiles)", "dataType": "vector", "crs": crs_uri("EPSG:3857"),
            "tileMatrixSetURI": "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad",
            "links": [{"rel": "self", "href": b, "type": "application/json"},
                      {"rel": "item", "href": b + "/{tileMatrix}/{tileRow}/{tileCol}", "templated": True,
                       "type": MVT},
                      {"rel": "describedby", "href": b + "/tilejson.json", "type": "application/json"}]}]}

    @app.get("/collections/{cid}/tiles/WebMercatorQuad/tilejson.json", summary="TileJSON 3.0",
             responses={200: {"model": models.TileJson}, **models.errors(*OF_A_COLLECTION)})
    def tilejson(cid: str, request: Request):
        r = reading(request)
        try:
            view = r.view(cid)
            box = r.extent(cid, view)
        finally:
            r.close()
        fields = {c: _json_type(t) for c, t in view.columns.items() if c != view.geometry}
        return {"tilejson": "3.0.0", "name": cid, "scheme": "xyz", "minzoom": 0, "maxzoom": tiles.MAX_ZOOM,
                "bounds": box or [-180, -85.0511, 180, 85.0511],
                "tiles": [f"{base(request)}/collections/{cid}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}"],
                "vector_layers": [{"id": cid, "fields": fields}]}

    @app.get("/collections/{cid}/tiles/WebMercatorQuad/{z}/{y}/{x}", summary="One vector tile (MVT)",
             response_class=Response, responses={**models.TILE, **models.errors(*OF_A_COLLECTION)})
    def tile(cid: str, z: int, y: int, x: int, request: Request):
        tiles.check_tile(z, x, y)
        r = reading(request)
        try:
            view = r.view(cid)
            key = cache.key(r.context.snapshot, view, z, x, y)
            if request.headers.get("if-none-match") == f'"{key}"':
                return Response(status_code=304, headers={"ETag": f'"{key}"'})
            body = cache.get(key, r.context.snapshot)
            if body is None:
                body = tiles.tile(r.con, view, z, x, y, r.table_crs(cid), cid, r.source(cid, view))
                cache.put(key, body, r.context.snapshot)
        finally:
            r.close()
        return Response(body, status_code=200 if body else 204, media_type=MVT,
                        headers={"ETag": f'"{key}"', "Cache-Control": "private, max-age=60"})

    return app


def _statement(request: Request) -> str:
    """What the audit log keeps of a request: method, path and query string (never its headers)."""
    query = urllib.parse.unquote(request.url.query)
    return f"{request.method} {request.url.path}" + (f"?{query}" if query else "")


def _known_params(params, allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise errors.ApiError(400, "InvalidParameterValue", f"unknown parameter {unknown[0]!r}; "
                                                            f"this endpoint takes {', '.join(sorted(allowed))}")


def _crs_param(crs: str | None, hub: Hub) -> str:
    allowed = [CRS84, crs_uri(hub.target_crs)]
    if crs is None:
        return CRS84
    if crs not in allowed:
        raise errors.ApiError(400, "InvalidParameterValue", f"crs: {crs!r} is not offered; use one of "
                                                            f"{', '.join(allowed)}")
    return crs


def _bbox_param(text: str | None, bbox_crs: str | None, hub: Hub):
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or values[0] > values[2] or values[1] > values[3]:
        raise errors.ApiError(400, "InvalidParameterValue", "bbox: four numbers minx,miny,maxx,maxy "
                                                            "(lower left, then upper right)")
    crs = bbox_crs or CRS84
    if crs not in (CRS84, crs_uri(hub.target_crs)):
        raise errors.ApiError(400, "InvalidParameterValue", f"bbox-crs: {crs!r} is not offered; use {CRS84} "
                                                            f"or {crs_uri(hub.target_crs)}")
    return tuple(values), crs


def _json_type(kind: str) -> str:
    if kind.startswith(("DECIMAL", "DOUBLE", "FLOAT", "REAL")):
        return "number"
    if kind in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"):
        return "integer"
    return "boolean" if kind == "BOOLEAN" else "string"


def _collection(r: Reading, view: features.View, meta: Meta, b: str) -> dict:
    box = r.extent(meta.id, view)
    doc = {
        "id": meta.id, "title": meta.title, "description": meta.description, "itemType": "feature",
        "crs": [CRS84, crs_uri(meta.crs)], "storageCrs": crs_uri(meta.crs),
        "keywords": [k for k in (meta.department, meta.standard) if k],
        "license": meta.licence,
        "twinhub": {"department": meta.department, "standard": meta.standard, "tier": meta.tier,
                    "version": meta.version, "updated": meta.updated_at, "rows": meta.rows,
                    "quarantined_share": meta.quarantined_share, "protected_columns": list(view.protected)},
        "links": [{"rel": "self", "href": f"{b}/collections/{meta.id}", "type": "application/json"},
                  html.alternate(f"{b}/collections/{meta.id}"),
                  {"rel": "items", "href": f"{b}/collections/{meta.id}/items", "type": GEOJSON},
                  {"rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                   "href": f"{b}/collections/{meta.id}/queryables", "type": "application/schema+json"}],
    }
    if box:
        doc["extent"] = {"spatial": {"bbox": [box], "crs": CRS84}}
    return doc


def _page_links(request: Request, page: features.Page) -> list[dict]:
    url = str(request.url)
    links = [{"rel": "self", "href": url, "type": GEOJSON}, html.alternate(url)]
    if page.offset + page.limit < page.matched:
        query = dict(request.query_params)
        query.update(offset=str(page.offset + page.limit), limit=str(page.limit))
        links.append({"rel": "next", "type": GEOJSON,
                      "href": f"{str(request.base_url).rstrip('/')}{request.url.path}?"
                              f"{urllib.parse.urlencode(query)}"})
    return links
