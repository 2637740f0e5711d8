"""Allow-list guard for the SQL users send to the catalog's query service.

Users write SQL in the dialect they know (PostgreSQL/PostGIS, MySQL, SQL
Server, SQLite, DuckDB, ...). :func:`prepare_query` parses it with sqlglot,
accepts it only if *everything* in it is on an allow-list, rewrites PostGIS /
MySQL spatial idioms to their DuckDB spatial equivalents and returns DuckDB
SQL plus the catalog tables the query reads::

    >>> q = prepare_query(
    ...     "SELECT name FROM civil_affairs.elderly_care LIMIT 5",
    ...     dialect="postgres",
    ...     tables={"civil_affairs.elderly_care"},
    ... )
    >>> q.sql, q.tables
    ('SELECT name FROM civil_affairs.elderly_care LIMIT 5', ('civil_affairs.elderly_care',))

What is allowed:

* exactly one statement, a ``SELECT`` or a ``UNION``/``INTERSECT``/``EXCEPT``
  of them, with CTEs (``WITH``), subqueries, ``VALUES`` and ``UNNEST``;
* tables named ``<department>.<dataset>`` (or ``lake.<department>.<dataset>``)
  that are in the caller's allow-list, and CTE names visible in scope;
* functions in :data:`ALLOWED_FUNCTIONS`.

Everything else -- DDL/DML anywhere in the tree, ``SELECT ... INTO``, table
functions (``read_csv``, ``st_read``, ``glob`` ...), ``FROM 'file.csv'``,
system catalogs, time travel, unknown functions -- raises
:class:`QueryRefused` whose message is meant for the end user.

Identifier comparisons fold ASCII letters only (like DuckDB's binder), so a
Unicode look-alike (e.g. KELVIN SIGN for ``k``) never matches a CTE or an
allowed table.

The SQL that comes out is parsed and checked again as DuckDB SQL before it is
returned, so a surprise in sqlglot's translation cannot smuggle anything past
the guard. The query service still runs it on a read-only connection with
external access disabled; this guard is the first line, not the only one.
"""

from __future__ import annotations

import difflib
import re
import string
from dataclasses import dataclass
from typing import Iterable

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, SqlglotError, UnsupportedError
from sqlglot.tokens import Token, TokenType

from twinhub.catalog.crs_functions import FUNCTIONS as _CHINESE_CRS
from twinhub.errors import UserError

__all__ = [
    "ALLOWED_FUNCTIONS",
    "SUPPORTED_DIALECTS",
    "PreparedQuery",
    "QueryRefused",
    "prepare_query",
]


class QueryRefused(UserError, ValueError):
    """The query is not allowed; ``str(e)`` tells the end user why and what to do."""


@dataclass(frozen=True)
class PreparedQuery:
    sql: str  # DuckDB SQL to execute
    tables: tuple[str, ...]  # catalog tables read, as "schema.table", sorted, unique


# --------------------------------------------------------------------------- dialects

SUPPORTED_DIALECTS: tuple[str, ...] = (
    "duckdb",
    "postgres",
    "mysql",
    "sqlite",
    "tsql",
    "oracle",
    "hive",
    "spark",
    "databricks",
    "bigquery",
    "snowflake",
    "trino",
    "presto",
    "redshift",
    "clickhouse",
)

DIALECT_ALIASES = {
    "postgresql": "postgres",
    "postgis": "postgres",
    "mssql": "tsql",
    "sqlserver": "tsql",
    "mariadb": "mysql",
}

CATALOG_NAME = "lake"  # the attached DuckLake database; the only catalog prefix allowed
MAX_SQL_LENGTH = 100_000

TABLE_HINT = "name tables as <department>.<dataset>, e.g. civil_affairs.elderly_care"
READ_ONLY_HINT = (
    "the catalog is read-only; send a single SELECT query (WITH ... SELECT and UNION are fine)"
)

# --------------------------------------------------------------------------- functions
# Names are lower case and are what sqlglot calls the function after parsing:
# ``exp.Anonymous.name`` for functions sqlglot does not model, ``sql_name()`` for
# the ones it does (e.g. ``strpos`` parses to StrPosition whose sql_name is
# ``str_position``; ``lpad`` -> ``pad``; ``strftime`` -> ``time_to_str``). Both the
# user's spelling and sqlglot's name are listed so the check holds for the input
# tree and for the DuckDB SQL that is parsed again before it is returned.

_SYNTAX = {
    # sqlglot models these operators / expressions as function nodes
    "and", "or", "xor", "case", "if", "cast", "try_cast", "exists", "extract",
    "collate", "array", "struct", "map", "columns", "explode", "unnest",
}

