"""The SQL a database source runs: a department's read-only query, checked in its own dialect.

``read_only_select`` parses ``source.query`` with sqlglot in the database's dialect
and accepts one query (a SELECT, or SELECTs joined by UNION/INTERSECT/EXCEPT) that
writes nothing: no second statement, no INSERT/UPDATE/DELETE/MERGE (not even in a
CTE), no ``SELECT ... INTO``, no ``FOR UPDATE``, no DDL. What runs is the query as
sqlglot reads it, generated back without comments, so what was checked is what runs
(MySQL executes ``/*! ... */`` comments; they are dropped). Nor may it reach past the
source's tables: functions that read or write the server's files, run programs, open
connections or run SQL given as text (``pg_read_file``, ``lo_import``, ``dblink``,
``query_to_xml``, ``LOAD_FILE``, ``sys_exec``...) and system catalogues (``pg_authid``,
``mysql.user``, ``information_schema``...) are refused. The session is also read-only on
the server and its account may not be privileged (connectors/db/drivers.py): give the hub a
read-only user.

>>> read_only_select("SELECT name, geom FROM parks WHERE open", "postgres").sql("postgres")
'SELECT name, geom FROM parks WHERE open'
>>> read_only_select("DELETE FROM parks", "postgres")
Traceback (most recent call last):
ValueError: only a read-only SELECT is allowed, not DELETE
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

WRITES = (exp.DML, exp.DDL, exp.Drop, exp.Alter, exp.Into, exp.Lock, exp.Command, exp.Set, exp.Use)
# functions that reach the server's files, programs, network or run SQL given as text (past this check)
SERVER_FUNCTIONS = frozenset({
    "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_ls_logdir", "pg_ls_waldir",
    "pg_ls_tmpdir", "pg_ls_archive_statusdir", "pg_ls_logicalsnapdir", "pg_ls_logicalmapdir", "pg_ls_replslotdir",
    "pg_file_write", "pg_file_rename", "pg_file_unlink", "pg_logdir_ls", "pg_reload_conf", "pg_terminate_backend",
    "pg_cancel_backend", "pg_rotate_logfile", "set_config", "current_setting", "pg_show_all_settings",
    "lo_import", "lo_export", "lo_get", "lo_open", "lo_from_bytea", "loread", "lo_put",
    "query_to_xml", "query_to_xml_and_xmlschema", "query_to_xmlschema", "cursor_to_xml", "table_to_xml",
    "table_to_xml_and_xmlschema", "schema_to_xml", "database_to_xml", "database_to_xml_and_xmlschema", "ts_stat",
    "load_file", "sys_exec", "sys_eval", "sys_get", "sys_set", "lib_mysqludf_sys_info",
})
SERVER_FUNCTION_PREFIXES = ("dblink", "pg_read_", "pg_ls_", "lo_", "pg_file_", "xp_")
# schemas holding the server's catalogues and accounts; PostgreSQL looks pg_* names up in pg_catalog first
CATALOG_SCHEMAS = {
    "postgres": frozenset({"pg_catalog", "information_schema", "pg_toast"}),
    "mysql": frozenset({"mysql", "information_schema", "performance_schema", "sys"}),
}
GEOMETRY_WKB = "twinhub_wkb"  # result columns the connector adds; names no department uses
GEOMETRY_SRID = "twinhub_srid"


def read_only_select(sql: str, dialect: str) -> exp.Query:
    """The parsed query if it is a single read-only SELECT; ValueError saying why not otherwise."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except ParseError as exc:
        raise ValueError(f"not valid {dialect} SQL: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise ValueError(f"give exactly one SELECT statement (found {len(statements)})")
    (query,) = statements
    if not isinstance(query, exp.Query) or isinstance(query, exp.Subquery):
        raise ValueError(f"only a read-only SELECT is allowed, not {query.key.upper()}")
    writes = [node for node in query.walk() if isinstance(node, WRITES)]
    if writes:
        what = "SELECT ... INTO" if isinstance(writes[0], exp.Into) else "FOR UPDATE/SHARE" if isinstance(writes[0], exp.Lock) else writes[0].key.upper()
        raise ValueError(f"only a read-only SELECT is allowed; the query contains {what}")
    refuse_server_reach(query, dialect)
    return query


def _function_name(node: exp.Func) -> str:
    return (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()


def refuse_server_reach(tree: exp.Expression, dialect: str) -> None:
    """ValueError if ``tree`` calls a server-side file, program, network or SQL-text function, or reads
    a system catalogue (``pg_authid``, ``mysql.user``, ``information_schema.user_privileges``...)."""
    for node in tree.walk():
        if isinstance(node, exp.Func):
            name = _function_name(node)
            if name in SERVER_FUNCTIONS or name.startswith(SERVER_FUNCTION_PREFIXES):
                raise ValueError(f"the query calls {name}(), a server-side function that reaches the database "
                                 "server's files, programs, settings or network; read tables only")
        if isinstance(node, exp.Table) and node.name:
            schema = node.db.lower()
            catalog_schemas = CATALOG_SCHEMAS.get(dialect, frozenset())
            system = schema in catalog_schemas or (dialect == "postgres" and not schema and node.name.lower().startswith("pg_"))
            if system:
                raise ValueError(f"the query reads {node.sql(dialect=dialect)}, a system catalogue of the server; "
                                 "read the department's own tables only")


def table_query(table: str, dialect: str) -> exp.Query:
    """``SELECT * FROM table`` for a (schema-qualified) table name in the dialect's quoting."""
    try:
        parsed = sqlglot.parse_one(table, into=exp.Table, read=dialect)
    except (ParseError, ValueError):
        parsed = None
    if not isinstance(parsed, exp.Table) or not parsed.name:
        raise ValueError(
            f"{table!r} is not a {dialect} table name (schema.table, quoted as {dialect} quotes names); "
            "to filter or join, write a query in source.query instead"
        )
    refuse_server_reach(parsed, dialect)
    return exp.select("*").from_(parsed)


def wrapped(query: exp.Query, columns: list[str] | None, geometry: str | None, dialect: str, wkb: exp.Expression | None = None) -> str:
    """The source query as a subquery, selecting ``columns`` (all when None) and the geometry as WKB and SRID."""
    inner = query.copy().subquery("twinhub_source")
    outputs: list[exp.Expression] = [exp.column(c, quoted=True) for c in columns] if columns is not None else [exp.Star()]
    if geometry:
        column = exp.column(geometry, quoted=True)
        outputs.append(exp.alias_(wkb or exp.Anonymous(this="ST_AsBinary", expressions=[column]), GEOMETRY_WKB))
        outputs.append(exp.alias_(exp.Anonymous(this="ST_SRID", expressions=[column.copy()]), GEOMETRY_SRID))
    return exp.select(*outputs).from_(inner).sql(dialect=dialect, comments=False)


def probe(query: exp.Query, dialect: str) -> str:
    """The query returning no rows: its result columns only."""
    return exp.select(exp.Star()).from_(query.copy().subquery("twinhub_source")).where(exp.false()).sql(dialect=dialect, comments=False)


def first_srid(query: exp.Query, geometry: str, dialect: str) -> str:
    """The SRID of the first non-null geometry."""
    column = exp.column(geometry, quoted=True)
    srid = exp.Anonymous(this="ST_SRID", expressions=[column])
    return (exp.select(srid).from_(query.copy().subquery("twinhub_source")).where(column.copy().is_(exp.null()).not_())
            .limit(1).sql(dialect=dialect, comments=False))


def watermark(query: exp.Query, column: str, dialect: str) -> str:
    """``COUNT(*)`` and ``MAX(column)`` of the query: a cheap fingerprint."""
    return (exp.select(exp.Count(this=exp.Star()), exp.Max(this=exp.column(column, quoted=True)))
            .from_(query.copy().subquery("twinhub_source")).sql(dialect=dialect, comments=False))
