"""A manifest's cron schedule, read once: when it runs and its cadence (how often).

The one cron reader of the hub. The score's freshness (standards/score.py),
``twinhub report`` and the DCAT frequency (catalog/cadence.py), Dagster's
freshness policy (pipelines/automation.py) and the manifest check all read a
schedule here, so they agree on what it means.

The cadence is a cron's mean interval: the length of a 28-year calendar cycle
over the ticks in it. For an evenly spaced cron it is the gap between two ticks
(hourly, daily, weekly); a monthly cron's is a twelfth of a 365.25-day year, not
the 28 days of February; a weekday cron's is 7/5 days. It does not depend on the
timezone: a daylight-saving shift moves a tick, it does not add or remove one.

    >>> cron_interval("0 2 * * *")
    datetime.timedelta(days=1)
    >>> cron_interval("30 6 1 * *") / dt.timedelta(hours=1)  # monthly: 365.25 / 12 days
    730.5
    >>> cron_interval("not a cron") is None
    True

The five fields take ``*``, numbers, ranges ``a-b``, steps ``*/n`` ``a-b/n``
``a/n``, lists, month and day names (``jan``, ``mon``), and Sunday as 0 or 7; the
aliases ``@hourly`` ``@daily`` ``@midnight`` ``@weekly`` ``@monthly`` ``@yearly``
``@annually``. When both day fields are restricted a day matching either runs
(as in cron and Dagster). Extensions some crons have (``L``, ``W``, ``#``,
seconds) are refused rather than guessed.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
from dataclasses import dataclass

# 2001 to 2028: whole weeks (1,461) and whole leap cycles (7), so a weekly cron's cadence is 7 days and
# a monthly one's 365.25 / 12; the calendar from 1901 to 2099 repeats it.
CYCLE_START = dt.date(2001, 1, 1)
CYCLE_DAYS = 28 * 365 + 7

GRACE = 1.5  # cadences without a confirming run after which a dataset is stale (the report, Dagster's fail window)

ALIASES = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun",
                                      "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
WEEKDAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# (name, lowest, highest, names) of the five fields
FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
          ("month", 1, 12, MONTHS), ("day of week", 0, 7, WEEKDAYS))


class CronError(ValueError):
    """A schedule the hub cannot read; the message says which field and why."""


@dataclass(frozen=True)
class Cron:
    """A parsed five-field cron: the values each field takes (day of week 0-6, Sunday 0)."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_or_weekdays: bool  # both day fields restricted: a day matching either runs

    def runs_on(self, month: int, day: int, weekday: int) -> bool:
        """Whether it runs on a day of ``month``, ``day`` of the month and ``weekday`` (Sunday 0)."""
        if month not in self.months:
            return False
        on_day, on_weekday = day in self.days, weekday in self.weekdays
        return on_day or on_weekday if self.days_or_weekdays else on_day and on_weekday

    def ticks_per_cycle(self) -> int:
        """How many times it runs in the 28-year cycle."""
        days = sum(n for (m, d, w), n in _calendar().items() if self.runs_on(m, d, w))
        return len(self.minutes) * len(self.hours) * days


@functools.cache
def _calendar() -> dict[tuple[int, int, int], int]:
    """How many days of the cycle fall on each (month, day of month, weekday)."""
    days = (CYCLE_START + dt.timedelta(days=i) for i in range(CYCLE_DAYS))
    return dict(collections.Counter((d.month, d.day, d.isoweekday() % 7) for d in days))


def _value(text: str, field: tuple) -> int:
    name, low, high, names = field
    value = names.get(text.lower()) if not text.isdigit() else int(text)
    if value is None or not low <= value <= high:
        raise CronError(f"{text!r} is not a valid {name} ({low}-{high}{', or a name' if names else ''})")
    return value


def _part(part: str, field: tuple) -> set[int]:
    """One comma-separated item: ``*``, ``a``, ``a-b``, each optionally ``/step``."""
    _, low, high, _ = field
    base, _, step_text = part.partition("/")
    if step_text and not (step_text.isdigit() and int(step_text) > 0):
        raise CronError(f"{part!r}: the step after / must be a positive number")
    if base == "*":
        start, end = low, high
    elif "-" in base:
        first, _, last = base.partition("-")
        start, end = _value(first, field), _value(last, field)
        if start > end:
            raise CronError(f"{part!r}: a range runs from the lower value to the higher")
    else:
        start = _value(base, field)
        end = high if step_text else start  # "5/15": from 5 to the end, every 15
    return set(range(start, end + 1, int(step_text or 1)))


def _field(text: str, field: tuple) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{text!r}: an empty item in the {field[0]} list")
        values |= _part(part, field)
    return frozenset(values)


@functools.lru_cache(maxsize=1024)
def parse_cron(text: str) -> Cron:
    """The cron ``text`` (five fields or an alias); CronError says what is wrong with it.

    >>> sorted(parse_cron("0 8,20 * * mon-fri").weekdays)
    [1, 2, 3, 4, 5]
    """
    fields = ALIASES.get(text.strip().lower(), text).split()
    if len(fields) != 5:
        raise CronError(f"{text!r} has {len(fields)} fields; a cron has five: minute hour day-of-month month "
                        "day-of-week")
    minute, hour, dom, month, dow = (_field(f, spec) for f, spec in zip(fields, FIELDS))
    cron = Cron(text, minute, hour, dom, month, frozenset(d % 7 for d in dow),
                days_or_weekdays=fields[2] != "*" and fields[4] != "*")
    if cron.ticks_per_cycle() == 0:
        raise CronError(f"{text!r} never runs (no month has that day)")
    return cron


@functools.lru_cache(maxsize=1024)
def cron_interval(text: str | None) -> dt.timedelta | None:
    """The cadence of a schedule: its mean interval (module docstring); None without a readable one."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        cron = parse_cron(text)
    except CronError:
        return None  # an unreadable schedule is the manifest check's to report, not the reader's callers'
    return dt.timedelta(days=CYCLE_DAYS) / cron.ticks_per_cycle()


__all__ = ["GRACE", "Cron", "CronError", "cron_interval", "parse_cron"]
