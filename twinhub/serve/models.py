"""What the service answers, for its OpenAPI definition (/api): the bodies the routes already return.

The models document; the routes still build their answers as before (tests/serve/test_openapi.py
checks that every answer matches). Unknown members are allowed: OGC API documents are open."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

GEOJSON = "application/geo+json"
MVT = "application/vnd.mapbox-vector-tile"


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Link(Open):
    href: str
    rel: str
    type: str | None = None
    title: str | None = None
    templated: bool | None = None


class OgcException(Open):
    """An OGC API exception: the code, what to do, the HTTP status."""

    code: str
    description: str
    status: int


class LandingPage(Open):
    title: str
    description: str
    links: list[Link]


class Conformance(Open):
    conformsTo: list[str]  # noqa: N815 - the OGC member's name


class Collection(Open):
    id: str
    title: str | None = None
    description: str | None = None
    itemType: str  # noqa: N815
    crs: list[str]
    storageCrs: str  # noqa: N815
    keywords: list[str]
    license: str | None = None
    twinhub: dict[str, Any]
    links: list[Link]
    extent: dict[str, Any] | None = None


class Collections(Open):
    links: list[Link]
    collections: list[Collection]
    crs: list[str]


class Feature(Open):
    type: Literal["Feature"]
    geometry: dict[str, Any] | None
    properties: dict[str, Any] | None
    links: list[Link] | None = None


class FeatureCollection(Open):
    type: Literal["FeatureCollection"]
    features: list[Feature]
    numberMatched: int  # noqa: N815
    numberReturned: int  # noqa: N815
    timeStamp: str  # noqa: N815
    links: list[Link]


class Version(Open):
    version: int
    dataset: str
    published_at: str


class Versions(Open):
    versions: list[Version]


class TileSet(Open):
    title: str
    dataType: str  # noqa: N815
    crs: str
    tileMatrixSetURI: str  # noqa: N815
    links: list[Link]


class TileSets(Open):
    tilesets: list[TileSet]


class VectorLayer(Open):
    id: str
    fields: dict[str, str]


class TileJson(Open):
    tilejson: str
    name: str
    scheme: str
    minzoom: int
    maxzoom: int
    bounds: list[float]
    tiles: list[str]
    vector_layers: list[VectorLayer]


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of the OGC exceptions a route may answer (docs/serving.md's table)."""
    said = {400: "A malformed parameter (the description names it), or an unknown one",
            401: "A malformed, unknown, expired or revoked token, or a token in the URL",
            403: "A collection the reader may not read (the answer names nothing of it)",
            404: "No such collection, feature or version",
            413: "The query string is too long",
            503: "The request took longer than its time budget"}
    body = {"application/json": {"schema": OgcException.model_json_schema()}}  # JSON, whatever the route's 200
    return {s: {"description": said[s], "content": body} for s in statuses}


EVERY_READ = (400, 401, 404, 413, 503)  # any request that reads the catalog (as-of, a token)
OF_A_COLLECTION = (*EVERY_READ, 403)
QUERYABLES = {200: {"description": "A JSON Schema of the properties a filter may use",
                    "content": {"application/schema+json": {"schema": {"type": "object"}}}}}
TILE = {200: {"description": "A Mapbox vector tile", "content": {MVT: {"schema": {"type": "string",
                                                                                    "format": "binary"}}}},
        204: {"description": "No feature in this tile"},
        304: {"description": "The tile is unchanged (If-None-Match)"}}
HTML = {"text/html": {"schema": {"type": "string"}}}  # the landing page answers a browser with the map