_AGGREGATES = {
    "count", "count_if", "countif", "sum", "avg", "mean", "min", "max",
    "stddev", "stddev_samp", "stddev_pop", "variance", "variance_pop", "var_samp", "var_pop",
    "median", "mode", "quantile", "quantile_cont", "quantile_disc", "percentile_cont",
    "percentile_disc", "approx_quantile",
    "string_agg", "group_concat", "listagg", "array_agg", "list",
    "bool_and", "bool_or", "logical_and", "logical_or",
    "any_value", "first", "last", "approx_count_distinct", "approx_distinct",
    "arg_max", "arg_min", "max_by", "min_by",
    "corr", "covar_pop", "covar_samp", "regr_slope", "regr_intercept", "regr_r2", "regr_count",
    "kurtosis", "skewness", "grouping", "grouping_id",
}

_WINDOW = {
    "row_number", "rank", "dense_rank", "ntile", "lag", "lead", "first_value", "last_value",
    "nth_value", "percent_rank", "cume_dist",
}

_MATH = {
    "abs", "ceil", "ceiling", "floor", "round", "trunc", "sqrt", "cbrt", "power", "pow", "exp",
    "ln", "log", "log10", "log2", "sign", "mod", "pi", "sin", "cos", "tan", "cot", "asin", "acos",
    "atan", "atan2", "degrees", "radians", "greatest", "least", "is_nan", "isnan", "is_inf",
    "isinf", "isfinite", "even", "gcd", "lcm", "random", "rand", "safe_divide",
}

_STRINGS = {
    "lower", "upper", "lcase", "ucase", "length", "len", "char_length", "character_length",
    "strlen", "substring", "substr", "trim", "ltrim", "rtrim", "replace", "concat", "concat_ws",
    "split_part", "starts_with", "ends_with", "contains", "prefix", "suffix",
    "regexp_matches", "regexp_like", "regexp_replace", "regexp_extract", "regexp_extract_all",
    "regexp_full_match", "left", "right", "lpad", "rpad", "pad", "reverse", "repeat",
    "strpos", "position", "instr", "str_position", "split", "string_split", "str_split",
    "string_to_array", "initcap", "ascii", "chr", "translate", "levenshtein",
    "jaro_winkler_similarity", "jarowinkler_similarity", "strip_accents", "format", "printf",
    "number_to_str", "array_to_string", "md5", "regexp_split", "string_split_regex",
    "str_split_regex",
}

_CONDITIONAL = {"coalesce", "nullif", "ifnull", "nvl", "iif", "convert"}

_LISTS = {
    "array_length", "array_size", "size", "cardinality", "list_contains", "array_contains",
    "list_extract", "list_element", "list_value", "list_distinct", "array_distinct",
    "list_sort", "array_sort", "flatten", "list_transform", "transform", "list_filter", "filter",
}

_DATETIME = {
    "date_trunc", "timestamp_trunc", "datetime_trunc", "date_part", "datepart",
    "now", "current_date", "current_time", "current_timestamp", "localtime", "localtimestamp",
    "strftime", "time_to_str", "strptime", "str_to_time", "str_to_date", "to_char",
    "age", "date_diff", "datediff", "timestampdiff", "datetime_diff", "ts_or_ds_diff",
    "date_add", "date_sub", "datetime_add", "datetime_sub", "timestamp_add", "timestamp_sub",
    "ts_or_ds_add", "ts_or_ds_to_date", "ts_or_ds_to_timestamp", "ts_or_ds_to_datetime",
    "time_str_to_time", "time_str_to_date", "date_str_to_date",
    "to_timestamp", "unix_to_time", "epoch", "epoch_ms", "time_to_unix",
    "make_date", "date_from_parts", "make_timestamp", "timestamp_from_parts", "make_time",
    "date", "timestamp", "to_date",
    "year", "month", "day", "dayofmonth", "day_of_month", "hour", "minute", "second",
    "week", "weekofyear", "week_of_year", "quarter", "dayofweek", "day_of_week", "isodow",
    "dayofyear", "day_of_year", "dayname", "monthname", "last_day", "time_bucket", "date_bin",
}

_JSON = {
    "json_extract", "json_extract_scalar", "json_extract_string", "json_extract_path",
    "json_extract_path_text", "json_value", "json_array_length", "json_keys", "json_type",
    "json_valid", "json_object", "j_s_o_n_object", "json_array", "j_s_o_n_array", "to_json",
    "json_format", "json", "parse_json",
}

