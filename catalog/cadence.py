"""A manifest's cron schedule as a publication cadence.

Two uses: the update frequency of the DCAT export (a code of the EU
frequency vocabulary) and the expected interval that freshness is measured
against in ``twinhub report``.

    >>> cadence("0 2 * * *")
    ('DAILY', datetime.timedelta(days=1))
    >>> cadence("30 6 * * 1")
    ('WEEKLY', datetime.timedelta(days=7))
    >>> cadence(None)
    ('IRREG', None)
"""

from __future__ import annotations

import datetime as dt

FREQUENCY_BASE = "http://publications.europa.eu/resource/authority/frequency/"


def _single(field: str) -> bool:
    return field.isdigit()


def _count(field: str, size: int) -> int | None:
    """How many values a cron field takes (``*``, ``*/n``, lists and single values); None if unsure."""
    if field == "*":
        return size
    if field.startswith("*/") and field[2:].isdigit() and int(field[2:]) > 0:
        return -(-size // int(field[2:]))
    parts = field.split(",")
    if all(p.isdigit() for p in parts):
        return len(parts)
    return None


def cadence(cron: str | None) -> tuple[str, dt.timedelta | None]:
    """(EU frequency code, expected interval) of a five-field cron expression."""
    fields = (cron or "").split()
    if len(fields) != 5:
        return ("IRREG", None)
    minute, hour, dom, month, dow = fields
    if dom == "*" and month == "*" and dow == "*":
        hours = _count(hour, 24)
        minutes = _count(minute, 60)
        if hours is None or minutes is None:
            return ("OTHER", None)
        per_day = hours * minutes
        if per_day == 1:
            return ("DAILY", dt.timedelta(days=1))
        if hours == 24 and minutes == 1:
            return ("HOURLY", dt.timedelta(hours=1))
        if per_day == 2:
            return ("TWICE_A_DAY", dt.timedelta(hours=12))
        return ("CONT" if per_day >= 24 * 12 else "OTHER", dt.timedelta(days=1) / per_day)
    if dom == "*" and month == "*" and _single(minute) and _single(hour):
        days = _count(dow, 7)
        if days == 1:
            return ("WEEKLY", dt.timedelta(days=7))
        return ("OTHER", dt.timedelta(days=7) / days) if days else ("OTHER", None)
    if _single(dom) and dow == "*" and _single(minute) and _single(hour):
        months = _count(month, 12)
        code = {12: "MONTHLY", 4: "QUARTERLY", 2: "ANNUAL_2", 1: "ANNUAL"}.get(months or 0, "OTHER")
        return (code, dt.timedelta(days=365.25) / months if months else None)
    return ("OTHER", None)
