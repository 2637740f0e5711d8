"""Features of one catalog table as one consumer may read them: the data behind the OGC API.

A collection is a departments' dataset, a ``city.<standard>`` layer or a ``derived.*`` table. What a
reader sees of it is decided exactly as for ``twinhub query --as`` (catalog/access.py,
catalog/enforce.py): clear columns as they are, protected ones masked or pseudonymized, blocked ones
absent, a city layer's rows only from the inputs the reader may read. Without a token the reader is
:data:`ANONYMOUS`, who holds no grant and so reads public columns of public tables only.

Every statement here is built as a sqlglot tree from the reader's view, the collection's own
column names, numbers (bbox, limit, offset) and a CQL2 filter compiled from an allow-list
(catalog/filters.py): no text from a request is ever pasted into SQL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache

import duckdb
import numpy as np
import pyproj
import shapely
from sqlglot import exp

from twinhub.catalog.access import BLOCKED, CLEAR, PROTECTED, Access, Decision
from twinhub.catalog.enforce import sandbox_tables
from twinhub.catalog.filters import compile_filter
from twinhub.catalog.grants import Consumer
from twinhub.catalog.lake import ALIAS, META_SCHEMA
from twinhub.errors import UserError

ANONYMOUS = Consumer("user:")  # no grant can name it: `grants add user:` is refused as no user name
MAX_LIMIT = 10_000


class UnknownCollection(UserError, LookupError):
    """No such collection for this reader (it does not exist, or the reader may see nothing of it)."""


class BadRequest(UserError, ValueError):
    """A parameter that cannot be used; the message names it."""


@dataclass(frozen=True)
class View:
    """What one reader may see of one table."""

    table: str  # "water.pumping_stations"
    columns: dict[str, str]  # readable column -> DuckDB type (protected ones included)
    protected: tuple[str, ...]
    select: str  # SELECT <view> FROM lake.<schema>.<table> [WHERE <readable inputs>], built as a tree
    geometry: str | None
    key: tuple[str, ...] = field(default_factory=tuple)

    @property
    def queryables(self) -> dict[str, str]:
        return {c: t for c, t in self.columns.items() if c not in self.protected}


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    schema, name = table.split(".", 1)
    return dict(con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? "
        "AND table_name = ? ORDER BY column_index", [ALIAS, schema, name]).fetchall())


def tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every data table of the catalog (datasets, city layers, derived), ``schema.table``."""
    rows = con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? "
                       "AND schema_name <> ? ORDER BY 1, 2", [ALIAS, META_SCHEMA]).fetchall()
    return [f"{s}.{t}" for s, t in rows]


def view(con: duckdb.DuckDBPyConnection, access: Access, table: str, protect=None) -> View:
    """``table`` as ``access``'s consumer may read it; UnknownCollection when nothing of it is readable."""
    columns = table_columns(con, table)
    if not columns:
        raise UnknownCollection(f"no collection {table!r}")
    decisions: dict[str, Decision] = {}
    for column in columns:
        decision = access.decide(table, column)
        if decision.kind == PROTECTED and protect is None:
            decision = Decision(BLOCKED, reason="protection is not available")
        decisions[column] = decision
    readable = {c: t for c, t in columns.items() if decisions[c].kind in (CLEAR, PROTECTED)}
    if not readable or (access.consumer == ANONYMOUS and access.tiers.datasets.get(table) != "public"
                        and table in access.tiers.datasets):
        raise UnknownCollection(f"no collection {table!r}")  # the same answer as for a missing one
    (sandbox,) = sandbox_tables({table: list(readable)}, {table: decisions}, access.readable_inputs, protect)
    geometry = next((c for c, t in readable.items() if t.startswith("GEOMETRY") and c not in
                     [c for c in readable if decisions[c].kind == PROTECTED]), None)
    protected = tuple(c for c in readable if decisions[c].kind == PROTECTED)
    return View(table, readable, protected, sandbox.select, geometry)


@dataclass(frozen=True)
class Page:
    features: list[dict]
    matched: int
    limit: int
    offset: int


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _envelope(bbox: tuple[float, float, float, float]) -> exp.Expr:
    return exp.Anonymous(this="ST_MakeEnvelope", expressions=[exp.Literal.number(repr(float(n))) for n in bbox])


