"""API tokens: how a program (a GIS client, a dashboard) reads the hub as one consumer over HTTP.

A steward issues a token to a consumer (a department or ``user:NAME``) until a day. The token is
shown once, when issued: ``th_<id>_<secret>``. The hub keeps only its ``id`` (to list and revoke
it) and the SHA-256 of its secret, beside the grants in the catalog's metadata database
(``twinhub_tokens``), so a copy of the metadata reveals no usable token, and a hub whose metadata
is in PostgreSQL shares its tokens with every server that serves it. A request with a token reads
exactly what ``twinhub query --as CONSUMER`` reads (the consumer's grants); an expired, revoked or
unknown token is refused. Issuing and revoking are audited by id; the token itself is never
written anywhere by the hub.

    >>> parse_token("th_abc123def456_" + "x" * 43).id
    'abc123def456'
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import duckdb
from sqlglot import exp

from twinhub.catalog import audit
from twinhub.catalog.grants import AccessError, Consumer, grants_table
from twinhub.catalog.lake import Lake, with_retry
from twinhub.errors import UserError

TOKENS_TABLE = "twinhub_tokens"
TOKEN_COLUMNS = ("id VARCHAR, secret_sha256 VARCHAR, consumer VARCHAR, until VARCHAR, issued_by VARCHAR, "
                 "issued_at VARCHAR, note VARCHAR, revoked_by VARCHAR, revoked_at VARCHAR")
PREFIX = "th_"
SECRET_BYTES = 32
TOKEN = re.compile(r"^th_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")


class TokenRefused(UserError, PermissionError):
    """A token that is malformed, unknown, expired or revoked. The message never repeats the token."""


@dataclass(frozen=True)
class ParsedToken:
    id: str
    secret: str


@dataclass(frozen=True)
class Token:
    """A token as the hub keeps it: no secret, only the hash of one."""

    id: str
    consumer: str
    until: dt.date  # the last day it is valid
    issued_by: str
    issued_at: str
    note: str | None
    revoked_by: str | None = None
    revoked_at: str | None = None

    def state(self, today: dt.date) -> str:
        if self.revoked_at:
            return "revoked"
        return "active" if today <= self.until else "expired"


def parse_token(text: str) -> ParsedToken:
    match = TOKEN.match((text or "").strip())
    if not match:
        raise TokenRefused("not a twinhub token: tokens look like th_<12 letters and digits>_<43 characters>")
    return ParsedToken(match.group(1), match.group(2))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def tokens_table(lake: Lake) -> str:
    """The tokens table beside the grants, as a quoted identifier built by sqlglot (never pasted text)."""
    parts = grants_table(lake).split(".")[:-1] + [TOKENS_TABLE]
    return exp.table_(*[exp.to_identifier(p, quoted=True) for p in reversed(parts)]).sql("duckdb")


def _read(con: duckdb.DuckDBPyConnection, lake: Lake, token_id: str | None = None,
          consumer: str | None = None) -> list[tuple[Token, str]]:
    try:
        rows = con.execute(
            f"SELECT id, consumer, until, issued_by, issued_at, note, revoked_by, revoked_at, secret_sha256 "
            f"FROM {tokens_table(lake)} WHERE (? IS NULL OR id = ?) AND (? IS NULL OR consumer = ?) "
            "ORDER BY issued_at, id", [token_id, token_id, consumer, consumer]).fetchall()
    except duckdb.CatalogException:  # no token was ever issued in this hub
        return []
    return [(Token(i, c, dt.date.fromisoformat(u), by, at, note, rby, rat), digest)
            for i, c, u, by, at, note, rby, rat, digest in rows]


def issue_token(lake: Lake, consumer: Consumer, until: dt.date, today: dt.date, note: str | None = None,
                actor: str | None = None) -> tuple[str, Token]:
    """A new token for ``consumer`` valid through ``until``; returns the token text (shown once) and its record."""
    if until < today:
        raise AccessError(f"--until {until.isoformat()} is in the past: a token must be valid for at least a day")
    actor = actor or audit.current_actor()
    token_id = secrets.token_hex(6)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    record = Token(token_id, consumer.name, until, actor, now, note)
    con = lake.connect()
    try:
        with_retry(lambda: con.execute(f"CREATE TABLE IF NOT EXISTS {tokens_table(lake)} ({TOKEN_COLUMNS})"))
        with_retry(lambda: con.execute(
            f"INSERT INTO {tokens_table(lake)} VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
            [token_id, _digest(secret), consumer.name, until.isoformat(), actor, now, note]), what="the tokens")
    finally:
        con.close()
    audit.record(lake, audit.AuditEntry(action="token-issue", statement=f"issue token {token_id} to "
                                        f"{consumer.name} until {until.isoformat()}", consumer=consumer.name,
                                        actor=actor))
    return f"{PREFIX}{token_id}_{secret}", record


def list_tokens(lake: Lake, consumer: str | None = None) -> list[Token]:
    con = lake.connect(read_only=True)
    try:
        return [token for token, _ in _read(con, lake, consumer=consumer)]
    finally:
        con.close()


def revoke_token(lake: Lake, token_id: str, reason: str, actor: str | None = None) -> Token:
    """Revoke the token ``token_id`` (its id, as ``twinhub tokens list`` shows it: never the token itself)."""
    actor = actor or audit.current_actor()
    con = lake.connect()
    try:
        found = _read(con, lake, token_id=token_id)
        if not found:
            known = ", ".join(t.id for t, _ in _read(con, lake)) or "none issued"
            raise AccessError(f"no token with id {token_id!r}; tokens: {known} (twinhub tokens list)")
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        with_retry(lambda: con.execute(
            f"UPDATE {tokens_table(lake)} SET revoked_by = ?, revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            [actor, now, token_id]), what="the tokens")
    finally:
        con.close()
    token = found[0][0]
    audit.record(lake, audit.AuditEntry(action="token-revoke", statement=f"revoke token {token_id} of "
                                        f"{token.consumer}: {reason}", consumer=token.consumer, actor=actor))
    return Token(**{**token.__dict__, "revoked_by": actor, "revoked_at": now})


def consumer_of(lake: Lake, text: str, today: dt.date, con: duckdb.DuckDBPyConnection | None = None) -> Consumer:
    """The consumer a presented token reads as; refuse a malformed, unknown, revoked or expired token.

    The secret is compared with its stored hash in constant time; the refusal says why but never
    repeats the token, so a log of refusals leaks nothing usable."""
    parsed = parse_token(text)
    own = con is None
    con = con or lake.connect(read_only=True)
    try:
        found = _read(con, lake, token_id=parsed.id)
    finally:
        if own:
            con.close()
    if not found or not hmac.compare_digest(found[0][1], _digest(parsed.secret)):
        raise TokenRefused("unknown token: ask a steward for a new one (twinhub tokens issue)")
    token = found[0][0]
    state = token.state(today)
    if state != "active":
        raise TokenRefused(f"token {token.id} is {state}" + (f" since {token.revoked_at}" if token.revoked_at else
                                                              f" (valid through {token.until.isoformat()})"))
    return Consumer(token.consumer)
