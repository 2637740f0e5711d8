"""The query sandbox: a fresh DuckDB that holds only what one query may read, and nothing else.

A user's SQL never runs on a connection that has the catalog attached. Each
query gets a new in-memory DuckDB (in a worker process the caller can kill,
catalog/worker.py) holding one table per catalog table the query names, with
only the columns the query reads, in the form the consumer may read them
(protected columns masked or pseudonymized, refused ones absent, rows of a
city layer's inputs the consumer may not read absent). The tables are filled
from the catalog by a separate *builder* connection, which is closed before
the sandbox is locked; then:

* ``enable_external_access=false``: no file, no URL, no ATTACH, no COPY, no
  INSTALL/LOAD of anything from disk;
* ``lock_configuration=true``: no ``SET`` can undo that;
* ``allow_unsigned_extensions=false``, no autoinstall or autoload: only the
  spatial extension, loaded from its PyPI package (signature checked) before
  the lock;
* ``python_enable_replacements=false``: a table name never resolves to a
  Python variable of the worker;
* memory, threads and temporary disk capped (:class:`Limits`), spilling into
  a private temporary folder that is removed afterwards.

No catalog metadata, grant, audit record, pseudonym key or other schema is in
the sandbox: a query the guard should have refused, whatever it is, reads at
most what the consumer was given for this query.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

import duckdb
import sqlglot
from sqlglot import exp

from twinhub.catalog import crs_functions
from twinhub.catalog.extensions import extension_path

SPATIAL = ("spatial",)
# functions DuckDB itself has (its GEOMETRY type and these come with the core): no extension needed for them
CORE_GEOMETRY_FUNCTIONS = frozenset({"st_astext", "st_aswkt", "st_geomfromtext", "st_geomfromwkb", "st_aswkb"})
ROW_PLACEHOLDER = "_row"  # the one column of a table the query reads no column of (count(*))
_SIZE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")


class SandboxError(RuntimeError):
    """The sandbox could not be built (a configuration value DuckDB refuses, a missing extension)."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one query may use: DuckDB's ``memory_limit``, ``threads`` and ``max_temp_directory_size``.

    Configured in twinhub.yaml as ``query: {memory: 1GB, threads: 2, temp: 4GB}``.

        >>> Limits.from_config({"memory": "512MB"}).memory
        '512MB'
    """

    memory: str = "1GB"
    threads: int = 2
    temp: str = "4GB"

    @classmethod
    def from_config(cls, config: dict | None) -> Limits:
        config = dict(config or {})
        unknown = sorted(set(config) - {"memory", "threads", "temp"})
        if unknown:
            raise SandboxError(f"query.{unknown[0]}: unknown key (use memory, threads, temp)")
        limits = cls(**config)
        for key in ("memory", "temp"):
            if not _SIZE.match(str(getattr(limits, key))):
                raise SandboxError(f"query.{key}: {getattr(limits, key)!r} is not a size such as 512MB or 2GB")
        if not isinstance(limits.threads, int) or not 1 <= limits.threads <= 64:
            raise SandboxError(f"query.threads: {limits.threads!r} is not a whole number from 1 to 64")
        return limits


@dataclasses.dataclass(frozen=True)
class SandboxTable:
    """One table of the sandbox: ``name`` (``schema.table``) filled by ``select`` (DuckDB SQL run by
    the builder on the catalog; made from a syntax tree by :func:`table_select`)."""

    name: str
    select: str


def table_select(table: str, projections: list[exp.Expr], where: exp.Expr | None = None) -> str:
    """``SELECT <projections> FROM lake.<schema>.<table> [WHERE ...]`` as DuckDB SQL, built as a tree.

        >>> table_select("water.p", [exp.column(exp.to_identifier('a"b', quoted=True))])
        'SELECT "a""b" FROM "lake"."water"."p"'
    """
    schema, name = table.split(".", 1)
    source = exp.Table(this=exp.to_identifier(name, quoted=True), db=exp.to_identifier(schema, quoted=True),
                       catalog=exp.to_identifier("lake", quoted=True))
    projections = projections or [exp.alias_(exp.true(), exp.to_identifier(ROW_PLACEHOLDER, quoted=True))]
    select = exp.select(*projections).from_(source)
    if where is not None:
        select = select.where(where)
    return select.sql(dialect="duckdb")


def extensions_for(sql: str) -> tuple[str, ...]:
    """The extensions the guarded DuckDB ``sql`` needs: spatial when it calls an ``ST_`` function DuckDB's
    core does not have. Checking the extension's signature costs about 0.3 s, so a query that needs no
    spatial function does without (its geometries are still shown: DuckDB's own ``ST_AsText``).

        >>> extensions_for("SELECT ST_X(geometry) FROM w.p"), extensions_for("SELECT name FROM w.p")
        (('spatial',), ())
    """
    for func in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Func):
        name = (func.name if isinstance(func, exp.Anonymous) else func.sql_name()).lower()
        if name.startswith("st_") and name not in CORE_GEOMETRY_FUNCTIONS or name == "point":
            return SPATIAL
        if name in crs_functions.FUNCTIONS and len(func.expressions) == 1:  # gcj02_to_wgs84(point)
            return SPATIAL
    return ()


def open_sandbox(limits: Limits, temp_dir: str, extensions: tuple[str, ...] = SPATIAL) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB with ``extensions`` loaded from their PyPI packages (signatures checked)
    and the GCJ-02/BD-09 functions (catalog/crs_functions.py) created, not yet locked."""
    config = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_unsigned_extensions": False,
        "allow_community_extensions": False,
        "python_enable_replacements": False,
        "memory_limit": limits.memory,
        "threads": limits.threads,
        "max_temp_directory_size": limits.temp,
        "temp_directory": temp_dir,
    }
    try:
        con = duckdb.connect(":memory:", config=config)
    except duckdb.Error as exc:
        raise SandboxError(f"the query limits in twinhub.yaml (query:) are not usable: {exc}") from exc
    for name in extensions:
        con.execute("LOAD " + exp.Literal.string(str(extension_path(name))).sql(dialect="duckdb"))
    crs_functions.install(con, geometry="spatial" in extensions)  # gcj02_to_wgs84(...) and its siblings
    return con


