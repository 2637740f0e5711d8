"""Column-level enforcement of a consumer's access on guarded DuckDB SQL.

Two steps, both on sqlglot's qualified tree (every column resolved to the
table it comes from, through aliases, subqueries, CTEs, joins, set operations
and ``SELECT *``):

1. **Check**: every catalog column the query uses, anywhere (select list,
   WHERE, JOIN ON, GROUP BY, ORDER BY, inside subqueries and CTEs), is looked
   up in the consumer's :class:`~catalog.access.Access`; a blocked one is a
   refusal naming the column and the grant that would allow it.
2. **Contents**: :func:`sandbox_tables` gives the query sandbox
   (catalog/sandbox.py) one table per catalog table read, projecting only
   what the consumer may see of the columns read: clear columns as they are,
   protected ones through catalog/masking.py's ``protect_sql``, blocked ones
   not at all (and, for a city layer, only the readable inputs' rows).
   Whatever the check might not see (a row referenced as a struct,
   ``COLUMNS(...)``, a guard bypass) can then only reach those tables.
   :func:`enforce` is the same rule as a rewrite of one query (each limited
   table replaced by such a subquery), for callers without a sandbox.

    >>> from twinhub.catalog.access import Decision
    >>> decide = lambda t, c: Decision("blocked", reason=f"no {c}") if c == "phone" else Decision("clear")
    >>> enforce("SELECT name FROM h.p", {"h.p": {"name": "VARCHAR", "phone": "VARCHAR"}}, decide)
    'SELECT name FROM (SELECT "name" FROM h.p) AS "p"'
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import traverse_scope

from twinhub.catalog.access import BLOCKED, CLEAR, PROTECTED, Access, Decision, load_tiers, stricter
from twinhub.catalog.grants import Consumer, read_grants
from twinhub.catalog.guard import QueryRefused
from twinhub.catalog.lake import ALIAS, Lake
from twinhub.catalog.sandbox import SandboxTable, table_select

Decide = Callable[[str, str], Decision]
Protect = Callable[[str, str], str]  # (column SQL, protection) -> SQL of the protected value
TABLE = "*"  # decide(table, TABLE): the table as a whole
_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
KEPT_TABLE_ARGS = frozenset({"this", "db", "catalog", "alias", "sample"})


def enforce(sql: str, schemas: dict[str, dict[str, str]], decide: Decide, protect: Protect | None = None) -> str:
    """``sql`` (guarded DuckDB SQL) as the consumer may run it; raise QueryRefused if it uses a blocked column.

    ``schemas`` is {"schema.table": {column: type}} of the tables ``sql`` reads.
    Returns ``sql`` unchanged when the consumer reads every column of them in clear.
    """
    decisions = check(sql, schemas, decide, protect)
    limited = {t for t, d in decisions.items() if any(x.kind != CLEAR for x in d.values())}
    if not limited:
        return sql
    tree = _parse(sql)
    for table in list(tree.find_all(exp.Table)):
        name = _fold(_table_name(table) or "")  # HEALTH.Care_Contacts is health.care_contacts
        if name in limited:
            table.replace(_restricted_view(table, decisions[name], _of(protect, name)))
    for column in tree.find_all(exp.Column):  # water.p.name -> p.name: the subquery keeps the table's name
        if _fold(f"{column.db}.{column.table}") in limited:
            column.set("db", None)
            column.set("catalog", None)
    return tree.sql(dialect="duckdb")


def check(sql: str, schemas: dict[str, dict[str, str]], decide: Decide,
          protect: Protect | None = None) -> dict[str, dict[str, Decision]]:
    """Each column's decision for the consumer; raise QueryRefused if ``sql`` uses a blocked column
    anywhere, or reads a table of which nothing is readable (even ``count(*)``)."""
    decisions = {t: {c: _protectable(t, c, decide(t, c), _of(protect, t)) for c in columns}
                 for t, columns in schemas.items()}
    limited = {t for t, d in decisions.items() if any(x.kind != CLEAR for x in d.values())}
    if not limited:
        return decisions
    tree = _parse(sql)
    _check(_qualified(tree.copy(), schemas), decisions, _star_hint(tree))
    for table in sorted(limited):  # nothing of it readable, e.g. count(*) without a grant
        if all(d.kind == BLOCKED for d in decisions[table].values()):
            raise QueryRefused(decide(table, TABLE).reason)
    return decisions


def sandbox_tables(reads: dict[str, list[str]], decisions: dict[str, dict[str, Decision]] | None = None,
                   rows: Callable[[str], list[str] | None] | None = None,
                   protect: Protect | None = None) -> list[SandboxTable]:
    """The sandbox's tables for a query reading ``reads`` ({table: columns}): per table the columns read,
    clear or in their protected form (blocked ones left out), and, for a city layer, only the rows of
    the inputs ``rows(table)`` names (``None``: every row). Without ``decisions`` (the local steward)
    every column is clear."""
    out = []
    for table, columns in reads.items():
        projections = []
        for column in columns:
            decision = (decisions or {}).get(table, {}).get(column, Decision(CLEAR))
            ident = exp.to_identifier(column, quoted=True)
            if decision.kind == CLEAR:
                projections.append(exp.column(ident))
            elif decision.kind == PROTECTED:
                projections.append(exp.alias_(_protected(ident.sql("duckdb"), decision, _of(protect, table)), ident))
        inputs = rows(table) if rows is not None else None
        out.append(SandboxTable(table, table_select(table, projections, None if inputs is None
                                                    else _from_inputs(inputs))))
    return out


def _from_inputs(inputs: list[str]) -> exp.Expr:
    """``department || '.' || dataset IN ('water.p', ...)``: a city layer's rows from these inputs only."""
    if not inputs:
        return exp.false()
    origin = exp.DPipe(this=exp.DPipe(this=exp.column(exp.to_identifier("department", quoted=True)),
                                      expression=exp.Literal.string(".")),
                       expression=exp.column(exp.to_identifier("dataset", quoted=True)))
    return exp.In(this=origin, expressions=[exp.Literal.string(i) for i in inputs])


