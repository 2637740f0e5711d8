"""Mapbox vector tiles of one reader's view of a table (WebMercatorQuad), made by DuckDB spatial.

A tile holds the features of the view (catalog/features.py: what the reader may see) that meet the
tile, clipped to it with a buffer, attributes as MVT values (text, numbers, booleans; anything else
as text). The statement is a sqlglot tree; z, x and y are checked integers.
"""

from __future__ import annotations

import math
from functools import lru_cache

import duckdb
import numpy as np
import pyproj
from sqlglot import exp

from twinhub.catalog.features import BadRequest, View, source_select, transform_box, transformer_between

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
    transformer = transformer_between(WEB_MERCATOR, table_crs)
    out = transform_box(transformer, box)
    if not all(map(math.isfinite, out)):
        raise BadRequest(f"tile {z}/{y}/{x} lies outside what the table's CRS can show")
    return out


@lru_cache(maxsize=32)
def transform_texts(table_crs: str) -> tuple[str, str]:
    """How to name ``table_crs`` and Web Mercator to DuckDB's ST_Transform: as PROJ strings when they
    transform exactly as the CRS codes do (checked on a grid over the CRS's area of use), else as the codes.

    DuckDB spatial looks a code up in PROJ's database on every statement (~0.3 s a tile); a PROJ
    string needs no look-up. A CRS whose way to WGS 84 needs more than its PROJ string says (a grid,
    a published transformation) keeps its code."""
    import warnings

    source, target = pyproj.CRS.from_user_input(table_crs), pyproj.CRS.from_user_input(WEB_MERCATOR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # to_proj4 warns that a PROJ string may lose information: checked below
        texts = (source.to_proj4(), target.to_proj4())
    area = source.area_of_use
    if area is None or not all(texts):
        return table_crs, WEB_MERCATOR
    lon, lat = np.meshgrid(np.linspace(area.west, area.east, 7), np.linspace(max(area.south, -85), min(area.north, 85), 7))
    x, y = pyproj.Transformer.from_crs("EPSG:4326", source, always_xy=True).transform(lon.ravel(), lat.ravel())
    by_code = np.array(pyproj.Transformer.from_crs(source, target, always_xy=True).transform(x, y))
    by_text = np.array(pyproj.Transformer.from_crs(*texts, always_xy=True).transform(x, y))
    same = np.isfinite(by_code).all() and np.allclose(by_code, by_text, rtol=0, atol=0.001)  # a millimetre
    return texts if same else (table_crs, WEB_MERCATOR)


def _mercator_point(geometry: exp.Expr) -> exp.Expr:
    """Web Mercator of a longitude/latitude point: x = a·λ, y = a·ln(tan(π/4 + φ/2)), a = 6,378,137 m."""
    a = exp.Literal.number("6378137.0")
    radians = lambda f: exp.Anonymous(this="radians", expressions=[exp.Anonymous(this=f, expressions=[geometry.copy()])])  # noqa: E731
    y = exp.Ln(this=exp.Anonymous(this="tan", expressions=[exp.Add(
        this=exp.Div(this=exp.Anonymous(this="pi"), expression=exp.Literal.number(4)),
        expression=exp.Div(this=radians("ST_Y"), expression=exp.Literal.number(2)))]))
    return exp.Anonymous(this="ST_Point", expressions=[exp.Mul(this=a, expression=radians("ST_X")),
                                                        exp.Mul(this=a.copy(), expression=y)])


@lru_cache(maxsize=32)
def mercator_is_formula(table_crs: str) -> bool:
    """Whether PROJ takes ``table_crs``'s longitude/latitude to Web Mercator by the spherical formula alone
    (no datum shift): checked to a millimetre on a grid over the CRS's area of use. DuckDB then computes
    points by the formula, ~0.1 s less per tile of thousands of points than ST_Transform."""
    source = pyproj.CRS.from_user_input(table_crs)
    area = source.area_of_use
    if not source.is_geographic or area is None:
        return False
    lon, lat = np.meshgrid(np.linspace(area.west, area.east, 7), np.linspace(max(area.south, -85), min(area.north, 85), 7))
    x, y = pyproj.Transformer.from_crs("EPSG:4326", source, always_xy=True).transform(lon.ravel(), lat.ravel())
    px, py = pyproj.Transformer.from_crs(source, WEB_MERCATOR, always_xy=True).transform(x, y)
    fx, fy = 6378137.0 * np.radians(x), 6378137.0 * np.log(np.tan(np.pi / 4 + np.radians(y) / 2))
    return bool(np.allclose(px, fx, rtol=0, atol=0.001) and np.allclose(py, fy, rtol=0, atol=0.001))


def _value(column: str, kind: str) -> exp.Expr:
    ident = exp.column(exp.to_identifier(column, quoted=True))
    if kind in MVT_NUMBERS or kind == "VARCHAR":
        return ident
    if kind.startswith("DECIMAL"):
        return exp.cast(ident, "DOUBLE")
    return exp.cast(ident, "VARCHAR")


def tile(con: duckdb.DuckDBPyConnection, view: View, z: int, x: int, y: int, table_crs: str, layer: str,
         source: exp.Table | None = None) -> bytes:
    """The MVT tile z/x/y of ``view`` (one layer named ``layer``); empty bytes when no feature meets it.
    ``source``: an indexed copy of the view's table (serve/copies.py), read instead of the lake table."""
    check_tile(z, x, y)
    if view.geometry is None:
        raise BadRequest("tiles: the collection has no geometry")
    geometry = exp.column(exp.to_identifier(view.geometry, quoted=True))
    number = exp.Literal.number
    envelope = exp.Anonymous(this="ST_MakeEnvelope", expressions=[number(repr(float(v))) for v in
                                                                  _table_envelope(z, x, y, table_crs)])
    projected = geometry.copy()
    if pyproj.CRS.from_user_input(table_crs) != pyproj.CRS.from_user_input(WEB_MERCATOR):
        source_text, target_text = transform_texts(table_crs)
        projected = exp.Anonymous(this="ST_Transform", expressions=[
            projected, exp.Literal.string(source_text), exp.Literal.string(target_text),
            exp.Kwarg(this=exp.var("always_xy"), expression=exp.true())])
        if mercator_is_formula(table_crs):  # points by the formula itself; other shapes through PROJ
            projected = exp.Case(ifs=[exp.If(this=exp.EQ(
                this=exp.Anonymous(this="ST_GeometryType", expressions=[geometry.copy()]),
                expression=exp.Literal.string("POINT")), true=_mercator_point(geometry))], default=projected)
    bounds = exp.Anonymous(this="ST_Extent", expressions=[exp.Anonymous(
        this="ST_TileEnvelope", expressions=[number(z), number(x), number(y)])])
    mvt_geometry = exp.Anonymous(this="ST_AsMVTGeom", expressions=[projected, bounds, number(EXTENT),
                                                                   number(BUFFER), exp.true()])
    properties = [exp.alias_(_value(c, t), exp.to_identifier(c, quoted=True))
                  for c, t in view.columns.items() if c != view.geometry]
    inner = source_select(view, source, envelope)  # the tile's envelope filters right on the table
    features = (exp.select(*properties, exp.alias_(mvt_geometry, exp.to_identifier("__mvt", quoted=True)))
                .from_(exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("v", quoted=True)))))
    rows = exp.Subquery(this=features, alias=exp.TableAlias(this=exp.to_identifier("t", quoted=True)))
    aggregate = exp.Anonymous(this="ST_AsMVT", expressions=[exp.column(exp.to_identifier("t", quoted=True)),
                                                            exp.Literal.string(layer), number(EXTENT),
                                                            exp.Literal.string("__mvt")])
    # ST_AsMVT leaves out rows whose tile geometry is NULL (nothing of them in the tile) and count() does not
    # count them; a WHERE on it would have DuckDB compute every tile geometry twice
    statement = exp.select(aggregate, exp.Count(this=exp.column(exp.to_identifier("__mvt", quoted=True)))).from_(rows)
    found = con.execute(statement.sql(dialect="duckdb")).fetchone()
    return bytes(found[0]) if found and found[1] else b""  # no feature: no tile (HTTP 204)
