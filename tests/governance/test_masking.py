"""Protected forms of values: masks in SQL, HMAC pseudonyms with a key only the environment holds."""

from __future__ import annotations

import hashlib

import duckdb
import pytest

from twinhub.catalog.masking import (
    KEY_ENV,
    PseudonymKeyMissing,
    dataset_key,
    protect_sql,
    pseudonym,
    register_functions,
)
from twinhub.standards.privacy import redact

FIRST, SECOND, LOCKED = "01" * 32, "02" * 32, "ab" * 40  # hex keys of 32+ bytes
VALUES = ["13812345678", "31010519491231002X", "张三", "欧阳娜娜", "沪A12345", "li.lei@example.cn", "x", "",
          "021-64871234", "上海市徐汇区漕溪北路1号", "12345"]


def _protected(con: duckdb.DuckDBPyConnection, protection: str, values: list) -> list:
    con.execute("CREATE OR REPLACE TEMP TABLE v AS "
                "SELECT unnest(?::VARCHAR[]) AS value, generate_subscripts(?::VARCHAR[], 1) AS i", [values, values])
    sql = protect_sql("value", protection, dataset="hotline.requests")
    return [r[0] for r in con.execute(f"SELECT {sql} FROM v ORDER BY i").fetchall()]


def test_sql_mask_is_the_scan_redaction():
    con = duckdb.connect()
    assert _protected(con, "mask", VALUES) == [redact(v) for v in VALUES]
    assert _protected(con, "mask", ["13812345678", None])[0] == "138****5678"
    assert _protected(con, "mask", [None]) == [None]


def test_mask_of_numbers_and_none():
    con = duckdb.connect()
    assert con.execute(f"SELECT {protect_sql('13812345678', 'mask')}").fetchone()[0] == "138****5678"
    assert con.execute(f"SELECT {protect_sql('13812345678', 'none')}").fetchone()[0] is None
    with pytest.raises(ValueError, match="unknown protection 'hide'"):
        protect_sql("x", "hide")


def test_pseudonyms_are_stable_per_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, FIRST)
    con = duckdb.connect()
    register_functions(con)
    first = _protected(con, "pseudonymize", ["13812345678", "13812345678", "13812345679", None])
    assert first[0] == first[1] != first[2] and first[3] is None
    assert first[0] == pseudonym("13812345678", dataset_key(bytes.fromhex(FIRST), "hotline.requests"))
    monkeypatch.setenv(KEY_ENV, SECOND)
    other = duckdb.connect()
    register_functions(other)
    assert _protected(other, "pseudonymize", ["13812345678"])[0] != first[0]


def test_hashing_every_number_without_the_key_finds_nothing(monkeypatch):
    """An attacker who hashes all candidate phone numbers (plain SHA-256, or HMAC with a guessed key) finds no match."""
    monkeypatch.setenv(KEY_ENV, "5a" * 32)
    con = duckdb.connect()
    register_functions(con)
    target = _protected(con, "pseudonymize", ["13812345678"])[0][2:]
    candidates = [f"138123{n:05d}" for n in range(100_000)]  # the whole block the number is in
    assert "13812345678" in candidates
    for guess in (lambda c: hashlib.sha256(c.encode()).hexdigest(), lambda c: pseudonym(c, b"")[2:],
                  lambda c: pseudonym(c, b"twinhub")[2:]):
        assert not any(guess(c).startswith(target) for c in candidates)


def test_the_key_never_appears_in_sql(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "6b33" * 16)
    sql = protect_sql('"phone"', "pseudonymize", dataset="hotline.requests")
    assert "6b33" not in sql and sql == "twinhub_pseudonym('hotline.requests', CAST((\"phone\") AS VARCHAR))"


def test_missing_key_is_named(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(PseudonymKeyMissing, match=KEY_ENV):
        protect_sql('"phone"', "pseudonymize", dataset="hotline.requests")
    con = duckdb.connect()
    register_functions(con)  # nothing to register, no error until pseudonymizing is asked for
    assert protect_sql('"phone"', "mask")


def test_functions_work_on_the_locked_query_connection(monkeypatch, hub):
    """catalog/query.py's read-only connection with external access off and its configuration locked."""
    from twinhub.catalog.query import locked_connection

    monkeypatch.setenv(KEY_ENV, LOCKED)
    hub.lake.ensure()
    con = locked_connection(hub.lake)
    try:
        register_functions(con)
        row = con.execute(f"SELECT {protect_sql(repr('13812345678'), 'pseudonymize', dataset='a.b')}, "
                          f"{protect_sql(repr('13812345678'), 'mask')}").fetchone()
    finally:
        con.close()
    assert row == (pseudonym("13812345678", dataset_key(bytes.fromhex(LOCKED), "a.b")), "138****5678")
