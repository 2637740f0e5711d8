"""The one cron reader: what a schedule means, table by table."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from twinhub.standards.cadence import CronError, cron_interval, parse_cron

HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
YEAR = dt.timedelta(days=365.25)


@pytest.mark.parametrize("cron, interval", [
    ("0 * * * *", HOUR),
    ("*/15 * * * *", dt.timedelta(minutes=15)),
    ("0 2 * * *", DAY),
    ("@daily", DAY),
    ("0 8,20 * * *", HOUR * 12),
    ("30 2 * * 1", DAY * 7),
    ("0 0 * * SUN", DAY * 7),
    ("0 0 * * 7", DAY * 7),  # Sunday as 7
    ("0 2 * * 1-5", DAY * 7 / 5),  # weekdays: the mean, not the Friday-to-Monday gap
    ("0 1 1 * *", YEAR / 12),  # monthly: a twelfth of a year, not February's 28 days
    ("0 1 1 1,4,7,10 *", YEAR / 4),
    ("0 1 1 jan *", YEAR),
    ("0 0 29 2 *", YEAR * 4),  # leap days only
    ("0 2 31 * *", YEAR / 7),  # the seven months with a 31st
    (None, None), ("", None), ("every day", None), ("0 2 30 2 *", None),
])
def test_the_cadence_of_a_schedule(cron, interval):
    assert cron_interval(cron) == interval


@pytest.mark.parametrize("cron, field_values", [
    ("5/20 3-9/2 * jan-mar,dec sun,sat", {"minutes": {5, 25, 45}, "hours": {3, 5, 7, 9}, "months": {1, 2, 3, 12},
                                          "weekdays": {0, 6}}),
    ("0 0 1,15 * mon", {"days": {1, 15}, "weekdays": {1}}),
])
def test_fields_read_as_cron_reads_them(cron, field_values):
    parsed = parse_cron(cron)
    assert {name: set(getattr(parsed, name)) for name in field_values} == field_values


def test_both_day_fields_restricted_means_either_day():
    either = parse_cron("0 0 13 * fri")
    assert either.runs_on(6, 13, 2) and either.runs_on(6, 14, 5) and not either.runs_on(6, 14, 4)
    both = parse_cron("0 0 * * fri")
    assert both.runs_on(6, 14, 5) and not both.runs_on(6, 13, 2)


@pytest.mark.parametrize("cron, message", [
    ("every day", "has 2 fields; a cron has five"),
    ("0 0 * * * *", "has 6 fields"),
    ("60 * * * *", "'60' is not a valid minute (0-59)"),
    ("0 24 * * *", "'24' is not a valid hour (0-23)"),
    ("0 0 0 * *", "'0' is not a valid day of month (1-31)"),
    ("0 0 * 13 *", "'13' is not a valid month (1-12, or a name)"),
    ("0 0 * * funday", "'funday' is not a valid day of week"),
    ("*/0 * * * *", "the step after / must be a positive number"),
    ("0 5-1 * * *", "a range runs from the lower value to the higher"),
    ("0 1,,2 * * *", "an empty item"),
    ("0 0 L * *", "'L' is not a valid day of month"),
    ("0 0 30 2 *", "never runs"),
])
def test_an_unreadable_schedule_says_why(cron, message):
    with pytest.raises(CronError, match=re.escape(message)):
        parse_cron(cron)
