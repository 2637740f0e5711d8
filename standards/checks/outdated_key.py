"""``outdated_key``: a row whose primary key names an outdated concept (``replaced_by`` in its vocabulary).

Remapped onto the code that replaced it, the row would collide with the dataset's current row of that code
and ``duplicate_key`` would hold both back: the catalog would lose the current division (闸北区 310108 onto
静安区 310106). Under the history policy ``keep_current`` (docs/standards.md) conform holds the outdated
row as history instead, with a reason naming its replacement, and the current row publishes.
"""

from __future__ import annotations

from twinhub.standards.checks.base import LABELS, Check


class OutdatedKey(Check):
    name = "outdated_key"
    tags = frozenset({"labels", "key"})
    audit = LABELS.name  # a warning: the held row is history, never a reason to withhold the current rows
    score_part = "labels"
    message = "{value!r} is the outdated {code}, replaced by {replaced_by}: held as history ({policy})"
    forms = frozenset()
    found_by = "conform"


OUTDATED_KEY = OutdatedKey()
