"""The interoperability score: its parts, their weights, freshness against the cadence."""

from __future__ import annotations

import datetime as dt

import pytest

from twinhub.standards import score

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
DAY = 86_400.0


@pytest.mark.parametrize(
    ("parts", "weights", "expected"),
    [
        ({"schema": 1.0, "labels": 1.0, "crs": 1.0, "completeness": 1.0, "freshness": 1.0}, {}, 100.0),
        ({"schema": 0.5, "labels": 1.0, "crs": 1.0, "completeness": 1.0, "freshness": 0.0}, {}, 70.0),
        ({"schema": 0.5, "labels": None, "crs": 1.0, "completeness": 1.0, "freshness": None}, {}, 83.3),  # n/a parts
        ({"schema": 0.5, "labels": 1.0}, {"schema": 3, "labels": 1}, 62.5),  # weights from city.yaml
        ({"schema": 0.5, "labels": 1.0}, {"schema": 1, "labels": 0}, 50.0),  # weight 0 leaves a part out
        ({"labels": None}, {}, None),
    ],
)
def test_the_score_is_the_weighted_mean_of_the_parts_that_apply(parts, weights, expected):
    w = {k: 1.0 for k in ("schema", "labels", "crs", "completeness", "freshness")} | weights
    assert score.combine(parts, w)["score"] == expected


@pytest.mark.parametrize(
    ("age_days", "cadence_days", "value"),
    [
        (0.5, 1, 1.0),  # younger than the cadence
        (1, 1, 1.0),
        (5.5, 1, 0.5),  # 4.5 cadences overdue of 9
        (10, 1, 0.0),
        (30, 1, 0.0),
        (30, 7, 1.0 - (30 / 7 - 1) / 9),
        (30, None, None),  # no schedule: freshness does not apply
    ],
)
def test_freshness_falls_from_one_cadence_to_ten(age_days, cadence_days, value):
    since = (NOW - dt.timedelta(days=age_days)).isoformat()
    record = score.freshness(since, cadence_days and cadence_days * DAY, NOW)
    assert record["value"] == (pytest.approx(value, abs=1e-4) if value is not None else None)
    assert record["age_s"] == pytest.approx(age_days * DAY)


def test_the_source_s_age_is_carried_while_its_content_is_unchanged():
    first = "2024-05-01T00:00:00+00:00"
    previous = {"source_fingerprint": "sha256:a", "details": '{"freshness": {"source_since": "%s"}}' % first}
    assert score.source_since(previous, "sha256:a", NOW) == first
    assert score.source_since(previous, "sha256:b", NOW) == NOW.isoformat()  # new content: fresh
    assert score.source_since(None, "sha256:a", NOW) == NOW.isoformat()
    legacy = {"source_fingerprint": "sha256:a", "details": "{}", "finished_at": dt.datetime(2024, 5, 2, tzinfo=dt.timezone.utc)}
    assert score.source_since(legacy, "sha256:a", NOW) == "2024-05-02T00:00:00+00:00"


@pytest.mark.parametrize(("cron", "seconds"), [("0 2 * * *", DAY), ("0 * * * *", 3600.0), ("30 2 * * 1", 7 * DAY),
                                               (None, None), ("not a cron", None)])
def test_cadence_from_the_manifest_schedule(cron, seconds):
    assert score.cadence_seconds(cron, "Asia/Shanghai") == seconds


def test_rescore_recomputes_freshness_as_of_now():
    details = {"score": {"parts": {"schema": 1.0, "freshness": 1.0}},
               "freshness": {"source_since": "2024-05-22T12:00:00+00:00", "cadence_s": DAY}}
    weights = {"schema": 1.0, "freshness": 1.0}
    assert score.rescore(details, weights, NOW)["parts"]["freshness"] == 0.0  # 10 days old, daily cadence
    assert score.rescore(details, weights, NOW)["score"] == 50.0