# DuckDB spatial's ST_ functions, minus the ones that read files or describe the
# system (st_read, st_readosm, st_readshp, st_read_meta, st_drivers, st_write)
# and st_generatepoints (unbounded output). Listed explicitly, not by prefix, so
# a new extension version cannot add a file reader to the allow-list.
_SPATIAL = {
    "st_affine", "st_area", "st_area_spheroid", "st_asgeojson", "st_ashexwkb", "st_asmvt",
    "st_asmvtgeom", "st_assvg", "st_asbinary", "st_astext", "st_aswkb", "st_aswkt", "st_azimuth",
    "st_boundary", "st_buffer", "st_buildarea", "st_centroid", "st_closestpoint", "st_collect",
    "st_collectionextract", "st_concavehull", "st_contains", "st_containsproperly",
    "st_convexhull", "st_coverageclean", "st_coverageinvalidedges",
    "st_coverageinvalidedges_agg", "st_coveragesimplify", "st_coveragesimplify_agg",
    "st_coverageunion", "st_coverageunion_agg", "st_coveredby", "st_covers", "st_crosses",
    "st_crs", "st_dwithin", "st_dwithin_geos", "st_dwithin_spheroid", "st_difference",
    "st_dimension", "st_disjoint", "st_distance", "st_distance_geos", "st_distance_sphere",
    "st_distance_spheroid", "st_dump", "st_endpoint", "st_envelope", "st_envelope_agg",
    "st_equals", "st_expand", "st_extent", "st_extent_agg", "st_extent_approx",
    "st_exteriorring", "st_flipcoordinates", "st_force2d", "st_force3dm", "st_force3dz",
    "st_force4d", "st_geomfromgeojson", "st_geomfromhexewkb", "st_geomfromhexwkb",
    "st_geomfromtext", "st_geomfromwkb", "st_geometrytype", "st_hasm", "st_hasz", "st_hilbert",
    "st_interiorringn", "st_interpolatepoint", "st_intersection", "st_intersection_agg",
    "st_intersects", "st_intersects_extent", "st_isclosed", "st_isempty", "st_isring",
    "st_issimple", "st_isvalid", "st_length", "st_length_spheroid", "st_lineinterpolatepoint",
    "st_lineinterpolatepoints", "st_linelocatepoint", "st_linemerge", "st_linesubstring",
    "st_locatealong", "st_locatebetween", "st_m", "st_makebox2d", "st_makeenvelope",
    "st_makeline", "st_makepoint", "st_makepolygon", "st_makevalid",
    "st_maximuminscribedcircle", "st_memunion_agg", "st_minimumrotatedrectangle", "st_mmax",
    "st_mmin", "st_multi", "st_ngeometries", "st_ninteriorrings", "st_node", "st_normalize",
    "st_npoints", "st_numgeometries", "st_numinteriorrings", "st_numpoints", "st_overlaps",
    "st_perimeter", "st_perimeter_spheroid", "st_point", "st_point2d", "st_point3d",
    "st_point4d", "st_pointn", "st_pointonsurface", "st_points", "st_polygonize", "st_quadkey",
    "st_reduceprecision", "st_removerepeatedpoints", "st_reverse", "st_rotate", "st_rotatex",
    "st_rotatey", "st_rotatez", "st_scale", "st_setcrs", "st_shortestline", "st_simplify",
    "st_simplifypreservetopology", "st_snap", "st_startpoint", "st_symdifference",
    "st_tileenvelope", "st_touches", "st_transform", "st_transscale", "st_translate",
    "st_union", "st_union_agg", "st_voronoidiagram", "st_within", "st_withinproperly", "st_x",
    "st_xmax", "st_xmin", "st_y", "st_ymax", "st_ymin", "st_z", "st_zmflag", "st_zmax",
    "st_zmin",
    # PostGIS / MySQL / BigQuery spellings that the guard rewrites (see _rewrite_function)
    "st_setsrid", "st_distancesphere", "st_geogfromtext", "st_geographyfromtext",
    "st_geogpoint", "point",
}

# GCJ-02 / BD-09 conversions (catalog/crs_functions.py): macros of pure arithmetic the sandbox creates
ALLOWED_FUNCTIONS: frozenset[str] = frozenset().union(
    _SYNTAX, _AGGREGATES, _WINDOW, _MATH, _STRINGS, _CONDITIONAL, _LISTS, _DATETIME, _JSON,
    _SPATIAL, _CHINESE_CRS,
)

# Functions that read files or the network; named in refusals as "reading files".
_FILE_FUNCTIONS = frozenset({
    "glob", "st_read", "st_readosm", "st_readshp", "st_read_meta", "st_write", "sniff_csv",
    "parquet_metadata", "parquet_schema", "parquet_file_metadata", "parquet_kv_metadata",
    "load_extension", "load_file", "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "to_file",
})

# --------------------------------------------------------------------------- statements

# Nodes that must not appear anywhere in the tree (in addition to exp.DDL/exp.DML).
_FORBIDDEN_NODE_NAMES = (
    "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "TruncateTable", "Copy",
    "Attach", "Detach", "Install", "LoadData", "Pragma", "Set", "SetItem", "Use", "Command",
    "Transaction", "Commit", "Rollback", "Describe", "Show", "Summarize", "Export", "Cache",
    "Uncache", "Refresh", "Grant", "Revoke", "Analyze", "Kill", "Comment", "Into", "Returning",
    "Declare", "DeclareItem", "Execute", "ExecuteSql", "Prepare", "Lock",
)
_FORBIDDEN_NODES: tuple[type, ...] = tuple(
    {getattr(exp, name) for name in _FORBIDDEN_NODE_NAMES if isinstance(getattr(exp, name, None), type)}
    | {exp.DDL, exp.DML}
)