def fill(sandbox: duckdb.DuckDBPyConnection, builder: duckdb.DuckDBPyConnection,
         tables: Iterable[SandboxTable]) -> None:
    """Copy each table's rows from ``builder`` (the catalog) into ``sandbox``, streamed through Arrow."""
    schemas: set[str] = set()
    for table in tables:
        schema, name = table.name.split(".", 1)
        if schema not in schemas:
            sandbox.execute(exp.Create(this=exp.Table(this=exp.to_identifier(schema, quoted=True)), kind="SCHEMA",
                                       exists=True).sql(dialect="duckdb"))
            schemas.add(schema)
        reader = builder.execute(table.select).to_arrow_reader()
        sandbox.register("__twinhub_fill", reader)
        try:
            target = exp.Table(this=exp.to_identifier(name, quoted=True), db=exp.to_identifier(schema, quoted=True))
            create = exp.Create(this=target, kind="TABLE",
                                expression=exp.select(exp.Star()).from_(exp.to_table("__twinhub_fill")))
            sandbox.execute(create.sql(dialect="duckdb"))
        finally:
            sandbox.unregister("__twinhub_fill")


def lock(sandbox: duckdb.DuckDBPyConnection) -> None:
    """No file system, no network, no configuration changes from here on."""
    sandbox.execute("SET enable_external_access = false")
    sandbox.execute("SET lock_configuration = true")


