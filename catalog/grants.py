"""Consumers and their grants: who may read which dataset, up to which tier, until when.

A consumer is a department (a registered department name, e.g. ``water``) or
a named user (``user:alice``). A grant gives one consumer one dataset up to a
level (the highest column tier it may read in clear) until a date, inclusive.
An expired grant denies access until it is renewed.

Grants live in the catalog's metadata database beside the audit log
(``twinhub_grants``), not in the lake: changing a grant makes no catalog
version, and a hub whose metadata is in PostgreSQL shares its grants with
every machine that serves it, as it shares the log. Each change is audited
(catalog/audit.py) with who made it.

    >>> parse_consumer("user:alice", {"water"}).name
    'user:alice'
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass

import duckdb
from sqlglot import exp

from twinhub.catalog.guard import QueryRefused
from twinhub.catalog.lake import Lake, with_retry
from twinhub.standards.tiers import CLASSIFICATIONS

TIERS = CLASSIFICATIONS  # lowest to highest
LEVELS = TIERS[1:]  # what a grant may allow; public needs no grant
GRANTS_TABLE = "twinhub_grants"
GRANT_FIELDS = ("consumer", "dataset", "level", "until", "granted_by", "granted_at", "reason")  # all VARCHAR
USER_PREFIX = "user:"
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class AccessError(QueryRefused):
    """A consumer, dataset or grant that cannot be used: a refusal; ``str(e)`` says what to do."""


@dataclass(frozen=True)
class Consumer:
    name: str  # "water" or "user:alice"

    @property
    def department(self) -> str | None:
        return None if self.name.startswith(USER_PREFIX) else self.name

    @property
    def user(self) -> str | None:
        return self.name[len(USER_PREFIX):] if self.name.startswith(USER_PREFIX) else None


@dataclass(frozen=True)
class Grant:
    consumer: str
    dataset: str
    level: str
    until: dt.date  # the last day the grant is valid
    granted_by: str
    granted_at: str
    reason: str | None = None

    def active(self, today: dt.date) -> bool:
        return today <= self.until


def did_you_mean(value: str, choices: list[str] | set[str]) -> str:
    close = difflib.get_close_matches(value, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_consumer(text: str, departments: set[str]) -> Consumer:
    """A department among ``departments`` or ``user:NAME``; anything else is refused."""
    text = (text or "").strip()
    if text.startswith(USER_PREFIX):
        if not USER_NAME.match(text[len(USER_PREFIX):]):
            raise AccessError(f"consumer {text!r}: a user name is letters, digits and . _ @ - (e.g. user:alice)")
        return Consumer(text)
    if text in departments:
        return Consumer(text)
    known = ", ".join(sorted(departments)) or "none registered yet"
    raise AccessError(f"unknown consumer {text!r}{did_you_mean(text, departments)}: a consumer is a registered "
                      f"department ({known}) or a named user written user:NAME")


def parse_until(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(text))
    except ValueError:
        raise AccessError(f"--until {text!r}: write the last valid day as YYYY-MM-DD, e.g. 2027-06-30") from None


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise AccessError(f"--level {level!r}: choose one of {', '.join(LEVELS)} (public data needs no grant)")
    return level


def grants_table(lake: Lake) -> str:
    return lake.audit_table.rsplit(".", 1)[0] + "." + GRANTS_TABLE


def _table(lake: Lake) -> exp.Table:
    return exp.to_table(grants_table(lake))


def _where(**values: object) -> exp.Expr:
    """``a = ? AND b = ?`` for bound values."""
    return exp.and_(*(exp.column(k).eq(exp.Placeholder()) for k in values))


def read_grants(con: duckdb.DuckDBPyConnection, lake: Lake, consumer: str | None = None,
                dataset: str | None = None) -> list[Grant]:
    """Grants on an open connection (read-only is fine), optionally of one consumer and/or dataset."""
    try:
        wanted = {k: v for k, v in (("consumer", consumer), ("dataset", dataset)) if v is not None}
        select = exp.select(*GRANT_FIELDS).from_(_table(lake)).order_by("consumer", "dataset")
        if wanted:
            select = select.where(_where(**wanted))
        rows = con.execute(select.sql(dialect="duckdb"), list(wanted.values())).fetchall()
    except duckdb.CatalogException:  # no grant was ever given in this hub: the table does not exist yet
        return []
    return [Grant(c, d, lv, dt.date.fromisoformat(u), by, at, why) for c, d, lv, u, by, at, why in rows]


def list_grants(lake: Lake, consumer: str | None = None, dataset: str | None = None) -> list[Grant]:
    con = lake.connect(read_only=True)
    try:
        return read_grants(con, lake, consumer, dataset)
    finally:
        con.close()


def save_grant(lake: Lake, grant: Grant) -> Grant | None:
    """Write ``grant``, replacing the consumer's grant on that dataset; returns the one replaced."""
    con = lake.connect()
    try:
        schema = exp.Schema(this=_table(lake), expressions=[
            exp.ColumnDef(this=exp.to_identifier(f), kind=exp.DataType.build("VARCHAR")) for f in GRANT_FIELDS])
        with_retry(lambda: con.execute(exp.Create(this=schema, kind="TABLE", exists=True).sql(dialect="duckdb")))
        before = read_grants(con, lake, grant.consumer, grant.dataset)

        def write() -> None:
            con.execute("BEGIN")
            try:
                _delete(con, lake, grant.consumer, grant.dataset)
                row = exp.Tuple(expressions=[exp.Placeholder() for _ in GRANT_FIELDS])
                insert = exp.insert(exp.Values(expressions=[row]), _table(lake), columns=list(GRANT_FIELDS))
                con.execute(insert.sql(dialect="duckdb"), [grant.consumer, grant.dataset, grant.level,
                                                           grant.until.isoformat(), grant.granted_by,
                                                           grant.granted_at, grant.reason])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

        with_retry(write, what="the grants")
        return before[0] if before else None
    finally:
        con.close()


def delete_grant(lake: Lake, consumer: str, dataset: str) -> Grant:
    """Remove the consumer's grant on ``dataset``; refuse if there is none."""
    con = lake.connect()
    try:
        found = read_grants(con, lake, consumer, dataset)
        if not found:
            raise AccessError(no_grant_message(con, lake, consumer, dataset))
        with_retry(lambda: _delete(con, lake, consumer, dataset), what="the grants")
        return found[0]
    finally:
        con.close()


def _delete(con: duckdb.DuckDBPyConnection, lake: Lake, consumer: str, dataset: str) -> None:
    delete = exp.delete(_table(lake), where=_where(consumer=consumer, dataset=dataset))
    con.execute(delete.sql(dialect="duckdb"), [consumer, dataset])


def no_grant_message(con: duckdb.DuckDBPyConnection, lake: Lake, consumer: str, dataset: str) -> str:
    held = [g.dataset for g in read_grants(con, lake, consumer)]
    listed = f"; its grants: {', '.join(held)}" if held else "; it holds no grant"
    return f"{consumer} has no grant on {dataset}{listed} (twinhub grants list --consumer {consumer})"


def catalog_tables(lake: Lake) -> list[str]:
    """Every data table in the catalog (departments' datasets, city layers, derived), ``schema.table``."""
    con = lake.connect(read_only=True)
    try:
        return Lake.tables(con, include_meta=False)
    finally:
        con.close()


__all__ = ["AccessError", "Consumer", "Grant", "LEVELS", "TIERS", "check_level", "delete_grant",
           "did_you_mean", "list_grants", "parse_consumer", "parse_until", "read_grants", "save_grant"]
