"""Propose a manifest for a profiled source: the standard, the field mapping, label drafts.

Each standard is scored by how well the source's columns fill its fields (required
fields weigh most; see :func:`score_standard`), the best is chosen and the runners-up
are reported. Every field mapping carries a confidence and the reason for it, and every
label field a crosswalk draft: each distinct value with the code the vocabulary gives
it, the closest code when one is close enough, or ``?`` for the department to fill.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from twinhub.guided.derive import constant_level, derived_key
from twinhub.guided.inspect import Profile
from twinhub.guided.judge import DISTRICT_FIELDS, DISTRICTS
from twinhub.guided.match import Fit, confident_code, fit, label_like
from twinhub.guided.semantics import Hierarchy
from twinhub.guided.source import GuidedError
from twinhub.standards.labels import Matcher, is_null
from twinhub.standards.pack import Standard, StandardsPack

MAPPED = 0.45  # a field is mapped to a column fitting at least this well
SURE_FIELD = 0.75  # below: the proposal marks the mapping TODO
FALLBACK = 0.2  # a required label field with no named column takes a label-like column at this confidence
REQUIRED_WEIGHT = 0.7  # the score: this much for the required fields, the rest for the optional ones
NO_STANDARD = 0.3  # below: no standard fits
LABEL_BONUS = 0.1  # added to the score times the share of label values the standard's vocabularies know


@dataclass
class FieldMapping:
    field: str
    column: str | None  # the (first) source column it reads
    confidence: float
    why: str
    required: bool
    spec: dict | None = None  # a derived mapping ({key: [...]}, {constant: ...}, {expression: ...}, {column, level})

    @property
    def sure(self) -> bool:
        return self.column is not None and self.confidence >= SURE_FIELD

    def as_dict(self) -> dict:
        return {"field": self.field, "column": self.column, "confidence": round(self.confidence, 3), "why": self.why,
                "required": self.required, "sure": self.sure, **({"spec": self.spec} if self.spec else {})}

    @property
    def value(self) -> str | dict | None:
        """What the manifest's ``fields.<field>`` says: the column, or the derived mapping."""
        return self.spec or self.column


@dataclass
class StandardScore:
    standard: Standard
    score: float
    mappings: list[FieldMapping]
    notes: list[str] = field(default_factory=list)
    vocabularies: dict[str, str] = field(default_factory=dict)  # free text field -> the pack vocabulary its values are

    @property
    def fields(self) -> dict[str, str | dict]:
        return {m.field: m.value for m in self.mappings if m.column}

    def as_dict(self) -> dict:
        return {"standard": self.standard.ref, "score": round(self.score, 3), "notes": self.notes,
                "fields": [m.as_dict() for m in self.mappings], "vocabularies": self.vocabularies}


@dataclass
class LabelEntry:
    value: str
    rows: int  # in the sample (the dry run adds the values it meets later)
    code: str | None  # None: the department fills it in ("?")
    how: str  # vocabulary | suggested | ?
    note: str = ""

    def as_dict(self) -> dict:
        return {"value": self.value, "rows": self.rows, "code": self.code or "?", "how": self.how, "note": self.note}


@dataclass
class LabelDraft:
    field: str
    column: str
    vocabulary: str
    entries: list[LabelEntry]

    @property
    def unfilled(self) -> list[LabelEntry]:
        return [e for e in self.entries if e.code is None]

    def as_dict(self) -> dict:
        return {"field": self.field, "column": self.column, "vocabulary": self.vocabulary,
                "entries": [e.as_dict() for e in self.entries]}


def _geometry_factor(standard: Standard, profile: Profile) -> tuple[float, str]:
    wanted = standard.geometry_field.custom.get("geometryType") if standard.geometry_field else None
    found = (profile.geometry_type or "").removeprefix("Multi")
    if wanted is None:
        return 1.0, ""
    if not found:
        return 0.6, f"the source has no geometry; {standard.name} needs a {wanted}"
    if found != wanted.removeprefix("Multi"):
        return 0.5, f"the source has {profile.geometry_type} geometries; {standard.name} holds {wanted}s"
    return 1.0, ""


def _assign(fits: list[Fit]) -> dict[str, Fit]:
    """Field -> column, best fits first, each column used once."""
    chosen: dict[str, Fit] = {}
    used: set[str] = set()
    for f in sorted(fits, key=lambda f: -f.confidence):
        if f.confidence >= MAPPED and f.field not in chosen and f.column not in used:
            chosen[f.field] = f
            used.add(f.column)
    return chosen