_STATEMENT_NAMES = {
    "TruncateTable": "TRUNCATE",
    "Transaction": "BEGIN",
    "LoadData": "LOAD DATA",
    "Into": "SELECT ... INTO",
    "Returning": "RETURNING",
    "Lock": "FOR UPDATE/SHARE",
}

# First keywords of statements that are not queries (used when sqlglot cannot parse them).
_NON_QUERY_KEYWORDS = frozenset({
    "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "REPLACE", "CREATE", "DROP", "ALTER",
    "TRUNCATE", "COPY", "ATTACH", "DETACH", "INSTALL", "FORCE", "LOAD", "PRAGMA", "SET", "RESET",
    "USE", "CALL", "EXPORT", "IMPORT", "VACUUM", "CHECKPOINT", "BEGIN", "START", "COMMIT",
    "ROLLBACK", "ABORT", "END", "DESCRIBE", "SHOW", "SUMMARIZE", "EXPLAIN", "ANALYZE", "PREPARE",
    "EXECUTE", "EXEC", "DEALLOCATE", "GRANT", "REVOKE", "COMMENT", "PIVOT", "UNPIVOT", "DECLARE",
})

# Table arguments that read something other than the table's current rows.
_TIME_TRAVEL_ARGS = ("version", "when", "changes", "system_time")
_FILE_TABLE_ARGS = ("format", "pattern")  # Snowflake stage reads: FROM @stage (PATTERN => ...)

# $1, ?, :name, @var, @@version: the query service passes no parameters and has no variables
_VARIABLE_NODES = (exp.Placeholder, exp.Parameter, exp.SessionParameter)

_SYSTEM_SCHEMAS = frozenset({"information_schema", "pg_catalog", "system", "temp", "main"})
_SYSTEM_PREFIXES = ("duckdb_", "pragma_", "sqlite_", "pg_", "ducklake_")

_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_FILE_LIKE = re.compile(r"[/\\:*?{}~]|\.[A-Za-z][A-Za-z0-9]{0,9}$")


def _fold(name: str) -> str:
    """Lower-case ASCII letters only, as DuckDB does when it matches identifiers."""
    return name.translate(_ASCII_FOLD)


# --------------------------------------------------------------------------- API


def prepare_query(
    sql: str,
    *,
    dialect: str = "duckdb",
    tables: Iterable[str],
    geographic: bool = True,
) -> PreparedQuery:
    """Check ``sql`` against the allow-lists and translate it to DuckDB SQL.

    ``tables`` are the catalog tables the caller may read, as ``schema.table``.
    ``geographic`` says the geometry coordinates are lon/lat degrees (EPSG:4490,
    the default); with False (a projected CRS in metres) PostGIS geography casts
    are dropped instead of being turned into spheroid computations.

    Raises :class:`QueryRefused` with a message for the end user.
    """
    allowed = _normalize_allowed(tables)
    read = _normalize_dialect(dialect)
    if not isinstance(sql, str) or not sql.strip():
        raise QueryRefused("the query is empty: send one SELECT statement")
    if len(sql) > MAX_SQL_LENGTH:
        raise QueryRefused(f"the query is too long ({len(sql)} characters, at most {MAX_SQL_LENGTH})")

    tree = _parse_one(sql, read)
    read_tables = _validate(tree, allowed, read)

    _rewrite(tree, read=read, geographic=geographic)
    try:
        out = tree.sql(dialect="duckdb", comments=False, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        raise QueryRefused(f"this query cannot be translated to DuckDB: {_first_line(exc)}") from exc

    # Belt and braces: what we return must pass the same checks as DuckDB SQL.
    try:
        again = _parse_one(out, "duckdb")
        checked = _validate(again, allowed, "duckdb")
    except QueryRefused as exc:
        raise QueryRefused(f"this query cannot be translated safely to DuckDB: {exc}") from exc
    if checked != read_tables:
        raise QueryRefused("this query cannot be translated safely to DuckDB: its tables changed")
    return PreparedQuery(sql=out, tables=tuple(sorted(read_tables)))


# --------------------------------------------------------------------------- parsing


def _normalize_allowed(tables: Iterable[str]) -> frozenset[str]:
    if isinstance(tables, str):
        raise TypeError("tables must be an iterable of 'schema.table' names, not a string")
    out = set()
    for name in tables:
        parts = _fold(name.strip()).split(".")
        if len(parts) == 3 and parts[0] == CATALOG_NAME:
            parts = parts[1:]
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"allowed tables are 'schema.table' names, got {name!r}")
        out.add(".".join(parts))
    return frozenset(out)


