"""Dates and times written several ways, read into one typed column (ISO 8601 in the catalog).

Departments write ``2018-03-21``, ``2018/3/21``, ``2018年3月21日``, ``20180321``,
``21/03/2018`` or ``03/21/2018``, with or without a time and a UTC offset. Each
form is recognised by a pattern, vectorized over the column:

* year first (ISO 8601, slashes, dots, Chinese 年月日) and the compact ``YYYYMMDD``;
* day and month first (``21/03/2018``, ``3.21.2018``): the column decides which
  comes first when a value settles it (a first number above 12 is a day, a second
  number above 12 is a day); when none does, the city's ``day_first`` does. A value
  that contradicts its column's order cannot be read and is reported;
* anything else goes to pandas' parser (``Wed Jan 19 11:42:16 2022``, ``21 Mar 2018``).

Datetimes without an offset are the city's local time; all datetimes are stored in
UTC. Dates stay dates (midnight, no time zone).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

_TIME = r"(?:[T\s]*(?P<H>\d{1,2})[:时](?P<M>\d{1,2})分?(?::?(?P<S>\d{1,2})(?:[.,](?P<F>\d{1,6}))?秒?)?)?"
_ZONE = r"\s*(?P<tz>Z|UTC|GMT|[+-]\d{2}:?\d{2})?"
YEAR_FIRST = rf"^(?P<y>\d{{4}})[-/.年](?P<m>\d{{1,2}})[-/.月](?P<d>\d{{1,2}})日?{_TIME}{_ZONE}$"
COMPACT = r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})(?:T?(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2})?(?P<F>)?)?(?P<tz>Z)?$"
NUMBERS_FIRST = rf"^(?P<a>\d{{1,2}})[-/.](?P<b>\d{{1,2}})[-/.](?P<y>\d{{4}}){_TIME}{_ZONE}$"


def _number(parts: pd.DataFrame, name: str, default: int = 0) -> pd.Series:
    return pd.to_numeric(parts[name], errors="coerce").fillna(default).astype("int64")


def _offset_minutes(zone: pd.Series) -> pd.Series:
    """Minutes east of UTC per value; NaN where no zone was written."""
    text = zone.fillna("").str.replace(":", "", regex=False)
    minutes = pd.Series(np.nan, index=zone.index)
    utc = text.isin(["Z", "UTC", "GMT"])
    minutes[utc] = 0.0
    signed = text.str.match(r"^[+-]\d{4}$")
    sign = np.where(text[signed].str[0] == "-", -1, 1)
    minutes[signed] = sign * (text[signed].str[1:3].astype(int) * 60 + text[signed].str[3:5].astype(int))
    return minutes


def _assemble(parts: pd.DataFrame, year: str, month: str, day: str) -> tuple[pd.Series, pd.Series]:
    """Wall-clock timestamps of matched rows and their UTC offsets (NaN: none written)."""
    fraction = parts["F"].fillna("").str.ljust(3, "0").str[:3].replace("", "0")
    stamp = pd.to_datetime(
        pd.DataFrame({
            "year": _number(parts, year), "month": _number(parts, month), "day": _number(parts, day),
            "hour": _number(parts, "H"), "minute": _number(parts, "M"), "second": _number(parts, "S"),
            "millisecond": pd.to_numeric(fraction, errors="coerce").fillna(0).astype("int64"),
        }),
        errors="coerce",
    )
    bad_time = (_number(parts, "H") > 23) | (_number(parts, "M") > 59) | (_number(parts, "S") > 59)
    return stamp.mask(bad_time), _offset_minutes(parts["tz"])


def _column_order(first: pd.Series, second: pd.Series, day_first: bool) -> bool:
    """Whether the column writes the day first: settled by any value above 12, else ``day_first``."""
    says_day_first = bool((first > 12).any())
    says_month_first = bool((second > 12).any())
    if says_day_first != says_month_first:
        return says_day_first
    return day_first


def _fallback(text: pd.Series, day_first: bool) -> tuple[pd.Series, pd.Series]:
    """pandas' own parser for the forms the patterns do not know."""
    stamps = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    offsets = pd.Series(np.nan, index=text.index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, value in text.items():
            parsed = pd.to_datetime(value, errors="coerce", dayfirst=day_first)
            if parsed is pd.NaT or pd.isna(parsed):
                continue
            if parsed.tzinfo is not None:
                offsets[i] = parsed.utcoffset().total_seconds() / 60
                parsed = parsed.tz_localize(None)
            stamps[i] = parsed
    return stamps, offsets


def parse_datetimes(raw: pd.Series, timezone: str = "UTC", day_first: bool = True, dates: bool = False) -> pd.Series:
    """Read text as datetimes: ``datetime64[ms, UTC]``, or ``datetime64[ms]`` dates when ``dates``.

    Unreadable values become NaT (the caller reports them).

    >>> parse_datetimes(pd.Series(["2018年3月21日 14:05", "2018-03-21T06:05:00Z"]), "Asia/Shanghai").tolist()
    [Timestamp('2018-03-21 06:05:00+0000', tz='UTC'), Timestamp('2018-03-21 06:05:00+0000', tz='UTC')]
    """
    text = raw.astype("string").str.strip()
    stamps = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    offsets = pd.Series(np.nan, index=text.index)
    left = text.notna() & (text != "")
    for pattern in (YEAR_FIRST, COMPACT):
        parts = text[left].str.extract(pattern)
        hit = parts["y"].notna()
        if hit.any():
            stamps[hit[hit].index], offsets[hit[hit].index] = _assemble(parts[hit], "y", "m", "d")
            left[hit[hit].index] = False
    parts = text[left].str.extract(NUMBERS_FIRST)
    hit = parts["y"].notna()
    if hit.any():
        parts = parts[hit]
        first, second = _number(parts, "a"), _number(parts, "b")
        order = ("b", "a") if _column_order(first, second, day_first) else ("a", "b")
        stamps[parts.index], offsets[parts.index] = _assemble(parts, "y", *order)
        left[parts.index] = False
    if left.any():
        stamps[left[left].index], offsets[left[left].index] = _fallback(text[left], day_first)
    if dates:
        return stamps.dt.normalize().astype("datetime64[ms]")
    return _to_utc(stamps, offsets, timezone)


def _to_utc(stamps: pd.Series, offsets: pd.Series, timezone: str) -> pd.Series:
    aware = offsets.notna()
    utc = pd.Series(pd.NaT, index=stamps.index, dtype="datetime64[ms, UTC]")
    if aware.any():
        shifted = stamps[aware] - pd.to_timedelta(offsets[aware], unit="min")
        utc[aware] = shifted.dt.tz_localize("UTC")
    naive = ~aware & stamps.notna()
    if naive.any():
        local = stamps[naive].dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
        utc[naive] = local.dt.tz_convert("UTC")
    return utc
