"""Classification tiers: public < internal < sensitive < restricted, and how they combine.

One rule throughout: when in doubt, grade higher. A dataset's tier is at least
its highest column's; a table built from several inherits the highest of its
inputs; personal data lifts a column to at least ``sensitive`` (a resident ID
number to ``restricted``), whether the steward declared it or the scan found it.

    >>> highest(["internal", "sensitive", "public"])
    'sensitive'
    >>> at_least("public", "sensitive")
    'sensitive'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CLASSIFICATIONS = ("public", "internal", "sensitive", "restricted")
DEFAULT = "internal"
PROTECTIONS = ("mask", "pseudonymize", "none")  # how a consumer below the column's tier sees its values

# the least tier of a column holding each kind of personal data
PERSONAL_FLOOR = {
    "resident_id": "restricted",
    "mobile": "sensitive",
    "landline": "sensitive",
    "licence_plate": "sensitive",
    "email": "sensitive",
    "person_name": "sensitive",
}
# what a steward may declare under columns.<name>.personal_data: a detector, "phone" (mobile and
# landline), or "none" (checked: the scan's findings in this column are not personal data)
DECLARABLE = (*PERSONAL_FLOOR, "phone", "none")


def rank(tier: str) -> int:
    return CLASSIFICATIONS.index(tier)


def highest(tiers: Iterable[str], default: str = DEFAULT) -> str:
    """The highest of ``tiers`` (``default`` when there are none)."""
    return max(tiers, key=rank, default=default)


def at_least(tier: str, floor: str) -> str:
    return highest([tier, floor])


def covered(declared: Iterable[str]) -> set[str]:
    """The detectors a column's declaration covers ("phone" covers mobile and landline)."""
    kinds = set(declared)
    if "phone" in kinds:
        kinds |= {"mobile", "landline"}
    if "none" in kinds:
        kinds |= set(PERSONAL_FLOOR)
    return kinds


@dataclass(frozen=True)
class ColumnTier:
    """One published column's effective tier and how it is protected below that tier."""

    name: str
    classification: str
    protection: str  # mask | pseudonymize | none (none: no protected form; withheld below the tier)
    personal_data: tuple[str, ...] = ()  # declared kinds and kinds the scan found, sorted
    raised_by: tuple[str, ...] = ()  # undeclared kinds the scan found, which raised the tier


def column_tier(name: str, base: str, declared: Mapping | None = None, found: Iterable[str] = ()) -> ColumnTier:
    """The effective tier of column ``name``.

    ``base`` is the dataset's declared tier (a column without its own declaration
    inherits it); ``declared`` the manifest's ``columns.<name>`` mapping
    (classification, protect, personal_data); ``found`` the detectors that matched
    values of the column in this run.

    >>> t = column_tier("phone", "internal", {}, ["mobile"])
    >>> t.classification, t.protection, t.personal_data, t.raised_by
    ('sensitive', 'mask', ('mobile',), ('mobile',))
    """
    declared = declared or {}
    kinds = declared.get("personal_data") or ()
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    undeclared = tuple(sorted(set(found) - covered(kinds)))
    personal = tuple(sorted((set(kinds) | set(undeclared)) - {"none"}))
    floors = [PERSONAL_FLOOR.get(k, "sensitive") for k in personal if k != "phone"] + (
        ["sensitive"] if "phone" in personal else [])
    tier = highest([declared.get("classification") or base, *floors])
    protection = declared.get("protect") or ("mask" if personal else "none")
    return ColumnTier(name, tier, protection, personal, undeclared)


def column_tiers(columns: Iterable[str], base: str, declared: Mapping[str, Mapping],
                 found: Mapping[str, Iterable[str]]) -> list[ColumnTier]:
    """Every published column's :func:`column_tier`, in ``columns`` order."""
    return [column_tier(c, base, declared.get(c), found.get(c, ())) for c in columns]


def dataset_tier(declared: str, columns: Iterable[ColumnTier]) -> str:
    """A dataset's effective tier: its declared tier, raised to its highest column's."""
    return highest([declared, *(c.classification for c in columns)])