def _normalize_dialect(dialect: str) -> str:
    name = _fold(str(dialect or "").strip())
    name = DIALECT_ALIASES.get(name, name)
    if name not in SUPPORTED_DIALECTS:
        raise QueryRefused(
            f"unknown SQL dialect {dialect!r}; supported dialects: {', '.join(SUPPORTED_DIALECTS)}"
        )
    return name


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _parse_one(sql: str, read: str) -> exp.Expr:
    try:
        tokens = sqlglot.tokenize(sql, read=read)
    except SqlglotError as exc:  # TokenError: unterminated string or comment, ...
        raise QueryRefused(f"could not parse the query as {read} SQL: {_first_line(exc)}") from exc

    # Count statements on tokens (strings and comments are already folded), so a
    # second statement is reported as such even when sqlglot cannot parse it.
    statements: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            statements.append([])
        else:
            statements[-1].append(token)
    statements = [s for s in statements if s]
    if not statements:
        raise QueryRefused("the query is empty: send one SELECT statement")
    if len(statements) > 1:
        first_words = ", ".join(s[0].text.upper() for s in statements[:5])
        raise QueryRefused(
            f"only one statement per query is allowed; got {len(statements)} ({first_words})"
        )

    try:
        parsed = [
            s for s in sqlglot.parse(sql, read=read)
            # None: empty statement; Semicolon: a comment after the last ";"
            if s is not None and not isinstance(s, exp.Semicolon)
        ]
    except ParseError as exc:
        keyword = statements[0][0].text.upper()
        if keyword in _NON_QUERY_KEYWORDS:
            raise QueryRefused(f"{keyword} statements are not allowed: {READ_ONLY_HINT}") from exc
        raise QueryRefused(f"could not parse the query as {read} SQL: {_parse_message(exc)}") from exc
    except SqlglotError as exc:
        raise QueryRefused(f"could not parse the query as {read} SQL: {_first_line(exc)}") from exc
    except RecursionError as exc:
        raise QueryRefused("the query is nested too deeply") from exc
    if len(parsed) != 1:
        raise QueryRefused("only one statement per query is allowed")
    return parsed[0]


def _parse_message(exc: ParseError) -> str:
    if exc.errors:
        err = exc.errors[0]
        where = f" at line {err.get('line')}, column {err.get('col')}" if err.get("line") else ""
        highlight = f" near {err['highlight']!r}" if err.get("highlight") else ""
        return f"{err.get('description') or 'syntax error'}{highlight}{where}"
    return _first_line(exc)


