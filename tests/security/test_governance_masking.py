"""Attacks on masking, the scan and pseudonym keys (issue 15, findings 5 and 14), performed for real.

- a description with an ``@`` and a phone: the old e-mail rule showed everything after the ``@``;
- IDs and phones written with separators or a Latin prefix slipped past the scan (and so past the mask);
- a 16-byte pseudonym key was accepted, and one key served every dataset: two datasets' pseudonyms of
  the same value were equal and could be joined.
"""

from __future__ import annotations

import datetime as dt
import secrets

import duckdb
import pandas as pd
import pytest

from twinhub.catalog.enforce import AsConsumer
from twinhub.catalog.grants import Consumer, Grant, save_grant
from twinhub.catalog.masking import KEY_ENV, PseudonymKeyMissing, protect_sql, register_functions
from twinhub.catalog.query import run_query
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.standards.privacy import PrivacyScan, redact

from .governance_city import activate, rows, write

KEY = secrets.token_hex(32)


def _masked(values: list[str]) -> list[str]:
    con = duckdb.connect()
    con.execute("CREATE TABLE v AS SELECT unnest(?::VARCHAR[]) AS value, generate_subscripts(?::VARCHAR[], 1) AS i",
                [values, values])
    return [r[0] for r in con.execute(f"SELECT {protect_sql('value', 'mask')} FROM v ORDER BY i").fetchall()]


MASKS = [  # value, what the consumer reads
    ("备注@王先生 电话13812345678", "备注@王先生 电话138****5678"),
    ("请联系 li.lei@example.cn 或 021-64871234", "请联系 l***@example.cn 或 021-****1234"),
    ("身份证ID310104195204035894，手机138.1234.5678", "身份证ID3101**********5894，手机138****5678"),
    ("li.lei@example.cn", "l***@example.cn"),  # a whole address: the e-mail rule
    ("张三", "张*"),  # nothing found inside: kept by length
]


@pytest.mark.parametrize("value, seen", MASKS)
def test_masking_masks_what_it_found_and_keeps_the_text(value, seen):
    assert _masked([value]) == [seen] and redact(value) == seen  # SQL and Python: one rule
    assert "13812345678" not in _masked([value])[0] and "5204035894" not in _masked([value])[0]


@pytest.mark.parametrize("text, detector", [
    ("ID310104195204035894", "resident_id"),
    ("138.1234.5678", "mobile"),
    ("身份证:310104-19520403-5894", "resident_id"),
    ("Tel13812345678", "mobile"),
    ("电话(010) 6275-1234", "landline"),
])
def test_the_scan_normalises_separators_and_latin_prefixes(text, detector):
    scan = PrivacyScan()
    scan.feed(pd.DataFrame({"note": [text, "无"]}))
    assert scan.report()["found"]["note"][detector]["values"] == 1


def test_a_16_byte_key_is_refused_naming_the_variable(monkeypatch):
    con = duckdb.connect()
    for weak in (secrets.token_hex(16), "a long passphrase that is not random bytes"):
        monkeypatch.setenv(KEY_ENV, weak)
        with pytest.raises(PseudonymKeyMissing, match=f"{KEY_ENV} .* at least 32 random bytes"):
            register_functions(con)
        with pytest.raises(PseudonymKeyMissing, match=KEY_ENV):
            protect_sql('"phone"', "pseudonymize", dataset="hotline.a")


def test_two_datasets_pseudonyms_of_the_same_value_differ(hub: Hub, tmp_path, monkeypatch):
    """Through the real consumer query: the same request ids in two datasets, pseudonymized below sensitive."""
    monkeypatch.setenv(KEY_ENV, KEY)
    protect = {"request_id": {"classification": "sensitive", "protect": "pseudonymize"}}
    for name in ("north", "south"):
        ingest(hub, activate(hub, write(tmp_path / name, name, rows(6), columns=protect)), run_id=name)
        save_grant(hub.lake, Grant("water", f"hotline.{name}", "internal", dt.date(2099, 1, 1), "steward",
                                   "2027-01-01"))
    consumer = AsConsumer(Consumer("water"), dt.date(2027, 3, 1), {})
    north = run_query(hub.lake, "SELECT request_id FROM hotline.north ORDER BY 1", consumer=consumer).rows
    south = run_query(hub.lake, "SELECT request_id FROM hotline.south ORDER BY 1", consumer=consumer).rows
    assert len(north) == len(south) == 6 and all(r[0].startswith("p_") for r in north + south)
    assert not set(north) & set(south)  # the same R0000..R0005, unjoinable across datasets
    joined = run_query(hub.lake, "SELECT count(*) FROM hotline.north n JOIN hotline.south s USING (request_id)",
                       consumer=consumer).rows
    assert joined == [(0,)]
    within = run_query(hub.lake, "SELECT count(DISTINCT request_id) FROM hotline.north", consumer=consumer).rows
    assert within == [(6,)]  # still stable within one dataset
