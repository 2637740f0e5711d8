"""Which catalog columns a guarded query reads: the audit's record and the sandbox's contents.

sqlglot qualifies the query against the tables' schemas (every column resolved
to the table it comes from, through aliases, subqueries, CTEs, joins, set
operations and ``*``). Three shapes name no column and read them all:

* a table's row as a value, ``SELECT t FROM tbl t``;
* ``COLUMNS(*)`` / ``COLUMNS('regex')`` and a ``*`` qualify leaves as it is;
* a column sqlglot cannot place (it may be any column of the query's tables).

Each counts every column of the tables concerned, so the result is never less
than what the query reads. The sandbox (catalog/sandbox.py) holds only these
columns: a column this module missed is not there to read. A query that
cannot be qualified at all is refused.

    >>> columns_read("SELECT t FROM w.p AS t", {"w.p": {"a": "INT", "b": "INT"}})
    {'w.p': ['a', 'b']}
"""

from __future__ import annotations

import string

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope

from twinhub.catalog.guard import QueryRefused

_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _fold(name: str) -> str:
    return name.translate(_ASCII_FOLD)


def columns_read(sql: str, schemas: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """{"schema.table": [columns it reads, in table order]} for each of ``schemas``' tables ``sql`` reads.

    Raise QueryRefused when the query cannot be resolved column by column.
    """
    names = {_fold(t): t for t in schemas}
    columns = {t: {_fold(c): c for c in cols} for t, cols in schemas.items()}
    try:
        tree = qualify(sqlglot.parse_one(sql, read="duckdb"), schema=_nested(schemas), dialect="duckdb",
                       validate_qualify_columns=False, quote_identifiers=False)
        scopes = list(traverse_scope(tree))
    except (SqlglotError, RecursionError, KeyError, ValueError) as exc:
        raise QueryRefused(f"this query could not be resolved column by column ({str(exc)[:120]}); "
                           "name each column with its table and try again") from exc
    found: dict[str, set[str]] = {}
    every = {names[k] for k in (_table_key(s) for sc in scopes for s in sc.sources.values()) if k in names}

    def add(table: str, column: str | None = None) -> None:
        chosen = found.setdefault(table, set())
        chosen.update(schemas[table] if column is None else [column])

    for scope in scopes:
        for source in scope.sources.values():
            key = _table_key(source)
            if key in names:
                found.setdefault(names[key], set())  # read, even if no column of it is (count(*))
        for column in scope.columns:
            source = _source(scope, column.table) if column.table else None
            key = _table_key(source)
            if key in names and _fold(column.name) in columns[names[key]]:
                add(names[key], columns[names[key]][_fold(column.name)])
            elif key in names or isinstance(source, Scope):
                continue  # not a column of it (DuckDB will say so), or a subquery's: its own scope counts
            elif _row_reference(scope, column):
                add(names[_table_key(_source(scope, column.name))])
            else:  # cannot be placed: any column of any table of the query
                for table in every:
                    add(table)
        for row in _own(scope, exp.TableColumn):  # SELECT t FROM tbl t (sqlglot's TableColumn)
            key = _table_key(_source(scope, row.name))
            if key in names:
                add(names[key])
        if _reads_everything(scope):
            for source in scope.sources.values():
                if _table_key(source) in names:
                    add(names[_table_key(source)])
    return {t: [c for c in schemas[t] if c in found[t]] for t in sorted(found)}


def _nested(schemas: dict[str, dict[str, str]]) -> dict[str, dict[str, dict[str, str]]]:
    nested: dict[str, dict[str, dict[str, str]]] = {}
    for name, columns in schemas.items():
        schema, table = name.split(".", 1)
        nested.setdefault(schema, {})[table] = columns
    return nested


def _table_key(source: object) -> str | None:
    if isinstance(source, exp.Table) and source.db and source.name:
        return _fold(f"{source.db}.{source.name}")
    return None


def _source(scope: Scope, name: str) -> object:
    """The source ``name`` refers to in ``scope`` or an enclosing scope (correlated subqueries)."""
    while scope is not None:
        if name in scope.sources:
            return scope.sources[name]
        scope = scope.parent
    return None


def _row_reference(scope: Scope, column: exp.Column) -> bool:
    """``SELECT t FROM tbl t``: an unqualified name that is a table's alias is that table's whole row."""
    return not column.table and _table_key(_source(scope, column.name)) is not None


def _reads_everything(scope: Scope) -> bool:
    """``COLUMNS(...)`` or a ``*`` left in this scope's own expressions reads every column of its tables
    (not the ``*`` of ``count(*)``)."""
    for node in _own(scope, exp.Star, exp.Columns, exp.Anonymous):
        if isinstance(node, exp.Anonymous) and _fold(node.name) != "columns":
            continue
        if isinstance(node, exp.Star) and isinstance(node.parent, exp.Func) and not _is_columns(node.parent):
            continue
        return True
    return False


def _is_columns(node: exp.Expr) -> bool:
    return isinstance(node, exp.Columns) or (isinstance(node, exp.Anonymous) and _fold(node.name) == "columns")


def _own(scope: Scope, *kinds: type) -> list[exp.Expr]:
    """Nodes of ``kinds`` in this scope's own SELECT (not in its subqueries)."""
    return [n for n in scope.expression.find_all(*kinds) if _scope_of(n) is scope.expression]


def _scope_of(node: exp.Expr) -> exp.Expr | None:
    parent = node.parent
    while parent is not None and not isinstance(parent, (exp.Select, exp.SetOperation)):
        parent = parent.parent
    return parent