def _statement_kind(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        head = str(node.this or "").upper()
        rest = node.expression.name if isinstance(node.expression, exp.Expr) else str(node.args.get("expression") or "")
        if head in ("CREATE", "DROP", "ALTER", "SHOW", "EXPORT", "IMPORT", "FORCE") and rest.split():
            return f"{head} {rest.split()[0].upper()}"
        return head or "COMMAND"
    if isinstance(node, (exp.Create, exp.Drop, exp.Alter)):
        verb = type(node).__name__.upper()
        kind = str(node.args.get("kind") or "").upper()
        as_query = " AS" if kind == "TABLE" and isinstance(node.expression, exp.Query) else ""
        return f"{verb} {kind}{as_query}".strip() if kind else verb
    if isinstance(node, (exp.Select, exp.SetOperation, exp.Subquery)):
        return "SELECT"
    if isinstance(node, (exp.Column, exp.Var, exp.Identifier)):
        return node.name.upper()  # e.g. CHECKPOINT parses as a bare column
    name = type(node).__name__
    return _STATEMENT_NAMES.get(name, name.upper())


# --------------------------------------------------------------------------- validation


def _validate(tree: exp.Expr, allowed: frozenset[str], read: str) -> frozenset[str]:
    """Raise QueryRefused unless ``tree`` is an allowed query; return the tables read."""
    if not isinstance(tree, (exp.Select, exp.SetOperation, exp.Subquery)):
        kind = _statement_kind(tree)
        raise QueryRefused(f"{kind} statements are not allowed: {READ_ONLY_HINT}")

    for node in tree.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            kind = _statement_kind(node)
            if isinstance(node, exp.Into):
                raise QueryRefused(f"SELECT ... INTO is not allowed: {READ_ONLY_HINT}; drop the INTO clause")
            raise QueryRefused(f"{kind} is not allowed inside a query: {READ_ONLY_HINT}")
        if isinstance(node, exp.Query) and not isinstance(node, (exp.Select, exp.SetOperation, exp.Subquery)):
            raise QueryRefused(f"{_statement_kind(node)} is not allowed inside a query: {READ_ONLY_HINT}")
        if isinstance(node, _VARIABLE_NODES):
            raise QueryRefused(
                f"variables and parameters ({node.sql(dialect=read)[:40]}) are not allowed: "
                "write the values into the query"
            )

    found: set[str] = set()
    _check_tables(tree, frozenset(), allowed, found)
    _check_functions(tree)
    _check_units(tree)
    return frozenset(found)


def _check_tables(node: exp.Expr, ctes: frozenset[str], allowed: frozenset[str], found: set[str]) -> None:
    """Walk ``node`` with the CTE names visible at each point (SQL scoping rules)."""
    with_ = node.args.get("with_") if isinstance(node, exp.Expr) else None
    if isinstance(with_, exp.With):
        recursive = bool(with_.args.get("recursive"))
        names = set(ctes)
        for cte in with_.expressions:
            name = _fold(cte.alias_or_name)
            # a CTE sees the ones before it, and itself only in WITH RECURSIVE
            _check_tables(cte, frozenset(names | {name}) if recursive else frozenset(names), allowed, found)
            names.add(name)
        ctes = frozenset(names)

    if isinstance(node, (exp.From, exp.Join)):
        _check_from_item(node.this)
    elif isinstance(node, exp.Lateral):
        if not isinstance(node.this, (exp.Subquery, exp.Unnest, exp.Explode)):
            _refuse_from_item(node.this)
    elif isinstance(node, exp.Table):
        ref = _resolve_table(node, ctes, allowed)
        if ref:
            found.add(ref)

    for child in node.iter_expressions():
        if child is with_:
            continue
        _check_tables(child, ctes, allowed, found)


def _check_from_item(item: exp.Expr | None) -> None:
    if isinstance(item, (exp.Table, exp.Subquery, exp.Values, exp.Unnest, exp.Lateral)):
        return
    _refuse_from_item(item)


def _refuse_from_item(item: exp.Expr | None) -> None:
    if isinstance(item, exp.Func):
        _refuse_table_function(item)
    shown = item.sql(dialect="duckdb")[:80] if isinstance(item, exp.Expr) else "?"
    raise QueryRefused(f"{shown!r} cannot be used in FROM: only catalog tables can be queried; {TABLE_HINT}")


def _refuse_table_function(func: exp.Func) -> None:
    name = _func_name(func)
    if _reads_files(name):
        raise QueryRefused(
            f"reading files is not allowed: table function {name}() is refused; "
            f"query catalog tables instead ({TABLE_HINT})"
        )
    raise QueryRefused(f"table function {name}() is not allowed: only catalog tables can be queried; {TABLE_HINT}")


def _reads_files(name: str) -> bool:
    return (
        name in _FILE_FUNCTIONS
        or name.startswith(("read_", "st_read"))
        or name.endswith(("_scan", "_scan_auto"))
    )


def _resolve_table(table: exp.Table, ctes: frozenset[str], allowed: frozenset[str]) -> str | None:
    """The "schema.table" a table reference reads, None for a CTE; refuse anything else."""
    this = table.this
    if isinstance(this, exp.Func):
        _refuse_table_function(this)
    parts = [table.args.get(k) for k in ("catalog", "db", "this")]
    if not isinstance(this, exp.Identifier) or not all(p is None or isinstance(p, exp.Identifier) for p in parts):
        raise QueryRefused(f"{table.sql(dialect='duckdb')[:80]!r} is not a catalog table; {TABLE_HINT}")
    if any(table.args.get(k) for k in _FILE_TABLE_ARGS):
        raise QueryRefused("reading files is not allowed: query catalog tables instead")
    if any(table.args.get(k) for k in _TIME_TRAVEL_ARGS):
        raise QueryRefused(
            "time travel (AT / FOR SYSTEM_TIME / CHANGES) is not allowed: queries read the current data"
        )

    raw_name, raw_db, raw_catalog = this.name, table.db, table.catalog
    name, db, catalog = _fold(raw_name), _fold(raw_db), _fold(raw_catalog)
    shown = ".".join(p for p in (raw_catalog, raw_db, raw_name) if p)

    if not db and not catalog and name in ctes:
        return None
    if f"{db}.{name}" not in allowed and _FILE_LIKE.search(raw_name):
        raise QueryRefused(f"reading files is not allowed ({raw_name!r}): query catalog tables instead")
    if not db and not catalog:
        if name.startswith(_SYSTEM_PREFIXES) or name in _SYSTEM_SCHEMAS:
            raise QueryRefused(f"system table {shown} is not available: only catalog datasets can be queried")
        suggestion = [t for t in sorted(allowed) if t.split(".")[1] == name]
        hint = f"; did you mean {suggestion[0]}?" if suggestion else ""
        raise QueryRefused(f"unknown table {raw_name!r}: {TABLE_HINT}{hint}")

    if catalog and catalog != CATALOG_NAME:
        raise QueryRefused(
            f"database {raw_catalog!r} is not available: write <department>.<dataset> "
            f"or {CATALOG_NAME}.<department>.<dataset>"
        )
    key = f"{db}.{name}"
    if key in allowed:
        return key
    if db in _SYSTEM_SCHEMAS or db.startswith(_SYSTEM_PREFIXES) or name.startswith(_SYSTEM_PREFIXES):
        raise QueryRefused(f"system table {shown} is not available: only catalog datasets can be queried")
    close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.8)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise QueryRefused(f"table {shown} is not in the catalog or you may not read it{hint}")


def _func_name(func: exp.Func) -> str:
    if isinstance(func, (exp.Anonymous, exp.AnonymousAggFunc, exp.CombinedAggFunc, exp.ParameterizedAgg)):
        return _fold(func.name)
    return _fold(type(func).sql_name())


