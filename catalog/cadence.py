"""A manifest's cron schedule as a publication frequency, for the DCAT export.

The schedule is read by standards/cadence.py (the one cron reader: the score,
``twinhub report`` and Dagster's freshness use it too); this names its cadence
with a code of the EU frequency vocabulary.

    >>> cadence("0 2 * * *")
    ('DAILY', datetime.timedelta(days=1))
    >>> cadence("30 6 * * 1")
    ('WEEKLY', datetime.timedelta(days=7))
    >>> cadence(None)
    ('IRREG', None)
"""

from __future__ import annotations

import datetime as dt

from twinhub.standards.cadence import cron_interval

FREQUENCY_BASE = "http://publications.europa.eu/resource/authority/frequency/"

YEAR = dt.timedelta(days=365.25)
# the EU code of each cadence a cron can have exactly (standards/cadence.py: a mean over whole years)
FREQUENCIES = {
    dt.timedelta(hours=1): "HOURLY", dt.timedelta(hours=12): "TWICE_A_DAY", dt.timedelta(days=1): "DAILY",
    dt.timedelta(days=7): "WEEKLY", YEAR / 12: "MONTHLY", YEAR / 4: "QUARTERLY", YEAR / 2: "ANNUAL_2", YEAR: "ANNUAL",
}
CONTINUOUS = dt.timedelta(minutes=5)  # this often or more: CONT


def cadence(cron: str | None) -> tuple[str, dt.timedelta | None]:
    """(EU frequency code, expected interval) of a cron schedule; ``IRREG`` without a readable one."""
    interval = cron_interval(cron)
    if interval is None:
        return ("IRREG", None)
    code = FREQUENCIES.get(interval) or ("CONT" if interval <= CONTINUOUS else "OTHER")
    return (code, interval)
