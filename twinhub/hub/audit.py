"""The audit between staging and publishing: is this stage fit to become the served version?

Row-level problems never block a publish on their own (those rows are
quarantined); the audit looks at the stage as a whole. A wrong CRS puts most
points outside the city, a wrong column mapping fails most rows' types, a
truncated export loses most rows: publishing such a stage would replace good
data with little, so those checks block it. Label coverage below the
manifest's threshold only warns: the mapped rows are good, and the unmapped
ones wait in quarantine for a crosswalk entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twinhub.catalog.stage import Stage
from twinhub.hub.manifest import Quality


def _in(checks: tuple[str, ...]) -> str:
    return "check_name IN (" + ", ".join(f"'{c}'" for c in checks) + ")"


# Which quarantine reasons count for which audit, as SQL over a reason's check and column.
GEOMETRY = f"({_in(('outside_city', 'geometry_empty', 'geometry_invalid', 'geometry_type'))} " \
           "OR (check_name = 'required' AND column_name = '{geometry}'))"
SCHEMA = f"({_in(('type', 'required', 'minimum', 'maximum', 'min_length', 'max_length', 'pattern', 'enum', 'duplicate_key'))} " \
         "AND column_name IS DISTINCT FROM '{geometry}')"
LABELS = _in(("label_unmapped",))


@dataclass
class Audit:
    name: str
    passed: bool
    blocking: bool  # an ERROR that stops publication; otherwise a warning
    description: str
    facts: dict = field(default_factory=dict)
    sample: list[dict] = field(default_factory=list)  # a few failing rows with their reasons


def _share_check(name: str, stage: Stage, condition: str, limit: float, what: str) -> Audit:
    held, by_check, sample = stage.failing(condition)
    share = held / stage.rows_read if stage.rows_read else 0.0
    return Audit(
        name=name,
        passed=share <= limit,
        blocking=True,
        description=f"At most {limit:.0%} of rows may fail {what}; above that the stage is not published.",
        facts={"rows_failing": held, "share_failing": round(share, 4), "max_share": limit, "by_check": by_check},
        sample=sample,
    )


def audit_stage(stage: Stage, quality: Quality, last_published_rows: int | None) -> list[Audit]:
    """Every audit of ``stage``; publication goes ahead only if no blocking audit failed."""
    geometry = stage.geometry_column or ""
    accounted = stage.rows_conforming + stage.rows_quarantined == stage.rows_read
    audits = [
        Audit("rows_accounted_for", accounted, True, "Every source row is staged or quarantined.",
              {"rows_read": stage.rows_read, "rows_conforming": stage.rows_conforming,
               "rows_quarantined": stage.rows_quarantined}),
        _share_check("schema", stage, SCHEMA.format(geometry=geometry), quality.max_schema_failure_share,
                     "the standard's types, required fields, ranges and keys"),
        _share_check("crs_and_geometry", stage, GEOMETRY.format(geometry=geometry),
                     quality.max_geometry_failure_share, "the geometry checks (inside the city, valid, the right type)"),
    ]
    unmapped, _, sample = stage.failing(LABELS)
    coverage = 1 - unmapped / stage.rows_read if stage.rows_read else 1.0
    audits.append(Audit(
        "label_coverage", coverage >= quality.min_label_coverage, False,
        f"At least {quality.min_label_coverage:.0%} of rows carry labels mapped to the vocabulary (a warning).",
        {"rows_with_unmapped_labels": unmapped, "label_coverage": round(coverage, 4),
         "min_coverage": quality.min_label_coverage},
        sample,
    ))
    if last_published_rows:
        drop = 1 - stage.rows_conforming / last_published_rows
        audits.append(Audit(
            "row_count_drop", drop <= quality.max_row_drop, True,
            f"Conforming rows may fall at most {quality.max_row_drop:.0%} below the served version.",
            {"rows_served": last_published_rows, "rows_conforming": stage.rows_conforming,
             "drop": round(max(drop, 0.0), 4), "max_drop": quality.max_row_drop},
        ))
    return audits


def blocked(audits: list[Audit]) -> list[Audit]:
    return [a for a in audits if a.blocking and not a.passed]