# Date and interval units: sqlglot keeps a unit as a bare word (exp.Var) that the DuckDB generator writes
# out as it is, so a unit must be one of these words (or a quoted string, which is escaped as a value).
# tsql abbreviations (dd, mi, ...) are already the full word when sqlglot parses them.
DATE_UNITS = frozenset({
    "MILLENNIUM", "MILLENNIA", "CENTURY", "CENTURIES", "DECADE", "DECADES", "YEAR", "YEARS", "ISOYEAR",
    "QUARTER", "QUARTERS", "MONTH", "MONTHS", "WEEK", "WEEKS", "ISOWEEK", "DAY", "DAYS", "HOUR", "HOURS",
    "MINUTE", "MINUTES", "SECOND", "SECONDS", "MILLISECOND", "MILLISECONDS", "MICROSECOND", "MICROSECONDS",
    "NANOSECOND", "NANOSECONDS", "EPOCH", "DOW", "DOY", "ISODOW", "DAYOFWEEK", "DAYOFYEAR", "DAYOFMONTH",
    "WEEKDAY", "WEEKOFYEAR", "YEARWEEK", "JULIAN", "TIMEZONE", "TIMEZONE_HOUR", "TIMEZONE_MINUTE",
})


# SQL Server's abbreviations, as SQL Server reads them
UNIT_ABBREVIATIONS = {
    "YY": "YEAR", "YYYY": "YEAR", "QQ": "QUARTER", "Q": "QUARTER", "MM": "MONTH", "M": "MONTH",
    "DY": "DAYOFYEAR", "Y": "DAYOFYEAR", "DD": "DAY", "D": "DAY", "WK": "WEEK", "WW": "WEEK", "DW": "DAYOFWEEK",
    "HH": "HOUR", "MI": "MINUTE", "N": "MINUTE", "SS": "SECOND", "S": "SECOND", "MS": "MILLISECOND",
    "MCS": "MICROSECOND", "NS": "NANOSECOND",
}


def _check_units(tree: exp.Expr) -> None:
    """Every date/interval unit is an allow-listed word, rebuilt as a fresh node; refuse anything else."""
    for node in list(tree.walk()):
        slots = ["unit"] + (["this"] if isinstance(node, exp.Extract) else [])
        for slot in slots:
            unit = node.args.get(slot)
            if isinstance(unit, exp.IntervalSpan):
                for key in ("this", "expression"):
                    unit.set(key, _unit(unit.args.get(key)))
            elif isinstance(unit, exp.Var):
                node.set(slot, _unit(unit))


def _unit(unit: exp.Expr | None) -> exp.Var:
    word = unit.name.upper() if isinstance(unit, exp.Var) else ""
    word = UNIT_ABBREVIATIONS.get(word, word)
    if word not in DATE_UNITS:
        shown = unit.sql(dialect="duckdb")[:40] if isinstance(unit, exp.Expr) else "?"
        raise QueryRefused(f"{shown!r} is not a date or time unit: use one of day, week, month, year, hour, "
                           "minute, second, ...")
    return exp.Var(this=word)


def _check_functions(tree: exp.Expr) -> None:
    for func in tree.find_all(exp.Func):
        name = _func_name(func)
        if isinstance(func.parent, exp.Dot) and func.arg_key == "expression":
            raise QueryRefused(
                f"qualified or method-style call .{name}() is not allowed: call {name}(...) directly"
            )
        if name in ALLOWED_FUNCTIONS:
            continue
        if _reads_files(name):
            raise QueryRefused(f"function {name} is not allowed in catalog queries: reading files is not allowed")
        raise QueryRefused(f"function {name} is not allowed in catalog queries")


# --------------------------------------------------------------------------- rewrites


def _is_geography(node: exp.Expr | None) -> bool:
    return (
        isinstance(node, (exp.Cast, exp.TryCast))
        and isinstance(node.to, exp.DataType)
        and node.to.is_type(exp.DType.GEOGRAPHY)
    )


def _strip_geography(node: exp.Expr) -> exp.Expr:
    while _is_geography(node):
        node = node.this
    return node


def _call(name: str, *args: exp.Expr) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _flip(node: exp.Expr) -> exp.Expr:
    """``node`` as [lat, lon], the order DuckDB's spheroid and sphere functions read, from the catalog's
    [lon, lat]; a node the user already flipped (an odd number of times) is left as it is."""
    node = _strip_geography(node)
    if _flips(node) % 2:
        return node
    return _call("ST_FlipCoordinates", node)


def _flips(node: exp.Expr) -> int:
    """How many ST_FlipCoordinates calls ``node`` is wrapped in."""
    count = 0
    while isinstance(node, exp.Anonymous) and _fold(node.name) == "st_flipcoordinates" and node.expressions:
        node, count = _strip_geography(node.expressions[0]), count + 1
    return count


def _as_geography(node: exp.Expr) -> exp.Cast:
    return exp.Cast(this=node, to=exp.DataType.build("geography"))


