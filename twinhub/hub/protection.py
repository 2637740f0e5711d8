"""The manifest's privacy keys: per-column tiers and protection, and the public variant.

    columns:
      address: {classification: sensitive}
      description: {personal_data: phone, protect: mask}
    public_variant: {grid_m: 500, columns: [category, status]}   # or {aggregate: district, min_count: 5}

Keys under ``columns`` are the standard's field names (what is published).
See docs/governance.md.
"""

from __future__ import annotations

import difflib
import pathlib
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from twinhub.errors import UserError
from twinhub.standards.tiers import DECLARABLE, ColumnTier, column_tiers, dataset_tier, rank

# the manifest imports this module: keep reading the registry free of pandas (docs/production.md, Scale)
if TYPE_CHECKING:
    from twinhub.standards.pack import Standard, StandardsPack
    from twinhub.standards.privacy import PrivacyScan

MIN_COUNT_FLOOR = 5  # the least min_count of an aggregate variant, unless the city or the hub sets its own
FLOOR_KEY = "public_variant_min_count"  # in the standards pack's city.yaml, or the hub's twinhub.yaml

Tier = Literal["public", "internal", "sensitive", "restricted"]


class ColumnPolicy(BaseModel):
    """``columns.<field>``: the column's tier, the personal data it holds, how it is protected."""

    model_config = ConfigDict(extra="forbid")

    classification: Tier | None = None  # default: the dataset's classification
    personal_data: str | list[str] | None = None  # kinds of standards.tiers.DECLARABLE
    protect: Literal["mask", "pseudonymize", "none"] | None = None  # default: mask when personal, else none

    @field_validator("personal_data")
    @classmethod
    def _known_kinds(cls, value: str | list[str] | None) -> str | list[str] | None:
        for kind in [value] if isinstance(value, str) else value or []:
            if kind not in DECLARABLE:
                raise ValueError(f"unknown kind of personal data {kind!r}" + _hint(kind, list(DECLARABLE)))
        return value


class PublicVariant(BaseModel):
    """``public_variant``: a coarsened copy ``<dataset>_public`` published beside the dataset."""

    model_config = ConfigDict(extra="forbid")

    grid_m: float | None = Field(None, gt=0)  # snap each location to the centre of a grid cell this wide
    aggregate: str | None = None  # or: one row per value of this field (e.g. district) with a count
    min_count: int = Field(MIN_COUNT_FLOOR, ge=1)  # aggregate: values with fewer rows are left out
    columns: list[str] = Field(default_factory=list)  # grid: the only columns published beside the location

    @model_validator(mode="after")
    def _one_way(self) -> PublicVariant:
        if (self.grid_m is None) == (self.aggregate is None):
            raise ValueError("give either grid_m (metres) or aggregate (a field, e.g. district)")
        return self


