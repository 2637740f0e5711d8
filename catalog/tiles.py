"""Mapbox vector tiles of one reader's view of a table (WebMercatorQuad), made by DuckDB spatial.

A tile holds the features of the view (catalog/features.py: what the reader may see) that meet the
tile, clipped to it with a buffer, attributes as MVT values (text, numbers, booleans; anything else
as text). The statement is a sqlglot tree; z, x and y are checked integers.
"""

from __future__ import annotations

import math

import duckdb
import pyproj
import sqlglot
from sqlglot import exp

from twinhub.catalog.features import BadRequest, View

EXTENT, BUFFER = 4096, 64
MAX_ZOOM = 22
WEB_MERCATOR = "EPSG:3857"
HALF = 20037508.342789244  # half the width of the Web Mercator square, metres
MVT_NUMBERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "DOUBLE", "FLOAT", "REAL", "BOOLEAN")


def check_tile(z: int, x: int, y: int) -> None:
    if not 0 <= z <= MAX_ZOOM or not (0 <= x < 2**z and 0 <= y < 2**z):
        raise BadRequest(f"tile {z}/{y}/{x}: zoom 0 to {MAX_ZOOM}, row and column 0 to 2^zoom - 1")


def mercator_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    size = 2 * HALF / 2**z
    return (-HALF + x * size, HALF - (y + 1) * size, -HALF + (x + 1) * size, HALF - y * size)


def _table_envelope(z: int, x: int, y: int, table_crs: str) -> tuple[float, float, float, float]:
    """The tile widened by the buffer, as a box in the table's CRS (for the index-friendly filter)."""
    minx, miny, maxx, maxy = mercator_bounds(z, x, y)
    pad = (maxx - minx) * BUFFER / EXTENT
    box = (max(minx - pad, -HALF), max(miny - pad, -HALF), min(maxx + pad, HALF), min(maxy + pad, HALF))
    transformer = pyproj.Transformer.from_crs(WEB_MERCATOR, table_crs, always_xy=True)
    out = transformer.transform_bounds(*box, densify_pts=21)
    if not all(map(math.isfinite, out)):
        raise BadRequest(f"tile {z}/{y}/{x} lies outside what the table's CRS can show")
    return out


def _value(column: str, kind: str) -> exp.Expr:
    ident = exp.column(exp.to_identifier(column, quoted=True))
    if kind in MVT_NUMBERS or kind == "VARCHAR":
        return ident
    if kind.startswith("DECIMAL"):
        return exp.cast(ident, "DOUBLE")
    return exp.cast(ident, "VARCHAR")


def tile(con: duckdb.DuckDBPyConnection, view: View, z: int, x: int, y: int, table_crs: str, layer: str) -> bytes:
    """The MVT tile z/x/y of ``view`` (one layer named ``layer``); empty bytes when no feature meets it."""
    check_tile(z, x, y)
    if view.geometry is None:
        raise BadRequest("tiles: the collection has no geometry")
    geometry = exp.column(exp.to_identifier(view.geometry, quoted=True))
    number = exp.Literal.number
    envelope = exp.Anonymous(this="ST_MakeEnvelope", expressions=[number(repr(float(v))) for v in
                                                                  _table_envelope(z, x, y, table_crs)])
    projected = geometry.copy()
    if pyproj.CRS.from_user_input(table_crs) != pyproj.CRS.from_user_input(WEB_MERCATOR):
        projected = exp.Anonymous(this="ST_Transform", expressions=[
            projected, exp.Literal.string(table_crs), exp.Literal.string(WEB_MERCATOR),
            exp.Kwarg(this=exp.var("always_xy"), expression=exp.true())])
    bounds = exp.Anonymous(this="ST_Extent", expressions=[exp.Anonymous(
        this="ST_TileEnvelope", expressions=[number(z), number(x), number(y)])])
    mvt_geometry = exp.Anonymous(this="ST_AsMVTGeom", expressions=[projected, bounds, number(EXTENT),
                                                                   number(BUFFER), exp.true()])
    properties = [exp.alias_(_value(c, t), exp.to_identifier(c, quoted=True))
                  for c, t in view.columns.items() if c != view.geometry]
    inner = sqlglot.parse_one(view.select, read="duckdb")
    source = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("v", quoted=True)))
    features = (exp.select(*properties, exp.alias_(mvt_geometry, exp.to_identifier("__mvt", quoted=True)))
                .from_(source)
                .where(exp.Anonymous(this="ST_Intersects", expressions=[geometry.copy(), envelope])))
    rows = exp.Subquery(this=features, alias=exp.TableAlias(this=exp.to_identifier("t", quoted=True)))
    aggregate = exp.Anonymous(this="ST_AsMVT", expressions=[exp.column(exp.to_identifier("t", quoted=True)),
                                                            exp.Literal.string(layer), number(EXTENT),
                                                            exp.Literal.string("__mvt")])
    statement = exp.select(aggregate, exp.Count(this=exp.Star())).from_(rows).where(
        exp.Not(this=exp.Is(this=exp.column(exp.to_identifier("__mvt", quoted=True)), expression=exp.Null())))
    found = con.execute(statement.sql(dialect="duckdb")).fetchone()
    return bytes(found[0]) if found and found[1] else b""  # no feature: no tile (HTTP 204)