def _unsure_required(standard: Standard, fits: list[Fit], chosen: dict[str, Fit]) -> None:
    """A required field no column fits well takes its best weak fit (marked TODO) rather than none."""
    used = {f.column for f in chosen.values()}
    for f in sorted(fits, key=lambda f: -f.confidence):
        field_ = next(x for x in standard.fields if x.name == f.field)
        if f.field not in chosen and standard.required(field_) and f.confidence >= FALLBACK and f.column not in used:
            chosen[f.field] = f
            used.add(f.column)


def _share_label_columns(standard: Standard, fits: list[Fit], chosen: dict[str, Fit]) -> None:
    """A required text field may read the column a label field maps by its labels (names): ``adname``
    gives admin_area both its area_code (黄浦区 -> 310101) and its name (黄浦区)."""
    labelled = {f.column for name, f in chosen.items() if name in standard.vocabulary_fields and f.values > 0}
    for f in sorted(fits, key=lambda f: -f.confidence):
        field_ = next(x for x in standard.fields if x.name == f.field)
        if (f.field not in chosen and standard.required(field_) and f.column in labelled and f.confidence >= MAPPED
                and field_.name not in standard.vocabulary_fields and f.spec is None):
            chosen[f.field] = f


def _derive(standard: Standard, profile: Profile, pack: StandardsPack, chosen: dict[str, Fit]) -> None:
    """A key no column holds, built from several; a level no column holds, from the division codes."""
    mapped = {name: f.column for name, f in chosen.items() if f.spec is None}
    key = standard.primary_key
    if len(key) == 1 and key[0] not in chosen:
        found = derived_key(profile, key[0], mapped)
        if found is not None:
            chosen[key[0]] = Fit(key[0], found.column, found.confidence, found.why, 0.0, found.spec)
    if "level" not in chosen and (found := constant_level(standard, profile, mapped, pack)) is not None:
        chosen["level"] = Fit("level", found.column, found.confidence, found.why, 0.0, found.spec)


def _fallback(standard: Standard, profile: Profile, chosen: dict[str, Fit]) -> None:
    """A required label field no column is named for takes the most label-like column left, unsure."""
    used = {f.column for f in chosen.values()}
    for name in standard.vocabulary_fields:
        f = next(f for f in standard.fields if f.name == name)
        if name in chosen or not standard.required(f):
            continue
        left = [c for c in profile.attribute_columns if c.name not in used and label_like(c, profile.rows_sampled)]
        if left:
            pick = min(left, key=lambda c: c.distinct)
            chosen[name] = Fit(name, pick.name, FALLBACK, f"no column is named for it; {pick.name} holds short labels "
                                                          f"({pick.distinct} distinct values): check it")
            used.add(pick.name)


def _drop_unmatched_labels(standard: Standard, chosen: dict[str, Fit], notes: list[str]) -> None:
    """An optional label field none of whose values the vocabulary maps would quarantine every row: leave it out."""
    for name in list(chosen):
        f = next(f for f in standard.fields if f.name == name)
        if name in standard.vocabulary_fields and not standard.required(f) and chosen[name].values <= 0:
            notes.append(f"{name}: {chosen[name].column} looks like it ({chosen[name].why}) but none of its values are "
                         f"codes of {standard.vocabulary_fields[name]}; left unmapped (map it with a crosswalk to publish it)")
            del chosen[name]


