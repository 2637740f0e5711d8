"""Dates written several ways become one typed column; datetimes are stored in UTC."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from twinhub.standards.dates import parse_datetimes


def _one(value: str, **kw) -> pd.Timestamp | None:
    out = parse_datetimes(pd.Series([value], dtype="string"), **kw)[0]
    return None if pd.isna(out) else out


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2018-03-21", "2018-03-21"),
        ("2018/3/21", "2018-03-21"),
        ("2018.03.21", "2018-03-21"),
        ("2018年3月21日", "2018-03-21"),
        ("20180321", "2018-03-21"),
        ("21/03/2018", "2018-03-21"),  # day first: 21 cannot be a month
        ("2018-03-21T14:05:00+08:00", "2018-03-21"),
        ("21 Mar 2018", "2018-03-21"),  # left to pandas' parser
        ("2018-02-30", None),  # no such day
        ("约2018年", None),
        ("", None),
    ],
)
def test_date_forms(raw, expected):
    got = _one(raw, dates=True)
    assert (got.strftime("%Y-%m-%d") if got is not None else None) == expected


@pytest.mark.parametrize(
    ("raw", "timezone", "utc"),
    [
        ("2018-03-21 14:05", "Asia/Shanghai", "2018-03-21T06:05:00+00:00"),  # local time without an offset
        ("2018年3月21日 14时05分", "Asia/Shanghai", "2018-03-21T06:05:00+00:00"),
        ("2018年3月21日14时05分30秒", "Asia/Shanghai", "2018-03-21T06:05:30+00:00"),
        ("2018-03-21 14:05:06.5", "UTC", "2018-03-21T14:05:06.500000+00:00"),
        ("2018-03-21T14:05:00Z", "Asia/Shanghai", "2018-03-21T14:05:00+00:00"),  # an offset wins
        ("2018-03-21T14:05:00+01:00", "Asia/Shanghai", "2018-03-21T13:05:00+00:00"),
        ("2022-01-19 11:42:16", "America/New_York", "2022-01-19T16:42:16+00:00"),  # Boston 311
        ("20220119T114216", "UTC", "2022-01-19T11:42:16+00:00"),
        ("2018-03-21 25:00", "UTC", None),  # no such hour
    ],
)
def test_datetimes_are_stored_in_utc(raw, timezone, utc):
    got = _one(raw, timezone=timezone)
    assert (got.isoformat() if got is not None else None) == utc


@pytest.mark.parametrize(
    ("values", "day_first", "expected"),
    [
        (["03/04/2018", "21/04/2018"], False, ["2018-04-03", "2018-04-21"]),  # the column says day first
        (["03/04/2018", "04/21/2018"], True, ["2018-03-04", "2018-04-21"]),  # the column says month first
        (["03/04/2018"], True, ["2018-04-03"]),  # nothing settles it: the city's day_first
        (["03/04/2018"], False, ["2018-03-04"]),
        (["21/04/2018", "04/21/2018"], True, ["2018-04-21", None]),  # contradicting values: the other is unreadable
    ],
)
def test_day_and_month_order_is_settled_by_the_column(values, day_first, expected):
    got = parse_datetimes(pd.Series(values, dtype="string"), day_first=day_first, dates=True)
    assert [None if pd.isna(v) else v.strftime("%Y-%m-%d") for v in got] == expected


def test_adur_extract_dates_with_an_iso_date_among_day_first_ones(realworld):
    """uk_adur_public_toilets: qsv's maintainers planted an ISO date among dd/mm/yyyy dates, and a blank."""
    with (realworld / "uk_adur_public_toilets" / "adur-public-toilets.csv").open(encoding="utf-8") as fh:
        raw = [r["ExtractDate"] for r in csv.DictReader(fh)]
    assert {"07/07/2014 00:00", "2014-07-07 00:00", ""} <= set(raw)
    got = parse_datetimes(pd.Series(raw, dtype="string"), dates=True)
    assert got.isna().sum() == sum(1 for v in raw if not v.strip())  # only blanks stay empty
    assert set(got.dropna()) == {pd.Timestamp("2014-07-07")}  # both spellings are one date


def test_boston_open_and_closed_times_parse_in_boston_time(realworld):
    with (realworld / "us_boston_311" / "boston311-100.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    opened = parse_datetimes(pd.Series([r["open_dt"] for r in rows], dtype="string"), timezone="America/New_York")
    closed = parse_datetimes(pd.Series([r["closed_dt"] for r in rows], dtype="string"), timezone="America/New_York")
    assert opened.notna().all()
    assert closed.notna().sum() == sum(1 for r in rows if r["closed_dt"].strip())
    both = opened.notna() & closed.notna()
    assert (closed[both] >= opened[both]).all()