def _parse(sql: str) -> exp.Expr:
    tree = sqlglot.parse_one(sql, read="duckdb")
    for table in tree.find_all(exp.Table):
        if table.catalog.lower() == ALIAS:  # lake.<department>.<dataset> is <department>.<dataset>
            table.set("catalog", None)
    return tree


def _qualified(tree: exp.Expr, schemas: dict[str, dict[str, str]]) -> exp.Expr:
    """``tree`` with every column resolved to its source (the user's output names may change: check only)."""
    nested: dict[str, dict[str, dict[str, str]]] = {}
    for name, columns in schemas.items():
        schema, table = name.split(".", 1)
        nested.setdefault(schema, {})[table] = columns
    try:
        return qualify(tree, schema=nested, dialect="duckdb", validate_qualify_columns=False)
    except (SqlglotError, RecursionError) as exc:
        raise QueryRefused(f"this query could not be checked column by column ({str(exc)[:120]}); "
                           "name each column with its table and try again") from exc


def _star_hint(tree: exp.Expr) -> str:
    stars = [s for s in tree.find_all(exp.Star) if isinstance(s.parent, (exp.Select, exp.Column))]
    return " (SELECT * uses every column: name the columns you need instead)" if stars else ""


def _fold(name: str) -> str:
    """Lower-case ASCII letters only: DuckDB matches names case-insensitively, quoted or not (as the guard)."""
    return name.translate(_ASCII_FOLD)


def _table_name(table: exp.Table) -> str | None:
    return f"{table.db}.{table.name}" if table.db and table.name else None


