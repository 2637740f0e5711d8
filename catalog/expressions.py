"""SQL expressions over one source's columns, checked with the query allow-list (manifests' derived fields).

A manifest may compute a field or a row filter with a DuckDB expression (twinhub/hub/derive.py). The
expression is parsed with sqlglot and refused unless it passes the catalog query guard's function
allow-list (catalog/guard.py: no file, network, setting or system functions) and, further, is a plain
row-wise expression::

    >>> parse_expression("TRY_CAST(面积 AS DOUBLE) * 1e6", columns=["面积"]).sql("duckdb")
    'TRY_CAST(面积 AS DOUBLE) * 1e6'
    >>> parse_expression("(SELECT count(*) FROM catalog.runs)", columns=["面积"])
    Traceback (most recent call last):
    ...
    twinhub.catalog.expressions.ExpressionRefused: subqueries are not allowed in an expression: ...

No statements, tables, subqueries, window or aggregate functions, parameters, or columns other than
the source's own. The SQL that comes out is generated from the checked tree and checked again; the
hub still evaluates it in a DuckDB with external access disabled (the second line, not the only one).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from twinhub.catalog import guard
from twinhub.errors import UserError

MAX_EXPRESSION_LENGTH = 4_000  # characters: a field's formula, not a program
MAX_NODES = 2_000  # parsed nodes; a deeply nested expression is refused before DuckDB binds it
ROW_WISE_HINT = "write a formula over one row's columns, e.g. TRY_CAST(面积 AS DOUBLE) * 1e6"


class ExpressionRefused(UserError, ValueError):
    """An expression the hub will not evaluate; ``str(e)`` says why and what to write instead."""


def parse_expression(text: str, columns: Sequence[str] | None = None,
                     reserved: Sequence[str] = ()) -> exp.Expr:
    """``text`` as a checked sqlglot tree; ``columns``: the source's column names (None: not checked).

    ``reserved``: name prefixes a column may not have (the hub's own derived columns). Raises
    :class:`ExpressionRefused`.
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionRefused("the expression is empty: " + ROW_WISE_HINT)
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionRefused(f"the expression is too long ({len(text):,} characters, at most "
                                f"{MAX_EXPRESSION_LENGTH:,}); compute it in the source instead")
    tree = _parse(text)
    _check(tree, columns, reserved)
    try:  # belt and braces: what DuckDB will read is checked as well
        out = tree.sql(dialect="duckdb", comments=False, unsupported_level=ErrorLevel.RAISE)
        again = _parse(out)
    except (SqlglotError, ExpressionRefused) as exc:
        raise ExpressionRefused(f"the expression cannot be written safely as DuckDB SQL: {exc}") from None
    _check(again, columns, reserved)
    return again


def _parse(text: str) -> exp.Expr:
    try:
        tree = guard._parse_one(text, "duckdb")  # one statement, counted on tokens; sqlglot's errors worded
    except guard.QueryRefused as exc:
        raise ExpressionRefused(str(exc).replace("the query", "the expression").replace("per query", "in an expression")) from None
    if isinstance(tree, (exp.Query, exp.Subquery)):
        raise ExpressionRefused("subqueries are not allowed in an expression: " + ROW_WISE_HINT)
    if isinstance(tree, (*guard._FORBIDDEN_NODES, exp.Command)) or not isinstance(tree, exp.Expr):
        raise ExpressionRefused(f"{guard._statement_kind(tree)} is a statement, not an expression: "
                                + ROW_WISE_HINT)
    return tree


def _check(tree: exp.Expr, columns: Sequence[str] | None, reserved: Sequence[str]) -> None:
    nodes = list(tree.walk())
    if len(nodes) > MAX_NODES:
        raise ExpressionRefused(f"the expression is too complex ({len(nodes):,} parts, at most {MAX_NODES:,})")
    for node in nodes:
        _check_node(node)
    try:
        guard._check_functions(tree)
    except guard.QueryRefused as exc:
        raise ExpressionRefused(str(exc).replace("in catalog queries", "in manifest expressions")) from None
    try:
        guard._check_units(tree)
    except guard.QueryRefused as exc:
        raise ExpressionRefused(str(exc)) from None
    _check_columns(tree, columns, reserved)


def _check_node(node: exp.Expr) -> None:
    if isinstance(node, (exp.Query, exp.Subquery, exp.Exists)):
        raise ExpressionRefused("subqueries are not allowed in an expression: " + ROW_WISE_HINT)
    if isinstance(node, (*guard._FORBIDDEN_NODES, exp.Command)):
        raise ExpressionRefused(f"{guard._statement_kind(node)} is not allowed in an expression: " + ROW_WISE_HINT)
    if isinstance(node, (exp.Table, exp.From, exp.Join, exp.Lateral)):
        raise ExpressionRefused("tables are not allowed in an expression: use the source's columns by name")
    if isinstance(node, (exp.Window, exp.WindowSpec)) or (isinstance(node, exp.Func) and _name(node) in guard._WINDOW):
        raise ExpressionRefused("window functions are not allowed in an expression: each row is computed on its own")
    if isinstance(node, exp.AggFunc) or (isinstance(node, exp.Func) and _name(node) in guard._AGGREGATES):
        raise ExpressionRefused(f"aggregate function {_name(node)}() is not allowed in an expression: "
                                "each row is computed on its own")
    if isinstance(node, guard._VARIABLE_NODES):
        raise ExpressionRefused("parameters and variables are not allowed in an expression: write the value")
    if isinstance(node, exp.Star):
        raise ExpressionRefused("* is not allowed in an expression: name the columns")


def _name(func: exp.Expr) -> str:
    return guard._func_name(func) if isinstance(func, exp.Func) else type(func).__name__.lower()


def _check_columns(tree: exp.Expr, columns: Sequence[str] | None, reserved: Sequence[str]) -> None:
    """Every column is one of the source's, unqualified; lambda parameters are the lambda's own."""
    for column in tree.find_all(exp.Column):
        if column.args.get("table") is not None or column.args.get("db") is not None:
            raise ExpressionRefused(f"{column.sql('duckdb')[:80]!r}: name a column alone, without a table "
                                    "(the expression reads one row of the source)")
        name = column.name
        if _lambda_parameter(column):
            continue
        if any(name.startswith(prefix) for prefix in reserved):
            raise ExpressionRefused(f"column {name!r} has a name the hub reserves for its own columns "
                                    f"({', '.join(p + '...' for p in reserved)}); rename it in the source")
        if columns is not None and name not in columns:
            raise ExpressionRefused(f"column {name!r} is not in the source" + did_you_mean(name, columns))


def _lambda_parameter(column: exp.Column) -> bool:
    parent = column.parent
    while parent is not None:
        if isinstance(parent, exp.Lambda) and any(p.name == column.name for p in parent.expressions):
            return True
        parent = parent.parent
    return False


def did_you_mean(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    if close:
        return f" (did you mean {close[0]!r}?)"
    shown = ", ".join(map(repr, list(choices)[:12]))
    return f" (the source's columns: {shown}{', ...' if len(choices) > 12 else ''})"
