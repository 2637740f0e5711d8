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

import duckdb
import pyproj
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


def _bbox_condition(v: View, bbox: tuple[float, float, float, float], bbox_to_table) -> exp.Expr:
    minx, miny, maxx, maxy = bbox_to_table(bbox)
    envelope = exp.Anonymous(this="ST_MakeEnvelope", expressions=[exp.Literal.number(repr(float(n)))
                                                                 for n in (minx, miny, maxx, maxy)])
    return exp.Anonymous(this="ST_Intersects", expressions=[exp.column(_ident(v.geometry)), envelope])


def query(v: View, bbox=None, filter_text: str | None = None, ids: list[str] | None = None,
          bbox_to_table=lambda b: b, order: tuple[str, ...] = ()) -> exp.Select:
    """``SELECT * FROM (<view>) WHERE <bbox> AND <filter> AND <ids>`` as a tree."""
    import sqlglot

    inner = sqlglot.parse_one(v.select, read="duckdb")
    select = exp.select(exp.Star()).from_(exp.Subquery(this=inner, alias=exp.TableAlias(this=_ident("t"))))
    conditions: list[exp.Expr] = []
    if bbox is not None:
        if v.geometry is None:
            raise BadRequest("bbox: the collection has no geometry")
        conditions.append(_bbox_condition(v, bbox, bbox_to_table))
    if filter_text:
        conditions.append(compile_filter(filter_text, v.queryables, v.geometry))
    for condition in conditions:
        select = select.where(condition)
    if order:
        select = select.order_by(*[exp.column(_ident(c)) for c in order])
    return select


def read_page(con: duckdb.DuckDBPyConnection, v: View, limit: int, offset: int, bbox=None,
              filter_text: str | None = None, target_crs: str = "OGC:CRS84", table_crs: str = "OGC:CRS84",
              id_column: str | None = None, bbox_crs: str | None = None) -> Page:
    """A page of features (GeoJSON dicts in ``target_crs``, in its axis order) and how many match in all.

    ``bbox`` is in ``bbox_crs`` (default: ``target_crs``), in that CRS's axis order (OGC API Part 2)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit: between 1 and {MAX_LIMIT}")
    if offset < 0:
        raise BadRequest("offset: 0 or more")
    to_table = _bbox_transformer(bbox_crs or target_crs, table_crs)
    order = (id_column,) if id_column else tuple(c for c in v.columns if c != v.geometry)[:1]
    base = query(v, bbox, filter_text, bbox_to_table=to_table, order=order)
    count = exp.select(exp.Count(this=exp.Star())).from_(exp.Subquery(this=base.copy(), alias=_ident("c")))
    matched = con.execute(count.sql(dialect="duckdb")).fetchone()[0]
    page = base.limit(exp.Literal.number(limit)).offset(exp.Literal.number(offset))
    return Page(_features(con, v, page, target_crs, table_crs, id_column), matched, limit, offset)


def read_one(con: duckdb.DuckDBPyConnection, v: View, fid: str, id_column: str, target_crs: str,
             table_crs: str) -> dict | None:
    condition = exp.EQ(this=exp.cast(exp.column(_ident(id_column)), "VARCHAR"), expression=exp.Literal.string(fid))
    select = query(v).where(condition).limit(exp.Literal.number(2))
    found = _features(con, v, select, target_crs, table_crs, id_column)
    return found[0] if len(found) == 1 else None


def _features(con, v: View, select: exp.Select, target_crs: str, table_crs: str, id_column: str | None) -> list[dict]:
    projections = [exp.column(_ident(c)) for c in v.columns if c != v.geometry]
    if v.geometry:
        geometry = exp.column(_ident(v.geometry))
        if pyproj.CRS.from_user_input(target_crs) != pyproj.CRS.from_user_input(table_crs):
            geometry = exp.Anonymous(this="ST_Transform", expressions=[
                geometry, exp.Literal.string(table_crs), exp.Literal.string(target_crs),
                exp.Kwarg(this=exp.var("always_xy"), expression=exp.true())])
        if northing_first(target_crs):  # stored x/y; served in the CRS's own axis order (OGC API Part 2)
            geometry = exp.Anonymous(this="ST_FlipCoordinates", expressions=[geometry])
        projections.append(exp.alias_(exp.Anonymous(this="ST_AsGeoJSON", expressions=[geometry]),
                                      _ident("__geometry")))
    outer = exp.select(*projections).from_(exp.Subquery(this=select, alias=_ident("p")))
    cursor = con.execute(outer.sql(dialect="duckdb"))
    names = [d[0] for d in cursor.description]
    out = []
    for row in cursor.fetchall():
        record = dict(zip(names, row))
        geometry = record.pop("__geometry", None)
        feature = {"type": "Feature", "geometry": json.loads(geometry) if geometry else None,
                   "properties": {k: _json_value(val) for k, val in record.items()}}
        if id_column and record.get(id_column) is not None:
            feature["id"] = str(record[id_column])
        out.append(feature)
    return out


def _json_value(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def northing_first(crs: str) -> bool:
    """Whether ``crs`` lists northing (latitude) before easting (longitude): EPSG:4326, EPSG:4490, EPSG:4549."""
    axes = pyproj.CRS.from_user_input(crs).axis_info
    return bool(axes) and axes[0].direction.lower() in ("north", "south")


def _bbox_transformer(bbox_crs: str, table_crs: str):
    """minx,miny,maxx,maxy in ``bbox_crs``'s axis order -> x/y bounds in ``table_crs``."""
    flip = northing_first(bbox_crs)
    source, target = pyproj.CRS.from_user_input(bbox_crs), pyproj.CRS.from_user_input(table_crs)
    transformer = None if source == target else pyproj.Transformer.from_crs(source, target, always_xy=True)

    def convert(b):
        b = (b[1], b[0], b[3], b[2]) if flip else tuple(b)
        return b if transformer is None else transformer.transform_bounds(*b, densify_pts=21)

    return convert
