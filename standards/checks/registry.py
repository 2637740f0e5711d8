"""The one list of checks. compile, conform, the stage audit, ``standards check`` and docs/standards.md
all read it; a check is added here and nowhere else.

The order is the order of a column's checks in a compiled schema, and so of a row's reasons.
"""

from __future__ import annotations

import contextlib
import typing as t

from twinhub.standards.checks.base import AUDITS, FORMS, SCORE_PARTS, Check
from twinhub.standards.checks.duplicate_key import DUPLICATE_KEY
from twinhub.standards.checks.enum import ENUM
from twinhub.standards.checks.geometry_empty import GEOMETRY_EMPTY
from twinhub.standards.checks.geometry_invalid import GEOMETRY_INVALID
from twinhub.standards.checks.geometry_type import GEOMETRY_TYPE
from twinhub.standards.checks.label_unmapped import LABEL_UNMAPPED
from twinhub.standards.checks.max_length import MAX_LENGTH
from twinhub.standards.checks.maximum import MAXIMUM
from twinhub.standards.checks.min_length import MIN_LENGTH
from twinhub.standards.checks.minimum import MINIMUM
from twinhub.standards.checks.outdated_key import OUTDATED_KEY
from twinhub.standards.checks.outside_city import OUTSIDE_CITY
from twinhub.standards.checks.pattern import PATTERN
from twinhub.standards.checks.required import REQUIRED
from twinhub.standards.checks.type import TYPE

_CHECKS: dict[str, Check] = {}


def register(check: Check) -> Check:
    """Add ``check`` (after the others). Refuses a taken id, an unknown audit, form or score part, and a
    declared form the check does not define."""
    if check.name in _CHECKS:
        raise ValueError(f"check {check.name!r} is registered already")
    if check.audit is not None and check.audit not in AUDITS:
        raise ValueError(f"check {check.name!r}: audit {check.audit!r} is none of {sorted(AUDITS)}")
    if not check.forms <= FORMS:
        raise ValueError(f"check {check.name!r}: forms {sorted(check.forms - FORMS)} are none of {sorted(FORMS)}")
    missing = sorted(f for f in check.forms if getattr(type(check), f) is getattr(Check, f))
    if missing:
        raise ValueError(f"check {check.name!r} declares forms {missing} it does not define")
    if check.score_part not in SCORE_PARTS:
        raise ValueError(f"check {check.name!r}: score part {check.score_part!r} is none of {SCORE_PARTS}")
    _CHECKS[check.name] = check
    return check


def unregister(name: str) -> None:
    del _CHECKS[name]


@contextlib.contextmanager
def registered(check: Check) -> t.Iterator[Check]:
    """``check`` in the registry for the ``with`` block only (tests, a city's trial rule)."""
    register(check)
    try:
        yield check
    finally:
        unregister(check.name)


def checks() -> tuple[Check, ...]:
    return tuple(_CHECKS.values())


def get(name: str) -> Check | None:
    """The check with id ``name`` (or pandera's own name for it, e.g. ``not_nullable``)."""
    found = _CHECKS.get(name)
    if found is None:
        found = next((c for c in _CHECKS.values() if c.pandera_name == name), None)
    return found


def renames() -> dict[str, str]:
    """pandera's own check names -> the ids reasons use (``not_nullable`` -> ``required``)."""
    return {c.pandera_name: c.name for c in _CHECKS.values() if c.pandera_name}


def score_parts() -> dict[str, str]:
    """Check id -> the score part its failing rows count against (an unknown id: schema)."""
    return {c.name: c.score_part for c in _CHECKS.values()}


def markdown() -> str:
    """The table of checks docs/standards.md shows (a test keeps the two the same)."""
    lines = ["| check | tags | found by | audit | score part | `standards check` counts | a reason says |",
             "|---|---|---|---|---|---|---|"]
    for c in _CHECKS.values():
        audit = "none" if c.audit is None else f"`{c.audit}` ({'blocks' if c.blocking else 'warns'})"
        counted = ", ".join(f"`{kind}`" for kind in sorted(c.changes)) if "sql" in c.forms else ""
        message = c.message.replace("|", "\\|")
        lines.append(f"| `{c.name}` | {', '.join(sorted(c.tags))} | {c.found_by} | {audit} | {c.score_part} "
                     f"| {counted} | {message} |")
    return "\n".join(lines) + "\n"


for _check in (TYPE, REQUIRED, MINIMUM, MAXIMUM, MIN_LENGTH, MAX_LENGTH, PATTERN, ENUM, LABEL_UNMAPPED,
               GEOMETRY_EMPTY, GEOMETRY_INVALID, GEOMETRY_TYPE, OUTSIDE_CITY, DUPLICATE_KEY, OUTDATED_KEY):
    register(_check)
