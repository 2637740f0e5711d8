"""Protected forms of a column's values, for consumers below the column's tier.

- ``mask``: keep a little, star the rest (``138****5678``, ``3101**********002X``,
  ``张*``, ``l***@example.cn``), as a plain SQL expression;
- ``pseudonymize``: ``HMAC-SHA256(key, value)``, shortened, with the key from the
  environment variable ``TWINHUB_PSEUDONYM_KEY``. The same value always gives the
  same pseudonym (joins and counts still work), but without the key nobody can
  recover a phone number by hashing every possible number. The key lives only in
  a Python function registered on the connection (:func:`register_functions`):
  it never appears in SQL text, the audit log, the catalog or metadata;
- ``none``: there is no protected form: the value is withheld (NULL).

    >>> protect_sql('"phone"', "none")
    'CAST(NULL AS VARCHAR)'
"""

from __future__ import annotations

import hashlib
import hmac
import os

import duckdb
import pyarrow as pa

from twinhub.errors import UserError
from twinhub.standards.privacy import MASK_KEEP, MASK_KEEP_LONGER
from twinhub.standards.tiers import PROTECTIONS

KEY_ENV = "TWINHUB_PSEUDONYM_KEY"
PSEUDONYM_FUNCTION = "twinhub_pseudonym"
PSEUDONYM_HEX = 24  # 96 bits of the HMAC: collisions stay negligible for any city's dataset


class PseudonymKeyMissing(UserError, RuntimeError):
    """Pseudonymizing needs the key from the environment and it is not set."""


def pseudonym_key() -> bytes:
    key = os.environ.get(KEY_ENV, "")
    if not key:
        raise PseudonymKeyMissing(
            f"pseudonymizing needs a secret key: set the environment variable {KEY_ENV} "
            "(e.g. to the output of `python -c \"import secrets; print(secrets.token_hex(32))\"`) "
            "and keep it out of manifests and configuration files"
        )
    return key.encode("utf-8")


def pseudonym(value: str, key: bytes) -> str:
    """The pseudonym of ``value`` under ``key``: ``p_`` and the first hex digits of its HMAC-SHA256."""
    return "p_" + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]


def mask_sql(column_sql: str) -> str:
    """A SQL expression masking ``column_sql`` (cast to text) by the rule of ``standards.privacy.redact``."""
    v = f"CAST(({column_sql}) AS VARCHAR)"
    n = f"length({v})"
    cases = [f"WHEN contains({v}, '@') THEN left({v}, 1) || '***' || substr({v}, strpos({v}, '@'))"]
    for limit, head, tail in MASK_KEEP:
        cases.append(f"WHEN {n} <= {limit} THEN {_kept(v, n, head, tail)}")
    return f"CASE WHEN {v} IS NULL THEN NULL {' '.join(cases)} ELSE {_kept(v, n, *MASK_KEEP_LONGER)} END"


def _kept(v: str, n: str, head: int, tail: int) -> str:
    parts = ([f"left({v}, {head})"] if head else []) + [f"repeat('*', {n} - {head + tail})"]
    return " || ".join(parts + ([f"right({v}, {tail})"] if tail else []))


def protect_sql(column_sql: str, protection: str) -> str:
    """The SQL expression a consumer below the column's tier reads instead of ``column_sql``.

    ``pseudonymize`` calls the function :func:`register_functions` registers, and
    raises :class:`PseudonymKeyMissing` at once when the key is not set.
    """
    if protection == "mask":
        return mask_sql(column_sql)
    if protection == "pseudonymize":
        pseudonym_key()
        return f"{PSEUDONYM_FUNCTION}(CAST(({column_sql}) AS VARCHAR))"
    if protection == "none":
        return "CAST(NULL AS VARCHAR)"
    raise ValueError(f"unknown protection {protection!r}: use one of {', '.join(PROTECTIONS)}")


def register_functions(con: duckdb.DuckDBPyConnection) -> None:
    """Register ``twinhub_pseudonym(VARCHAR)`` on ``con``, when the key is set.

    The key is read here and kept in the function's closure only. Works on a
    connection whose configuration is locked (catalog/query.py).
    """
    if not os.environ.get(KEY_ENV):
        return  # protect_sql refuses pseudonymize with a clear message
    key = pseudonym_key()

    def hashed(values: pa.Array) -> pa.Array:
        return pa.array([None if v is None else pseudonym(v, key) for v in values.to_pylist()], pa.string())

    con.create_function(PSEUDONYM_FUNCTION, hashed, ["VARCHAR"], "VARCHAR", type="arrow",
                        side_effects=False)
