"""The interoperability score of a dataset run: one number and the parts it is made of.

Each part is a share between 0 and 1 (None when it does not apply):

``schema``        rows passing every check of the standard other than labels and the
                  city gate (types, required, ranges, patterns, keys, geometry type
                  and validity), over rows read;
``labels``        label values mapped to a vocabulary code, over non-blank label values;
``crs``           points inside the city, over points; halved when the reprojection
                  was only accepted by the manifest (``accept_accuracy_m``);
``completeness``  required cells filled, over rows x required fields; halved (x
                  ``TRUNCATION_FACTOR``) when the run suspects the source was cut off
                  at an export limit (twinhub/hub/completeness.py), with a note saying so;
``freshness``     1 while the source's content is younger than the declared cadence
                  (the manifest's ``schedule``, read by standards/cadence.py as the report
                  and Dagster's freshness read it), falling linearly to 0 at ten cadences.

The score is 100 x the weighted mean of the parts that apply (weights from
city.yaml ``score_weights``, all 1 by default).
"""

from __future__ import annotations

import datetime as dt
import json

from twinhub.standards.cadence import cron_interval

FRESHNESS_ZERO_AT = 10  # cadences after which freshness is 0
TRUNCATION_FACTOR = 0.5  # the completeness part of a run whose source looks cut off at an export limit
TRUNCATION_NOTE = "completeness halved: suspected truncation (see the run's truncation findings)"


def cadence_seconds(schedule: str | None, timezone: str | None = None) -> float | None:
    """The cadence of a cron ``schedule`` in seconds (standards/cadence.py: its mean interval), None without one.

    The same in every ``timezone`` (a daylight-saving shift moves a tick, it adds or removes none); callers
    pass the city's.
    """
    interval = cron_interval(schedule)
    return interval.total_seconds() if interval else None


def source_since(previous_run: dict | None, source_fingerprint: str, now: dt.datetime) -> str:
    """When the hub first saw the source's current content (carried from run to run)."""
    if previous_run and previous_run.get("source_fingerprint") == source_fingerprint:
        details = previous_run.get("details")
        details = json.loads(details) if isinstance(details, str) else details or {}
        since = (details.get("freshness") or {}).get("source_since")
        if since:
            return since
        finished = previous_run.get("finished_at") or previous_run.get("started_at")
        if finished is not None:
            return finished.isoformat() if hasattr(finished, "isoformat") else str(finished)
    return now.isoformat()


def freshness(since: str, cadence_s: float | None, now: dt.datetime) -> dict:
    """The ``freshness`` record: the source's age against the cadence, and the part's value."""
    age = (now - dt.datetime.fromisoformat(since)).total_seconds()
    record = {"source_since": since, "cadence_s": cadence_s, "age_s": round(max(age, 0.0), 1), "value": None}
    if cadence_s:
        overdue = max(age - cadence_s, 0.0) / ((FRESHNESS_ZERO_AT - 1) * cadence_s)
        record["value"] = round(max(0.0, 1.0 - overdue), 4)
    return record


def combine(parts: dict[str, float | None], weights: dict[str, float]) -> dict:
    """The ``score`` record: 0..100 from the parts that apply."""
    used = {k: v for k, v in parts.items() if v is not None and weights.get(k, 0) > 0}
    total = sum(weights[k] for k in used)
    value = 100.0 * sum(weights[k] * v for k, v in used.items()) / total if total else None
    return {
        "score": None if value is None else round(value, 1),
        "parts": {k: None if v is None else round(v, 4) for k, v in parts.items()},
        "weights": {k: weights.get(k, 0) for k in parts},
    }


def penalize_truncation(record: dict, weights: dict[str, float]) -> dict:
    """The ``score`` record of a run that suspects truncation: its completeness part (1 when it did not
    apply: no required fields) times ``TRUNCATION_FACTOR``, with a note in ``notes``.

    >>> penalize_truncation(combine({"schema": 1.0, "completeness": 1.0}, {"schema": 1, "completeness": 1}),
    ...                     {"schema": 1, "completeness": 1})["score"]
    75.0
    """
    parts = dict(record.get("parts") or {})
    complete = parts.get("completeness")
    parts["completeness"] = (1.0 if complete is None else complete) * TRUNCATION_FACTOR
    return {**combine(parts, weights), "notes": [*record.get("notes", []), TRUNCATION_NOTE]}


def rescore(details: dict, weights: dict[str, float], now: dt.datetime) -> dict:
    """A stored run's score with freshness as of ``now`` (what the CLI shows); its notes kept."""
    stored = details.get("score") or {}
    parts = dict(stored.get("parts") or {})
    fresh = details.get("freshness") or {}
    if fresh.get("source_since"):
        parts["freshness"] = freshness(fresh["source_since"], fresh.get("cadence_s"), now)["value"]
    if not parts:
        return stored
    return {**combine(parts, weights), **({"notes": stored["notes"]} if stored.get("notes") else {})}