def score_standard(standard: Standard, profile: Profile, pack: StandardsPack) -> StandardScore:
    """Map the profile's columns onto ``standard``: the mapping, and a score 0..1.

    The score is REQUIRED_WEIGHT x the mean confidence of the required fields plus the
    rest x that of the optional ones, plus LABEL_BONUS x the share of the label fields'
    values its vocabularies know, times a penalty when the geometry does not fit.
    """
    fits = [fit(standard, f, c, pack, profile.areas.get(c.name))
            for f in standard.attribute_fields for c in profile.attribute_columns]
    chosen = _assign(fits)
    notes: list[str] = []
    _drop_unmatched_labels(standard, chosen, notes)
    _share_label_columns(standard, fits, chosen)
    _unsure_required(standard, fits, chosen)
    _fallback(standard, profile, chosen)
    _derive(standard, profile, pack, chosen)
    mappings = [
        FieldMapping(f.name, chosen[f.name].column if f.name in chosen else None,
                     chosen[f.name].confidence if f.name in chosen else 0.0,
                     chosen[f.name].why if f.name in chosen else "no column fits", standard.required(f),
                     chosen[f.name].spec if f.name in chosen else None)
        for f in standard.attribute_fields
    ]
    evidence = [0.0 if m.spec and ("key" in m.spec or "constant" in m.spec) else m.confidence for m in mappings]
    required = [c for m, c in zip(mappings, evidence) if m.required]  # a derived key or constant is no evidence
    optional = [c for m, c in zip(mappings, evidence) if not m.required]  # that the standard fits
    mean = lambda xs: sum(xs) / len(xs) if xs else 1.0  # noqa: E731
    factor, why = _geometry_factor(standard, profile)
    if why:
        notes.append(why)
    labelled = [f.values for name, f in chosen.items() if name in standard.vocabulary_fields]
    bonus = LABEL_BONUS * mean(labelled) if labelled else 0.0  # its vocabularies know the values: strong evidence
    score = min(1.0, REQUIRED_WEIGHT * mean(required) + (1 - REQUIRED_WEIGHT) * mean(optional) + bonus) * factor
    bound = {name: DISTRICTS for name, f in chosen.items() if name in DISTRICT_FIELDS
             and name not in standard.vocabulary_fields and f"are districts of {DISTRICTS}" in f.why}
    return StandardScore(standard, score, mappings, notes, bound)


def choose_standard(profile: Profile, pack: StandardsPack, forced: str | None = None) -> list[StandardScore]:
    """Every standard scored, best first (``forced``, from --standard, always first)."""
    scores = sorted((score_standard(s, profile, pack) for s in pack.standards.values()), key=lambda s: -s.score)
    if forced:
        chosen = score_standard(pack.standard(forced), profile, pack)
        return [chosen] + [s for s in scores if s.standard.name != chosen.standard.name]
    if not scores or scores[0].score < NO_STANDARD:
        best = f" (best: {scores[0].standard.name}, {scores[0].score:.0%})" if scores else ""
        raise GuidedError(f"{profile.describe}: no standard of the hub fits its columns{best}; name one with "
                          f"--standard ({', '.join(sorted(pack.standards))}) or ask the standards team for a new one")
    return scores


def mapped_values(profile: Profile, column: str, spec: dict | None) -> pd.Series:
    """The sample's values a field reads: the column's, or each list item at the mapping's level."""
    values = profile.frame[column].astype("string").str.strip()
    if spec and "column" in spec:
        shape = Hierarchy(spec.get("separator"), 0, spec.get("split"))
        return shape.values(values.dropna(), spec.get("level"))
    return values


def label_draft(name: str, column: str, vocabulary_name: str, profile: Profile, pack: StandardsPack,
                spec: dict | None = None) -> LabelDraft:
    """Each distinct sample value of ``column`` (at ``spec``'s level): the vocabulary's code, a close
    suggestion, or ``?``."""
    vocabulary = pack.vocabulary(vocabulary_name)
    matcher = Matcher(vocabulary)
    values = mapped_values(profile, column, spec)
    entries = []
    for value, rows in values.value_counts().items():
        if is_null(value):
            continue
        found = matcher.lookup(value)
        if found is not None:
            entries.append(LabelEntry(str(value), int(rows), found.code, "vocabulary", f"the vocabulary's {found.how}"))
            continue
        entries.append(suggested_entry(str(value), int(rows), vocabulary))
    return LabelDraft(name, column, vocabulary.name, entries)


def suggested_entry(value: str, rows: int, vocabulary) -> LabelEntry:
    """The closest code if it is clearly close enough, else ``?`` with the best guesses as a note."""
    code, found = confident_code(value, vocabulary)
    if code is not None:
        return LabelEntry(value, rows, code, "suggested", f"resembles {found[0].via!r} ({found[0].score:.2f})")
    note = "; ".join(f"maybe {s.code} ({s.score:.2f})" for s in found) or "no code resembles it"
    return LabelEntry(value, rows, None, "?", note)


def label_drafts(chosen: StandardScore, profile: Profile, pack: StandardsPack) -> list[LabelDraft]:
    vocabularies = chosen.standard.vocabulary_fields
    return [label_draft(m.field, m.column, vocabularies[m.field], profile, pack, m.spec)
            for m in chosen.mappings if m.column and m.field in vocabularies]
