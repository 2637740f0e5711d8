"""A collection's metadata as OGC API – Features describes it, from the catalog and the registry."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import duckdb
import pyproj

from twinhub.catalog.access import Access
from twinhub.catalog.features import View, transform_box, transformer_between
from twinhub.catalog.lake import META_SCHEMA
from twinhub.hub.home import Hub

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def crs_uri(crs: str) -> str:
    """``EPSG:4490`` -> ``http://www.opengis.net/def/crs/EPSG/0/4490`` (OGC's CRS URIs)."""
    authority, code = pyproj.CRS.from_user_input(crs).to_authority() or ("EPSG", "4326")
    return f"http://www.opengis.net/def/crs/{authority}/0/{code}"


def crs_of_uri(uri: str) -> str:
    """An OGC CRS URI (or ``EPSG:n``) as pyproj input; CRS84 is lon/lat WGS 84."""
    if uri in (CRS84, "CRS84", "OGC:CRS84"):
        return "OGC:CRS84"
    prefix = "http://www.opengis.net/def/crs/"
    if uri.startswith(prefix):
        authority, _, code = uri[len(prefix):].split("/", 2)
        return f"{authority}:{code}"
    return uri


@dataclass(frozen=True)
class Meta:
    id: str
    title: str
    description: str
    department: str
    standard: str
    tier: str
    crs: str  # the catalog's CRS (the hub's target CRS)
    version: int | None
    updated_at: str | None
    rows: int | None
    quarantined_share: float | None
    licence: str


def catalog_meta(con: duckdb.DuckDBPyConnection, hub: Hub, access: Access, table: str) -> Meta:
    row = con.execute(
        f"SELECT d.title, d.description, d.department, d.standard, d.target_crs, d.updated_at, "
        f"q.rows_published, q.quarantined_share, "
        f"(SELECT max(v.version) FROM {META_SCHEMA}.versions v WHERE v.dataset = d.dataset) "
        f"FROM {META_SCHEMA}.datasets d LEFT JOIN {META_SCHEMA}.quality q ON q.dataset = d.dataset "
        "WHERE d.dataset = ?", [table]).fetchone()
    tier = access.tiers.datasets.get(table, "restricted")
    licences = _licences(hub)
    if row is None:  # a city layer or a derived table: described by what it is
        schema, name = table.split(".", 1)
        title = f"City layer: {name}" if schema == "city" else f"Derived: {name}"
        what = ("every department's datasets of the standard " + name) if schema == "city" else \
            "a steward's SQL over published datasets"
        return Meta(table, title, f"{title}, {what}.", schema, name if schema == "city" else "", tier,
                    hub.target_crs, None, None, None, None, hub.city.licence)
    title, description, department, standard, crs, updated, rows, share, version = row
    return Meta(table, title, (description or "").strip(), department, standard, tier, crs or hub.target_crs,
                version, updated.isoformat() if isinstance(updated, dt.datetime) else updated, rows, share,
                licences.get(table) or hub.city.licence)


def _licences(hub: Hub) -> dict[str, str]:
    from twinhub.hub.registry import registered

    return {r.id: r.manifest.license for r in registered(hub) if r.manifest.license}


def extent(con: duckdb.DuckDBPyConnection, view: View, crs: str) -> list[float] | None:
    """The view's bounding box in CRS84, rounded outward (what the reader may see, not the whole table)."""
    if view.geometry is None:
        return None
    import sqlglot
    from sqlglot import exp

    g = exp.column(exp.to_identifier(view.geometry, quoted=True))
    agg = [exp.Min(this=exp.Anonymous(this="ST_XMin", expressions=[g.copy()])),
           exp.Min(this=exp.Anonymous(this="ST_YMin", expressions=[g.copy()])),
           exp.Max(this=exp.Anonymous(this="ST_XMax", expressions=[g.copy()])),
           exp.Max(this=exp.Anonymous(this="ST_YMax", expressions=[g.copy()]))]
    inner = sqlglot.parse_one(view.select, read="duckdb")
    box = con.execute(exp.select(*agg).from_(exp.Subquery(this=inner, alias=exp.TableAlias(
        this=exp.to_identifier("t", quoted=True)))).sql(dialect="duckdb")).fetchone()
    if box is None or box[0] is None:
        return None
    if not pyproj.CRS.from_user_input(crs).is_geographic:
        box = transform_box(transformer_between(crs, "OGC:CRS84"), box)
    return [math.floor(box[0] * 1e7) / 1e7, math.floor(box[1] * 1e7) / 1e7,
            math.ceil(box[2] * 1e7) / 1e7, math.ceil(box[3] * 1e7) / 1e7]