def _check(tree: exp.Expr, decisions: dict[str, dict[str, Decision]], hint: str = "") -> None:
    """Refuse the first blocked column used anywhere in ``tree``."""
    for scope in traverse_scope(tree):
        for column in scope.columns:
            source = scope.sources.get(column.table)
            if not isinstance(source, exp.Table):
                continue  # a CTE's or subquery's column: checked in that scope, on its own tables
            decision = decisions.get(_table_name(source) or "", {}).get(column.name)
            if decision is not None and decision.kind == BLOCKED:
                raise QueryRefused(decision.reason + hint)


def _restricted_view(table: exp.Table, decisions: dict[str, Decision], protect: Protect | None) -> exp.Subquery:
    """``(SELECT <what the consumer may see> FROM table) AS alias``."""
    extra = [k for k, v in table.args.items() if v and k not in KEPT_TABLE_ARGS]
    if extra:
        raise QueryRefused(f"{_table_name(table)}: {', '.join(extra)} cannot be combined with column-level access; "
                           "select from the table plainly")
    projections = []
    for column, decision in decisions.items():
        ident = exp.to_identifier(column, quoted=True)
        if decision.kind == CLEAR:
            projections.append(exp.column(ident))
        elif decision.kind == PROTECTED:
            projections.append(exp.alias_(_protected(ident.sql("duckdb"), decision, protect), ident))
    inner = exp.Table(this=table.this.copy(), db=table.args["db"].copy(), sample=table.args.get("sample"))
    alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name, quoted=True))
    return exp.Subquery(this=exp.select(*projections).from_(inner), alias=alias.copy())


def _of(protect: Protect | None, dataset: str) -> Protect | None:
    """``protect`` for the columns of ``dataset`` (each dataset pseudonymizes under its own key)."""
    return None if protect is None else lambda sql, how: protect(sql, how, dataset=dataset)


def _protectable(table: str, column: str, decision: Decision, protect: Protect | None) -> Decision:
    """A protected column whose protected form cannot be made here (no masking module, no pseudonym key)
    is blocked: a query using it is refused saying why; one that does not use it still runs."""
    if decision.kind != PROTECTED:
        return decision
    try:
        if protect is None:
            raise RuntimeError("column protection is not available in this twinhub")
        protect(exp.to_identifier(column, quoted=True).sql("duckdb"), decision.protection or "")
    except Exception as exc:  # e.g. masking.PseudonymKeyMissing: its message says what to set
        how = {"mask": "masked", "pseudonymize": "pseudonymized"}.get(decision.protection or "", "protected")
        return Decision(BLOCKED, reason=f"{table}.{column} can only be read {how} here, "
                                        f"and that is not possible: {exc}")
    return decision


def _protected(column_sql: str, decision: Decision, protect: Protect | None) -> exp.Expr:
    assert protect is not None  # _protectable blocked the column otherwise
    return sqlglot.parse_one(protect(column_sql, decision.protection or ""), read="duckdb")


@dataclass(frozen=True)
class AsConsumer:
    """A query made on behalf of ``consumer`` on ``today`` (the city's date; fixed in tests).

    ``derived_inputs`` maps each ``derived.<name>`` to the tables its SQL reads.
    """

    consumer: Consumer
    today: dt.date
    derived_inputs: dict[str, list[str]] = field(default_factory=dict)

    def access(self, con: duckdb.DuckDBPyConnection, lake: Lake, time_travel: bool = False) -> Access:
        """The consumer's access on ``con``; reading an earlier version (``time_travel``), each column
        has the stricter of its tiers then and now: a dataset graded up is graded up in its past too."""
        grants = read_grants(con, lake, consumer=self.consumer.name)
        tiers = load_tiers(con, self.derived_inputs)
        if time_travel:
            now = lake.connect(read_only=True)
            try:
                tiers = stricter(tiers, load_tiers(now, self.derived_inputs))
            finally:
                now.close()
        return Access(self.consumer, tiers, grants, self.today)


def _masking():
    """catalog/masking.py (protect_sql, register_functions), or None in a hub without column protection."""
    try:
        from twinhub.catalog import masking
    except ImportError:
        return None
    return masking
