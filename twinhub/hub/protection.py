"""The manifest's privacy keys: per-column tiers and protection, and the public variant.

    columns:
      address: {classification: sensitive}
      description: {personal_data: phone, protect: mask}
    public_variant: {grid_m: 500}          # or {aggregate: district, min_count: 5}

Keys under ``columns`` are the standard's field names (what is published).
See docs/governance.md.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from twinhub.standards.tiers import DECLARABLE, ColumnTier, column_tiers, dataset_tier

# the manifest imports this module: keep reading the registry free of pandas (docs/production.md, Scale)
if TYPE_CHECKING:
    from twinhub.standards.pack import Standard
    from twinhub.standards.privacy import PrivacyScan

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
    min_count: int = Field(5, ge=1)  # aggregate: values with fewer rows are left out

    @model_validator(mode="after")
    def _one_way(self) -> PublicVariant:
        if (self.grid_m is None) == (self.aggregate is None):
            raise ValueError("give either grid_m (metres) or aggregate (a field, e.g. district)")
        return self


def _hint(value: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else f" (choose from: {', '.join(choices)})"


def problems(columns: dict[str, ColumnPolicy], variant: PublicVariant | None, standard: Standard) -> dict[str, str]:
    """Manifest problems of these keys against the standard, keyed ``columns.<name>`` / ``public_variant``."""
    out = {}
    names = standard.field_names
    for name in columns:
        if name not in names:
            out[f"columns.{name}"] = f"not a field of standard {standard.name}" + _hint(name, names)
    if variant and variant.grid_m and not standard.geometry_field:
        out["public_variant.grid_m"] = f"standard {standard.name} has no geometry to coarsen; use aggregate"
    if variant and variant.aggregate and variant.aggregate not in names:
        out["public_variant.aggregate"] = (f"not a field of standard {standard.name}"
                                           + _hint(variant.aggregate, names))
    return out


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
