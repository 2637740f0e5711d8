"""The audit between staging and publishing: is this stage fit to become the served version?

Row-level problems never block a publish on their own (those rows are
quarantined); the audit looks at the stage as a whole. A wrong CRS puts most
points outside the city, a wrong column mapping fails most rows' types, a
truncated export loses most rows: publishing such a stage would replace good
data with little, so those checks block it. Label coverage below the
manifest's threshold only warns: the mapped rows are good, and the unmapped
ones wait in quarantine for a crosswalk entry. So does ``completeness``: a
source that looks cut off at an export limit (twinhub/hub/completeness.py)
is worth a person's look, but its rows are good.

Each audit is one function in ``AUDIT_STEPS``.

Which quarantine reasons count toward which audit is each check's own
declaration (``audit`` in :mod:`twinhub.standards.checks`): a check added to
the registry with a blocking audit blocks publishing with no change here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlglot import exp

from twinhub.catalog.stage import Stage
from twinhub.hub.manifest import Quality
from twinhub.standards.checks import AUDITS, GEOMETRY, LABELS, SCHEMA, checks


def condition(audit: str, geometry: str | None) -> str:
    """SQL over a reason's ``check_name`` and ``column_name`` (:meth:`Stage.failing`): the reasons that
    count toward ``audit``, by the registered checks' ``audit`` (and ``audit_on_geometry`` for a reason
    on the ``geometry`` column)."""
    on_geometry = exp.column("column_name").eq(exp.Literal.string(geometry or ""))
    off_geometry = exp.NullSafeNEQ(this=exp.column("column_name"), expression=exp.Literal.string(geometry or ""))
    anywhere = [c.name for c in checks() if c.audit == audit and c.audit_on_geometry == audit]
    only_off = [c.name for c in checks() if c.audit == audit and c.audit_on_geometry != audit]
    only_on = [c.name for c in checks() if c.audit != audit and c.audit_on_geometry == audit]
    parts = [_named(anywhere), _named(only_off, off_geometry), _named(only_on, on_geometry)]
    parts = [p for p in parts if p is not None]
    return exp.paren(exp.or_(*parts)).sql("duckdb") if parts else exp.false().sql("duckdb")


def _named(names: list[str], where: exp.Expression | None = None) -> exp.Expression | None:
    if not names:
        return None
    named = exp.column("check_name").isin(*(exp.Literal.string(n) for n in names))
    return exp.paren(exp.and_(named, where)) if where is not None else named


@dataclass
class Audit:
    name: str
    passed: bool
    blocking: bool  # an ERROR that stops publication; otherwise a warning
    description: str
    facts: dict = field(default_factory=dict)
    sample: list[dict] = field(default_factory=list)  # a few failing rows with their reasons


def _share_check(name: str, stage: Stage, limit: float) -> Audit:
    held, by_check, sample = stage.failing(condition(name, stage.geometry_column))
    share = held / stage.rows_checked if stage.rows_checked else 0.0
    blocking = AUDITS[name].blocking
    return Audit(
        name=name,
        passed=share <= limit,
        blocking=blocking,
        description=f"At most {limit:.0%} of rows may fail {AUDITS[name].what}"
                    + ("; above that the stage is not published." if blocking else " (a warning)."),
        facts={"rows_failing": held, "share_failing": round(share, 4), "max_share": limit, "by_check": by_check},
        sample=sample,
    )


def _accounted(stage: Stage, quality: Quality, last_published_rows: int | None) -> Audit:
    accounted = stage.rows_conforming + stage.rows_quarantined + stage.rows_filtered == stage.rows_read
    return Audit("rows_accounted_for", accounted, True, "Every source row is staged, quarantined or filtered.",
                 {"rows_read": stage.rows_read, "rows_conforming": stage.rows_conforming,
                  "rows_filtered": stage.rows_filtered,
                  "rows_quarantined": stage.rows_quarantined})


def _schema(stage: Stage, quality: Quality, last_published_rows: int | None) -> Audit:
    return _share_check(SCHEMA.name, stage, quality.max_schema_failure_share)


def _geometry(stage: Stage, quality: Quality, last_published_rows: int | None) -> Audit:
    return _share_check(GEOMETRY.name, stage, quality.max_geometry_failure_share)


def _labels(stage: Stage, quality: Quality, last_published_rows: int | None) -> Audit:
    unmapped, _, sample = stage.failing(condition(LABELS.name, stage.geometry_column))
    coverage = 1 - unmapped / stage.rows_checked if stage.rows_checked else 1.0
    return Audit(
        LABELS.name, coverage >= quality.min_label_coverage, LABELS.blocking,
        f"At least {quality.min_label_coverage:.0%} of rows carry labels mapped to the vocabulary (a warning).",
        {"rows_with_unmapped_labels": unmapped, "label_coverage": round(coverage, 4),
         "min_coverage": quality.min_label_coverage},
        sample,
    )


def _row_count_drop(stage: Stage, quality: Quality, last_published_rows: int | None) -> Audit | None:
    if not last_published_rows:
        return None  # nothing served yet to compare with
    drop = 1 - stage.rows_conforming / last_published_rows
    return Audit(
        "row_count_drop", drop <= quality.max_row_drop, True,
        f"Conforming rows may fall at most {quality.max_row_drop:.0%} below the served version.",
        {"rows_served": last_published_rows, "rows_conforming": stage.rows_conforming,
         "drop": round(max(drop, 0.0), 4), "max_drop": quality.max_row_drop},
    )


def _completeness(stage: Stage, quality: Quality, last_published_rows: int | None) -> Audit:
    """Suspected truncation (twinhub/hub/completeness.py), assessed when the stage was written: a warning."""
    record = (stage.info.get("details") or {}).get("truncation")
    if record is None:  # a stage written before the assessment existed
        return Audit("completeness", True, False, COMPLETENESS, {"assessed": False})
    findings = record["findings"]
    return Audit("completeness", not record["suspected"], False, COMPLETENESS,
                 {"suspected_truncation": record["suspected"], "signs": [f["sign"] for f in findings],
                  "findings": findings, "rows_read": record["rows_read"]})


def _crs_offset(stage: Stage, quality: Quality, last_published_rows: int | None) -> Audit:
    """About one GCJ-02/BD-09 offset away from the standard's published features (twinhub/hub/crs_offset.py)."""
    record = (stage.info.get("details") or {}).get("crs_offset")
    if record is None:  # nothing published of the standard to compare with
        return Audit("crs_offset", True, False, CRS_OFFSET, {"compared": False})
    findings = record["findings"]
    return Audit("crs_offset", not findings, False, CRS_OFFSET,
                 {"compared": True, "sampled": record["sampled"], "findings": findings})


CRS_OFFSET = ("The rows do not sit about one GCJ-02 or BD-09 offset (a few hundred metres) away from the published "
              "features of the same standard, as points read off a Chinese web map but declared WGS 84 do (a warning).")
COMPLETENESS = ("The source shows no sign of an export cut off at a page or row limit: groups capped at one "
                "round count, a round total, far fewer rows than the standard's other datasets (a warning).")
# Each audit of a stage, in the order they are reported: (stage, quality, rows served now) -> Audit or
# None when it does not apply. A new audit is one function added here (and a check spec in pipelines).
AUDIT_STEPS: list[Callable[[Stage, Quality, int | None], Audit | None]] = [
    _accounted, _schema, _geometry, _labels, _row_count_drop, _completeness, _crs_offset,
]


def audit_stage(stage: Stage, quality: Quality, last_published_rows: int | None) -> list[Audit]:
    """Every audit of ``stage``; publication goes ahead only if no blocking audit failed."""
    return [a for step in AUDIT_STEPS if (a := step(stage, quality, last_published_rows)) is not None]


def blocked(audits: list[Audit]) -> list[Audit]:
    return [a for a in audits if a.blocking and not a.passed]