def _args(func: exp.Func) -> list[exp.Expr]:
    out: list[exp.Expr] = []
    for key in func.arg_types:
        value = func.args.get(key)
        if isinstance(value, list):
            out.extend(v for v in value if isinstance(v, exp.Expr))
        elif isinstance(value, exp.Expr):
            out.append(value)
    return out


_SPHEROID_MEASURES = {
    "st_area": "ST_Area_Spheroid",
    "st_length": "ST_Length_Spheroid",
    "st_perimeter": "ST_Perimeter_Spheroid",
}


# DuckDB's own metre functions: they read [lat, lon]; the positions of their geometry arguments
_LATLON_FUNCTIONS = {
    "st_area_spheroid": 1, "st_length_spheroid": 1, "st_perimeter_spheroid": 1,
    "st_distance_spheroid": 2, "st_dwithin_spheroid": 2, "st_distance_sphere": 2,
}
# MySQL 8 measures lon/lat (SRID 4326) geometries in metres on the spheroid
_MYSQL_GEOGRAPHIC = {"st_area": "ST_Area_Spheroid", "st_length": "ST_Length_Spheroid"}


def _is_false(node: exp.Expr | None) -> bool:
    return isinstance(node, exp.Boolean) and not node.this


def _rewrite_function(func: exp.Func, read: str, geographic: bool) -> exp.Expr:
    name = _func_name(func)
    args = _args(func)
    geography = any(_is_geography(a) for a in args)

    if name == "st_dwithin" and len(args) >= 3 and geography and geographic:
        # PostGIS ST_DWithin(geography, geography, metres) on lon/lat data
        return _call("ST_DWithin_Spheroid", _flip(args[0]), _flip(args[1]), args[2])
    if name == "st_distance" and len(args) >= 2 and geography and geographic:
        use_spheroid = args[2] if len(args) > 2 else None
        target = "ST_Distance_Sphere" if _is_false(use_spheroid) else "ST_Distance_Spheroid"
        return _call(target, _flip(args[0]), _flip(args[1]))
    if name in _SPHEROID_MEASURES and args and geography and geographic:
        return _call(_SPHEROID_MEASURES[name], _flip(args[0]))
    if name in ("st_distance_sphere", "st_distancesphere") and len(args) == 2 and read != "duckdb":
        # MySQL / PostGIS: metres between lon/lat points. Measured on the WGS 84 spheroid, the metres
        # the catalog promises in every dialect (the 6371 km sphere is up to 0.5 % off in Shanghai).
        if geographic:
            return _call("ST_Distance_Spheroid", _flip(args[0]), _flip(args[1]))
        return _call("ST_Distance", *(_strip_geography(a) for a in args))
    if name in _MYSQL_GEOGRAPHIC and len(args) == 1 and read == "mysql" and geographic:
        return _call(_MYSQL_GEOGRAPHIC[name], _flip(args[0]))
    if name in _LATLON_FUNCTIONS and isinstance(func, exp.Anonymous) and geographic \
            and len(args) >= _LATLON_FUNCTIONS[name]:
        # DuckDB's spheroid/sphere functions called by name, on the catalog's lon/lat: flipped first
        flipped = [_flip(a) if i < _LATLON_FUNCTIONS[name] else a for i, a in enumerate(args)]
        if all(new is old for new, old in zip(flipped, args)):
            return func
        return _call(func.name, *flipped)
    if name == "st_setsrid" and args:
        return args[0]
    if name == "st_geomfromtext" and len(args) == 2 and not isinstance(args[1], exp.Boolean):
        return _call("ST_GeomFromText", args[0])  # PostGIS (wkt, srid); DuckDB's 2nd arg is a flag
    if name in ("st_geogfromtext", "st_geographyfromtext") and args:
        return _as_geography(_call("ST_GeomFromText", args[0]))
    if name == "st_geogpoint" and len(args) == 2:
        return _as_geography(exp.StPoint(this=args[0], expression=args[1]))
    if name == "point" and len(args) == 2:
        return exp.StPoint(this=args[0], expression=args[1])  # MySQL POINT(x, y)
    return func


def _rewrite(tree: exp.Expr, *, read: str, geographic: bool) -> None:
    """Translate PostGIS/MySQL spatial idioms in place (bottom-up)."""

    def functions(node: exp.Expr) -> None:
        for child in list(node.iter_expressions()):
            functions(child)
        if isinstance(node, exp.Distance) and read in ("postgres", "redshift"):
            # PostGIS KNN operator a <-> b: the distance, as ST_Distance would compute it
            node = node.replace(_call("ST_Distance", node.this, node.expression))
        if isinstance(node, exp.Func):
            new = _rewrite_function(node, read, geographic)
            if new is not node:
                node.replace(new)

    def casts(node: exp.Expr) -> None:
        for child in list(node.iter_expressions()):
            casts(child)
        if _is_geography(node):
            node.replace(_strip_geography(node))  # DuckDB has no GEOGRAPHY type

    functions(tree)
    casts(tree)