def _hint(value: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else f" (choose from: {', '.join(choices)})"


def problems(columns: dict[str, ColumnPolicy], variant: PublicVariant | None, standard: Standard,
             classification: str = "internal", floor: int = MIN_COUNT_FLOOR) -> dict[str, str]:
    """Manifest problems of these keys against the standard, keyed ``columns.<name>`` / ``public_variant.<key>``.

    ``classification`` is the dataset's (columns without their own tier inherit it); ``floor`` the city's
    least ``min_count``."""
    out = {}
    names = standard.field_names
    for name in columns:
        if name not in names:
            out[f"columns.{name}"] = f"not a field of standard {standard.name}" + _hint(name, names)
    if variant:
        out.update(variant_problems(variant, columns, standard, classification, floor))
    return out


def variant_problems(variant: PublicVariant, columns: dict[str, ColumnPolicy], standard: Standard,
                     classification: str, floor: int) -> dict[str, str]:
    """What keeps ``public_variant`` from being public: a grid without a geometry, a field that is not
    open (above internal, or personal data), a min_count below the city's floor, an unlisted column."""
    out = {}
    names = standard.field_names
    geometry = standard.geometry_field.name if standard.geometry_field else None
    tiers = {t.name: t for t in column_tiers(names, classification, declarations(columns), {})}
    if variant.grid_m and not geometry:
        out["public_variant.grid_m"] = f"standard {standard.name} has no geometry to coarsen; use aggregate"
    if variant.aggregate:
        if variant.aggregate not in names:
            out["public_variant.aggregate"] = (f"not a field of standard {standard.name}"
                                               + _hint(variant.aggregate, names))
        elif reason := _not_open(tiers[variant.aggregate], geometry):
            out["public_variant.aggregate"] = f"{variant.aggregate!r} {reason}; aggregate over an open field " \
                                              f"such as district (public or internal, no personal data)"
        if variant.min_count < floor:
            out["public_variant.min_count"] = (f"{variant.min_count} is below the city's floor of {floor}: "
                                               f"smaller groups single people out; use min_count: {floor} or more")
        if variant.columns:
            out["public_variant.columns"] = f"an aggregate publishes only {variant.aggregate!r} and its count; " \
                                            "remove columns"
    for name in variant.columns:
        key = f"public_variant.columns.{name}"
        if name not in names:
            out[key] = f"not a field of standard {standard.name}" + _hint(name, names)
        elif name == geometry:
            out[key] = "the location is always published, coarsened; list only other columns"
        elif reason := _not_open(tiers[name], geometry):
            out[key] = f"{reason}; a public variant publishes only public or internal columns without personal data"
    return out


def _not_open(tier: ColumnTier, geometry: str | None) -> str | None:
    """Why a column may not be published in a public variant (None: it may)."""
    if tier.name == geometry:
        return "is the location"
    if tier.personal_data:
        return f"holds personal data ({', '.join(tier.personal_data)})"
    if rank(tier.classification) > rank("internal"):
        return f"is {tier.classification}"
    return None


def variant_floor(pack: StandardsPack | None, home: pathlib.Path | None = None) -> int:
    """The least min_count of an aggregate variant: ``public_variant_min_count`` of the hub's twinhub.yaml,
    else of the standards pack's city.yaml, else 5."""
    import yaml

    for path in ([home / "twinhub.yaml"] if home else []) + ([pathlib.Path(pack.root) / "city.yaml"] if pack else []):
        try:
            value = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get(FLOOR_KEY)
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
    return MIN_COUNT_FLOOR


def manifest_problems(manifest, standard: Standard, pack: StandardsPack | None = None,
                      home: pathlib.Path | None = None) -> dict[str, str]:
    """:func:`problems` of a manifest, with the floor of its city and hub."""
    return problems(manifest.columns, manifest.public_variant, standard, manifest.classification,
                    variant_floor(pack, home))


def declarations(columns: dict[str, ColumnPolicy]) -> dict[str, dict]:
    """The ``columns`` key as plain mappings (what standards.tiers takes)."""
    return {name: policy.model_dump(exclude_none=True) for name, policy in columns.items()}


def declared_kinds(columns: dict[str, ColumnPolicy]) -> dict[str, tuple[str, ...]]:
    """Per column, the kinds of personal data the manifest declares."""
    out = {}
    for name, policy in columns.items():
        kinds = policy.personal_data or ()
        out[name] = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    return out


def effective_tiers(classification: str, columns: dict[str, ColumnPolicy], standard: Standard,
                    found: dict[str, list[str]] | None = None) -> tuple[str, list[ColumnTier]]:
    """The dataset's tier and each published column's, given what the scan ``found`` (none: as declared)."""
    tiers = column_tiers(standard.field_names, classification, declarations(columns), found or {})
    return dataset_tier(classification, tiers), tiers


def declared_tier(manifest, standard: Standard | None = None) -> str:
    """The dataset's tier as its manifest declares it (dataset and columns), before any scan.

    (``standard`` is not needed: the manifest check already refused columns it does not have.)"""
    declared = declarations(manifest.columns)
    return dataset_tier(manifest.classification, column_tiers(declared, manifest.classification, declared, {}))


def scan_for(manifest, standard: Standard) -> PrivacyScan:
    """The run's scan of the published columns: not the geometry, nor label columns (their values
    are the vocabulary's codes: a value that is not one is quarantined, never published)."""
    from twinhub.standards.privacy import PrivacyScan

    geometry = standard.geometry_field
    skip = [geometry.name] if geometry else []
    return PrivacyScan(declared_kinds(manifest.columns), skip=skip + list(standard.vocabulary_fields))


def privacy_details(manifest, standard: Standard, scan: PrivacyScan) -> dict:
    """The run's ``privacy`` details: the scan's findings and the tiers this version is published with."""
    report = scan.report()
    found = {c: list(kinds) for c, kinds in report["found"].items()}
    tier, tiers = effective_tiers(manifest.classification, manifest.columns, standard, found)
    return {
        "classification": tier,
        "declared_classification": declared_tier(manifest),
        "columns": {t.name: {"classification": t.classification, "protection": t.protection,
                             "personal_data": list(t.personal_data), "raised_by": list(t.raised_by)} for t in tiers},
        "scan": report,
    }


def published_tiers(manifest, standard: Standard, privacy: dict | None) -> tuple[str, list[ColumnTier]]:
    """The tiers a run publishes with: from its ``privacy`` details, or as declared when it has none."""
    if not privacy or "columns" not in privacy:
        return effective_tiers(manifest.classification, manifest.columns, standard)
    tiers = [ColumnTier(name, c["classification"], c["protection"], tuple(c["personal_data"]), tuple(c["raised_by"]))
             for name, c in privacy["columns"].items()]
    return privacy["classification"], tiers


def steward_lines(privacy: dict | None) -> list[str]:
    """For the steward: each column whose undeclared personal data raised its tier, and what to do."""
    if not privacy:
        return []
    found = privacy["scan"]["found"]
    lines = []
    for name, column in privacy["columns"].items():
        if not column["raised_by"]:
            continue
        what = "; ".join(f"{k} in {found[name][k]['values']} values (e.g. {', '.join(found[name][k]['examples'])})"
                         for k in column["raised_by"])
        lines.append(
            f"column {name!r} holds personal data the manifest does not declare: {what}. This version is published "
            f"with the column {column['classification']} and the dataset {privacy['classification']}; declare it "
            f"under columns.{name} (personal_data, protect), or personal_data: none if these are not personal data"
        )
    return lines


class VersionHeld(UserError, RuntimeError):
    """The scan found personal data in a column its manifest declares ``personal_data: none``: the version
    waits for a steward (twinhub review approve) instead of being published as if it were clean."""


def declared_none_found(manifest, privacy: dict | None) -> dict[str, list[str]]:
    """Per column declared ``personal_data: none``, the kinds of personal data the scan found in it anyway."""
    found = ((privacy or {}).get("scan") or {}).get("found") or {}
    out = {}
    for name, kinds in declared_kinds(manifest.columns).items():
        if "none" in kinds and found.get(name):
            out[name] = sorted(found[name])
    return out


def held_key(held: dict[str, list[str]]) -> str:
    """What a steward acknowledges for a held version: which columns declared none hold which kinds."""
    return "held: " + "; ".join(f"column {c} {k}" for c, kinds in sorted(held.items()) for k in kinds)