@lru_cache(maxsize=1024)
def _parsed(select: str) -> exp.Select:
    """A view's SELECT as a tree (copy it before changing it): parsed once per view, not per request."""
    import sqlglot

    return sqlglot.parse_one(select, read="duckdb")


def source_select(v: View, source: exp.Table | None = None, envelope: exp.Expr | None = None) -> exp.Select:
    """The view's SELECT, reading ``source`` (an indexed copy of its table, serve/copies.py) instead of
    the lake table, and with ``envelope`` only the rows whose geometry meets it.

    The envelope's condition sits right on the table (``FROM (SELECT * FROM t WHERE ST_Intersects(..))
    AS t``), where DuckDB's R-tree index serves it; it reads the stored geometry column, which the view
    passes through unchanged (a protected geometry is never the view's geometry)."""
    inner = _parsed(v.select).copy()
    if source is None and envelope is None:
        return inner
    table = next(inner.find_all(exp.Table))  # a view reads one table
    rows = exp.select(exp.Star()).from_(source.copy() if source is not None else table.copy())
    if envelope is not None:
        rows = rows.where(exp.Anonymous(this="ST_Intersects", expressions=[exp.column(_ident(v.geometry)), envelope]))
    table.replace(exp.Subquery(this=rows, alias=exp.TableAlias(this=_ident(table.name))))
    return inner


def query(v: View, bbox=None, filter_text: str | None = None, ids: list[str] | None = None,
          bbox_to_table=lambda b: b, order: tuple[str, ...] = (), source: exp.Table | None = None) -> exp.Select:
    """``SELECT * FROM (<view>, within <bbox>) WHERE <filter>`` as a tree."""
    if bbox is not None and v.geometry is None:
        raise BadRequest("bbox: the collection has no geometry")
    envelope = _envelope(bbox_to_table(bbox)) if bbox is not None else None
    inner = source_select(v, source, envelope)
    select = exp.select(exp.Star()).from_(exp.Subquery(this=inner, alias=exp.TableAlias(this=_ident("t"))))
    if filter_text:
        select = select.where(compile_filter(filter_text, v.queryables, v.geometry))
    if order:
        select = select.order_by(*[exp.column(_ident(c)) for c in order])
    return select


def read_page(con: duckdb.DuckDBPyConnection, v: View, limit: int, offset: int, bbox=None,
              filter_text: str | None = None, target_crs: str = "OGC:CRS84", table_crs: str = "OGC:CRS84",
              id_column: str | None = None, bbox_crs: str | None = None, source: exp.Table | None = None) -> Page:
    """A page of features (GeoJSON dicts in ``target_crs``, in its axis order) and how many match in all.

    ``bbox`` is in ``bbox_crs`` (default: ``target_crs``), in that CRS's axis order (OGC API Part 2)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit: between 1 and {MAX_LIMIT}")
    if offset < 0:
        raise BadRequest("offset: 0 or more")
    to_table = _bbox_transformer(bbox_crs or target_crs, table_crs)
    order = (id_column,) if id_column else tuple(c for c in v.columns if c != v.geometry)  # pages: a total order
    base = query(v, bbox, filter_text, bbox_to_table=to_table, order=order, source=source)
    unordered = query(v, bbox, filter_text, bbox_to_table=to_table, source=source)
    count = exp.select(exp.Count(this=exp.Star())).from_(exp.Subquery(this=unordered, alias=_ident("c")))
    matched = con.execute(count.sql(dialect="duckdb")).fetchone()[0]
    page = base.limit(exp.Literal.number(limit)).offset(exp.Literal.number(offset))
    return Page(_features(con, v, page, target_crs, table_crs, id_column), matched, limit, offset)


def read_one(con: duckdb.DuckDBPyConnection, v: View, fid: str, id_column: str, target_crs: str,
             table_crs: str, source: exp.Table | None = None) -> dict | None:
    condition = exp.EQ(this=exp.cast(exp.column(_ident(id_column)), "VARCHAR"), expression=exp.Literal.string(fid))
    select = query(v, source=source).where(condition).limit(exp.Literal.number(2))
    found = _features(con, v, select, target_crs, table_crs, id_column)
    return found[0] if len(found) == 1 else None


def _features(con, v: View, select: exp.Select, target_crs: str, table_crs: str, id_column: str | None) -> list[dict]:
    projections = [exp.column(_ident(c)) for c in v.columns if c != v.geometry]
    if v.geometry:  # as WKB: reprojected and written as GeoJSON below, vectorized
        projections.append(exp.alias_(exp.Anonymous(this="ST_AsWKB", expressions=[exp.column(_ident(v.geometry))]),
                                      _ident("__geometry")))
    outer = exp.select(*projections).from_(exp.Subquery(this=select, alias=_ident("p")))
    cursor = con.execute(outer.sql(dialect="duckdb"))
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    geometries = _geojson([r[-1] for r in rows], table_crs, target_crs) if v.geometry else [None] * len(rows)
    out = []
    for row, geometry in zip(rows, geometries):
        record = dict(zip(names, row))
        record.pop("__geometry", None)
        feature = {"type": "Feature", "geometry": json.loads(geometry) if geometry else None,
                   "properties": {k: _json_value(val) for k, val in record.items()}}
        if id_column and record.get(id_column) is not None:
            feature["id"] = str(record[id_column])
        out.append(feature)
    return out


def _geojson(wkb: list, table_crs: str, target_crs: str) -> list:
    """GeoJSON texts of WKB geometries stored in ``table_crs``, served in ``target_crs`` in its own axis
    order (OGC API Part 2), with the worker's cached transformer (pyproj: once per CRS pair, not per query)."""
    geometries = shapely.from_wkb(np.array(wkb, dtype=object))
    transformer = transformer_between(table_crs, target_crs)
    flip = northing_first(target_crs)
    if transformer is not None or flip:
        def move(xyz: np.ndarray) -> np.ndarray:
            columns = list(xyz.T)
            if transformer is not None:
                columns[:2] = transformer.transform(columns[0], columns[1])
            if flip:
                columns[0], columns[1] = columns[1], columns[0]
            return np.column_stack(columns)

        with_z = shapely.has_z(geometries)
        moved = np.empty_like(geometries)
        moved[~with_z] = shapely.transform(geometries[~with_z], move)
        moved[with_z] = shapely.transform(geometries[with_z], move, include_z=True)
        geometries = moved
    return list(shapely.to_geojson(geometries))


