"""API tokens: issued once, kept hashed, refused when expired, revoked or forged; never written out."""

from __future__ import annotations

import datetime as dt
import pathlib
import subprocess

import pytest

from twinhub.catalog import tokens
from twinhub.catalog.grants import AccessError, Consumer
from twinhub.hub.home import Hub

TODAY = dt.date(2026, 12, 4)


@pytest.fixture
def lake(tmp_path: pathlib.Path):
    return Hub.open(tmp_path / "home").lake


def test_a_token_reads_as_its_consumer_until_its_last_day(lake):
    text, token = tokens.issue_token(lake, Consumer("water"), TODAY + dt.timedelta(days=1), TODAY, note="QGIS")
    assert tokens.consumer_of(lake, text, TODAY) == Consumer("water")
    assert tokens.consumer_of(lake, text, TODAY + dt.timedelta(days=1)) == Consumer("water")  # inclusive
    with pytest.raises(tokens.TokenRefused, match=f"token {token.id} is expired"):
        tokens.consumer_of(lake, text, TODAY + dt.timedelta(days=2))


def test_a_revoked_token_is_refused_and_listing_shows_no_secret(lake):
    text, token = tokens.issue_token(lake, Consumer("user:alice"), TODAY + dt.timedelta(days=30), TODAY)
    tokens.revoke_token(lake, token.id, "laptop lost")
    with pytest.raises(tokens.TokenRefused, match="revoked"):
        tokens.consumer_of(lake, text, TODAY)
    (listed,) = tokens.list_tokens(lake)
    assert listed.id == token.id and listed.state(TODAY) == "revoked"
    assert text.split("_", 2)[2] not in repr(listed)


@pytest.mark.parametrize("forge", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # one character of the secret changed
    lambda t: "th_" + "0" * 12 + "_" + t.split("_", 2)[2],  # a real secret under another id
    lambda t: t.replace("th_", "tk_"),  # not a token at all
    lambda t: t + "' OR 1=1 --",  # SQL in the token: bound, never pasted
])
def test_a_forged_token_is_refused_without_repeating_it(lake, forge):
    text, _ = tokens.issue_token(lake, Consumer("water"), TODAY + dt.timedelta(days=30), TODAY)
    forged = forge(text)
    with pytest.raises(tokens.TokenRefused) as refused:
        tokens.consumer_of(lake, forged, TODAY)
    assert forged not in str(refused.value) and text.split("_", 2)[2] not in str(refused.value)


def test_only_the_hash_of_the_secret_is_stored_and_the_audit_names_the_id_only(lake):
    text, token = tokens.issue_token(lake, Consumer("water"), TODAY + dt.timedelta(days=30), TODAY)
    tokens.revoke_token(lake, token.id, "rotated")
    secret = text.split("_", 2)[2]
    metadata = pathlib.Path(lake.uri.removeprefix("ducklake:").removeprefix("sqlite:"))
    assert metadata.is_file()
    raw = metadata.read_bytes()
    assert secret.encode() not in raw and text.encode() not in raw
    strings = subprocess.run(["strings", str(metadata)], capture_output=True, text=True).stdout
    assert token.id in strings  # the id is kept (to list and revoke), the secret is not
    con = lake.connect(read_only=True)
    try:
        statements = [r[0] for r in con.execute("SELECT statement FROM catalog.audit WHERE action LIKE 'token-%'")
                      .fetchall()]
    finally:
        con.close()
    assert len(statements) == 2 and all(token.id in s and secret not in s for s in statements)


def test_tokens_cannot_be_issued_in_the_past_nor_revoked_by_a_wrong_id(lake):
    with pytest.raises(AccessError, match="in the past"):
        tokens.issue_token(lake, Consumer("water"), TODAY - dt.timedelta(days=1), TODAY)
    with pytest.raises(AccessError, match="no token with id"):
        tokens.revoke_token(lake, "000000000000", "?")


def test_two_tokens_are_never_alike(lake):
    issued = {tokens.issue_token(lake, Consumer("water"), TODAY, TODAY)[0] for _ in range(20)}
    assert len(issued) == 20 and all(tokens.TOKEN.match(t) for t in issued)