def without_catalog_prefix(sql: str) -> exp.Expr:
    """The guarded DuckDB SQL as a tree, ``lake.<schema>.<table>`` read as ``<schema>.<table>``
    (the sandbox has no ``lake`` database: the guard allows the prefix, the sandbox drops it)."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    for table in tree.find_all(exp.Table):
        if table.catalog.lower() == "lake":
            table.set("catalog", None)
    for column in tree.find_all(exp.Column):
        if column.catalog.lower() == "lake":
            column.set("catalog", None)
    return tree


# DuckDB spatial's own types that ST_AsText writes out (GEOMETRY_TYPE, ST_GeometryType's enum, is not one)
_WKT_TYPES = re.compile(r"^(GEOMETRY(\(.*\))?|POINT_2D|LINESTRING_2D|POLYGON_2D|BOX_2D)$")
_NESTED_GEOMETRY = re.compile(r"\bGEOMETRY\b")  # GEOMETRY inside a STRUCT, LIST or MAP (ST_Dump's)


def _displayed(column: exp.Expr, kind: str) -> exp.Expr | None:
    """How a result column of type ``kind`` is shown: WKT for a geometry, also inside structs and lists
    (ST_Dump's, a row ``t`` selected whole), None for anything Python receives as a value already."""
    if _WKT_TYPES.match(kind):
        return exp.Anonymous(this="ST_AsText", expressions=[column])
    if not _NESTED_GEOMETRY.search(kind):
        return None
    try:
        return _nested(column, exp.DataType.build(kind, dialect="duckdb"))
    except sqlglot.errors.ParseError:
        return exp.cast(column, exp.DataType.build("VARCHAR"))  # DuckDB's cast writes geometries as WKT


def _nested(node: exp.Expr, kind: exp.DataType) -> exp.Expr | None:
    """``node`` (of type ``kind``) with every geometry in it as WKT, its shape kept; None if it has none."""
    if kind.is_type(exp.DType.GEOMETRY):
        return exp.Anonymous(this="ST_AsText", expressions=[node])
    if kind.is_type(exp.DType.STRUCT):
        fields = [(f.name, f.args["kind"]) for f in kind.expressions if isinstance(f, exp.ColumnDef)]
        shown = [(name, _nested(exp.Anonymous(this="struct_extract", expressions=[node.copy(), exp.Literal.string(name)]),
                                sub)) for name, sub in fields]
        if all(value is None for _, value in shown):
            return None
        packed = exp.Struct(expressions=[
            exp.PropertyEQ(this=exp.to_identifier(name, quoted=True),
                           expression=value or exp.Anonymous(this="struct_extract",
                                                             expressions=[node.copy(), exp.Literal.string(name)]))
            for name, value in shown])
        return exp.case().when(exp.Is(this=node.copy(), expression=exp.Null()), exp.Null()).else_(packed)
    if kind.is_type(exp.DType.ARRAY, exp.DType.LIST) and kind.expressions:
        element = _nested(exp.column(exp.to_identifier("_element", quoted=True)), kind.expressions[0])
        if element is None:
            return None
        return exp.Anonymous(this="list_transform", expressions=[
            node, exp.Lambda(this=element, expressions=[exp.to_identifier("_element", quoted=True)])])
    return exp.cast(node, exp.DataType.build("VARCHAR"))  # a MAP or UNION holding geometries: as text


def display_select(sandbox: duckdb.DuckDBPyConnection, query: exp.Expr, limit: int) -> str:
    """``SELECT * [REPLACE (ST_AsText(g) AS g, ...)] FROM (query) LIMIT limit``: geometries as WKT.

    Built as a syntax tree: a column name (an alias the user chose) is an identifier, never SQL text.
    """
    inner = exp.Subquery(this=query.copy(), alias=exp.TableAlias(this=exp.to_identifier("_q")))
    described = sandbox.execute(exp.Describe(this=exp.Subquery(this=query.copy())).sql(dialect="duckdb")).fetchall()
    replace = [
        exp.alias_(_displayed(exp.column(exp.to_identifier(name, quoted=True)), str(kind)),
                   exp.to_identifier(name, quoted=True))
        for name, kind, *_ in described if _displayed(exp.column(name), str(kind)) is not None
    ]
    star = exp.Star(replace=replace) if replace else exp.Star()
    return exp.select(star).from_(inner).limit(exp.Literal.number(int(limit))).sql(dialect="duckdb")