@lru_cache(maxsize=64)
def transformer_between(source: str, target: str) -> pyproj.Transformer | None:
    """x/y from ``source`` to ``target`` (None when they are the same CRS).

    Choosing the operation takes PROJ ~0.2 s, and pyproj does it again in every thread that uses a
    transformer; so the operation chosen once is kept as its pipeline, which any thread opens in ~0.1 ms."""
    a, b = pyproj.CRS.from_user_input(source), pyproj.CRS.from_user_input(target)
    if a == b:
        return None
    return pyproj.Transformer.from_pipeline(pyproj.Transformer.from_crs(a, b, always_xy=True).definition)


def transform_box(transformer: pyproj.Transformer | None, box, densify: int = 21) -> tuple[float, ...]:
    """The x/y bounds of ``box`` (minx, miny, maxx, maxy) through ``transformer``, its edges densified
    (a pipeline transformer's own transform_bounds knows no CRS and answers inf)."""
    if transformer is None:
        return tuple(box)
    minx, miny, maxx, maxy = box
    t = np.linspace(0.0, 1.0, densify + 2)
    xs = np.concatenate([minx + (maxx - minx) * t, np.full_like(t, maxx), maxx - (maxx - minx) * t, np.full_like(t, minx)])
    ys = np.concatenate([np.full_like(t, miny), miny + (maxy - miny) * t, np.full_like(t, maxy), maxy - (maxy - miny) * t])
    x, y = transformer.transform(xs, ys)
    return float(np.min(x)), float(np.min(y)), float(np.max(x)), float(np.max(y))


def _json_value(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


@lru_cache(maxsize=64)
def northing_first(crs: str) -> bool:
    """Whether ``crs`` lists northing (latitude) before easting (longitude): EPSG:4326, EPSG:4490, EPSG:4549."""
    axes = pyproj.CRS.from_user_input(crs).axis_info
    return bool(axes) and axes[0].direction.lower() in ("north", "south")


def _bbox_transformer(bbox_crs: str, table_crs: str):
    """minx,miny,maxx,maxy in ``bbox_crs``'s axis order -> x/y bounds in ``table_crs``."""
    flip = northing_first(bbox_crs)
    transformer = transformer_between(bbox_crs, table_crs)

    def convert(b):
        b = (b[1], b[0], b[3], b[2]) if flip else tuple(b)
        return transform_box(transformer, b)

    return convert
