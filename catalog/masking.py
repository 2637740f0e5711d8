"""Protected forms of a column's values, for consumers below the column's tier.

- ``mask``: as a plain SQL expression, the rule of ``standards.privacy.redact``: a value
  that is one e-mail address keeps its first letter and domain (``l***@example.cn``); a
  text holding phones, ID numbers, e-mail addresses or plates keeps its words with each of
  those masked (``电话138****5678``); any other value keeps a little of itself (``张*``);
- ``pseudonymize``: ``HMAC-SHA256(dataset key, value)``, shortened. The hub's key comes
  from the environment variable ``TWINHUB_PSEUDONYM_KEY`` (at least 32 random bytes,
  written as hex or base64) and each dataset pseudonymizes under its own key derived
  from it (HMAC of the dataset's id): the same value gives the same pseudonym within a
  dataset (joins and counts still work) but another one in another dataset, so two
  datasets' pseudonyms cannot be joined; without the key nobody can recover a phone
  number by hashing every possible number. The key lives only in a Python function
  registered on the connection (:func:`register_functions`): it never appears in SQL
  text, the audit log, the catalog or metadata;
- ``none``: there is no protected form: the value is withheld (NULL).

    >>> protect_sql('"phone"', "none")
    'CAST(NULL AS VARCHAR)'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

import duckdb
import pyarrow as pa

from twinhub.errors import UserError
from twinhub.standards.privacy import ANY_SPAN, EMAIL_VALUE, MASK_KEEP, MASK_KEEP_LONGER, MASK_SPANS
from twinhub.standards.tiers import PROTECTIONS

KEY_ENV = "TWINHUB_PSEUDONYM_KEY"
PSEUDONYM_FUNCTION = "twinhub_pseudonym"
PSEUDONYM_HEX = 24  # 96 bits of the HMAC: collisions stay negligible for any city's dataset
MIN_KEY_BYTES = 32
_KEY_HINT = ("set it to the output of `python -c \"import secrets; print(secrets.token_hex(32))\"` "
             "and keep it out of manifests and configuration files")


class PseudonymKeyMissing(UserError, RuntimeError):
    """Pseudonymizing needs the key from the environment and it is not set."""


class PseudonymKeyWeak(PseudonymKeyMissing):
    """The key is shorter than 32 bytes, or not written as hex or base64."""


def pseudonym_key() -> bytes:
    """The hub's key: at least 32 bytes, from ``TWINHUB_PSEUDONYM_KEY`` written as hex or base64."""
    text = os.environ.get(KEY_ENV, "").strip()
    if not text:
        raise PseudonymKeyMissing(f"pseudonymizing needs a secret key: set the environment variable {KEY_ENV}; "
                                  + _KEY_HINT)
    key = _decoded(text)
    if key is None or len(key) < MIN_KEY_BYTES:
        size = "is not written as hex or base64" if key is None else f"holds {len(key)} bytes"
        raise PseudonymKeyWeak(f"the environment variable {KEY_ENV} {size}; a pseudonym key needs at least "
                               f"{MIN_KEY_BYTES} random bytes: " + _KEY_HINT)
    return key


def _decoded(text: str) -> bytes | None:
    """``text`` as hex, else as base64 (standard or URL-safe); None when it is neither."""
    try:
        return bytes.fromhex(text)
    except ValueError:
        pass
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None


def dataset_key(key: bytes, dataset: str) -> bytes:
    """The key ``dataset`` pseudonymizes under: HMAC-SHA256 of its id under the hub's key."""
    return hmac.new(key, b"twinhub-pseudonym\x00" + dataset.encode("utf-8"), hashlib.sha256).digest()


def pseudonym(value: str, key: bytes) -> str:
    """The pseudonym of ``value`` under ``key`` (a dataset's key): ``p_`` and the first hex digits of its
    HMAC-SHA256."""
    return "p_" + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def mask_sql(column_sql: str) -> str:
    """A SQL expression masking ``column_sql`` (cast to text) by the rule of ``standards.privacy.redact``:
    a whole e-mail address, else the personal data found inside a text, else the value by its length."""
    v = f"CAST(({column_sql}) AS VARCHAR)"
    n = f"length({v})"
    spans = v
    for _, pattern, replacement in MASK_SPANS:
        spans = f"regexp_replace({spans}, {_literal(pattern)}, {_literal(replacement)}, 'g')"
    cases = [f"WHEN regexp_full_match({v}, {_literal(EMAIL_VALUE)}) THEN left({v}, 1) || '***' || "
             f"substr({v}, strpos({v}, '@'))",
             f"WHEN regexp_matches({v}, {_literal(ANY_SPAN)}) THEN {spans}"]
    for limit, head, tail in MASK_KEEP:
        cases.append(f"WHEN {n} <= {limit} THEN {_kept(v, n, head, tail)}")
    return f"CASE WHEN {v} IS NULL THEN NULL {' '.join(cases)} ELSE {_kept(v, n, *MASK_KEEP_LONGER)} END"


def _kept(v: str, n: str, head: int, tail: int) -> str:
    parts = ([f"left({v}, {head})"] if head else []) + [f"repeat('*', {n} - {head + tail})"]
    return " || ".join(parts + ([f"right({v}, {tail})"] if tail else []))


def protect_sql(column_sql: str, protection: str, dataset: str | None = None) -> str:
    """The SQL expression a consumer below the column's tier reads instead of ``column_sql`` of ``dataset``.

    ``pseudonymize`` calls the function :func:`register_functions` registers, under ``dataset``'s own key,
    and raises :class:`PseudonymKeyMissing` at once when the key is not set (or too weak).
    """
    if protection == "mask":
        return mask_sql(column_sql)
    if protection == "pseudonymize":
        pseudonym_key()
        if not dataset:
            raise ValueError("pseudonymizing needs the dataset whose key to use: protect_sql(..., dataset=...)")
        return f"{PSEUDONYM_FUNCTION}({_literal(dataset)}, CAST(({column_sql}) AS VARCHAR))"
    if protection == "none":
        return "CAST(NULL AS VARCHAR)"
    raise ValueError(f"unknown protection {protection!r}: use one of {', '.join(PROTECTIONS)}")


def register_functions(con: duckdb.DuckDBPyConnection) -> None:
    """Register ``twinhub_pseudonym(dataset VARCHAR, value VARCHAR)`` on ``con``, when the key is set.

    The key is read here and kept in the function's closure only; each dataset's key is derived
    from it once. Works on a connection whose configuration is locked (catalog/query.py).
    """
    if not os.environ.get(KEY_ENV):
        return  # protect_sql refuses pseudonymize with a clear message
    key = pseudonym_key()
    keys: dict[str, bytes] = {}

    def hashed(datasets: pa.Array, values: pa.Array) -> pa.Array:
        out = []
        for dataset, value in zip(datasets.to_pylist(), values.to_pylist()):
            if value is None or dataset is None:
                out.append(None)
                continue
            if dataset not in keys:
                keys[dataset] = dataset_key(key, dataset)
            out.append(pseudonym(value, keys[dataset]))
        return pa.array(out, pa.string())

    con.create_function(PSEUDONYM_FUNCTION, hashed, ["VARCHAR", "VARCHAR"], "VARCHAR", type="arrow",
                        side_effects=False)
