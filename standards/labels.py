"""Map departments' own label values to vocabulary codes.

Matching is on normalized text (Unicode NFKC folds full-width characters,
then case, whitespace and punctuation are folded), so ``"Emergency  Shelter"``,
``"emergency shelter"`` and ``"ＥＭＥＲＧＥＮＣＹ ＳＨＥＬＴＥＲ"`` are one value.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from twinhub.standards.pack import Crosswalk, Vocabulary

NULL_SPELLINGS = frozenset({"", "none", "null", "nan", "n/a", "na", "-", "--", "nil", "无", "空"})
_PUNCT = re.compile(r"[\s\.,;:!?'\"`()\[\]{}<>/\\|_\-—–·、，。；：！？“”‘’（）【】《》]+")


def _null_forms() -> frozenset[str]:
    return frozenset(normalize(v) for v in NULL_SPELLINGS)


def normalize(value: object) -> str:
    """Fold a label for matching.

    >>> normalize("  Emergency_Shelter ")
    'emergency shelter'
    >>> normalize("ＡＢＣ（一）")
    'abc 一'
    """
    text = unicodedata.normalize("NFKC", str(value)).casefold()
    return _PUNCT.sub(" ", text).strip()


def is_null(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value) or normalize(value) in _NULL_FORMS


def lookup_table(vocabulary: Vocabulary, crosswalk: Mapping[str, str] | None = None) -> dict[str, str]:
    """Normalized source value -> code: codes, labels, synonyms, then the crosswalk (which wins).

    An outdated concept's code, labels and synonyms map to the code that replaced it.
    """
    return {value: match.code for value, match in Matcher(vocabulary, inline=crosswalk).table.items()}


@dataclass(frozen=True)
class Match:
    """How one normalized value maps to a code."""

    code: str
    how: str  # code | label | synonym | crosswalk | manifest
    match: str = "exact"  # exact | close | broader
    source: str = ""  # the vocabulary, crosswalk (name@version) or "manifest labels"
    outdated: str | None = None  # the outdated code the value named (then ``code`` replaced it)
    note: str = ""


class Matcher:
    """A field's values -> codes: the vocabulary, then crosswalk files in order, then inline labels.

    Later sources win, so a department's inline labels override a shared crosswalk,
    which overrides the vocabulary's own labels.
    """

    def __init__(
        self,
        vocabulary: Vocabulary,
        crosswalks: Sequence[Crosswalk] = (),
        inline: Mapping[str, str] | None = None,
    ):
        self.vocabulary = vocabulary
        self.table: dict[str, Match] = {}
        ordered = sorted(vocabulary.concepts, key=lambda c: c.outdated)  # current concepts claim shared labels
        for concept in ordered:
            outdated = concept.code if concept.outdated else None
            code = vocabulary.current(concept.code)
            for how, texts in (("code", [concept.code]), ("label", concept.labels.values()),
                               ("synonym", concept.synonyms)):
                for text in texts:
                    self.table.setdefault(
                        normalize(text), Match(code, how, source=vocabulary.name, outdated=outdated, note=concept.note)
                    )
        for crosswalk in crosswalks:
            for entry in crosswalk.entries:
                self._set(entry.value, Match(vocabulary.current(entry.code), "crosswalk", entry.match, crosswalk.ref))
        for value, code in (inline or {}).items():
            self._set(value, Match(vocabulary.current(code), "manifest", source="manifest labels"))

    def _set(self, value: str, match: Match) -> None:
        """A crosswalk's or the manifest's mapping of ``value``; mapping an outdated concept's label onto
        the code that replaced it is still that history (reported, and held where it is a key)."""
        key = normalize(value)
        prior = self.table.get(key)
        if prior is not None and prior.outdated and prior.code == match.code:
            match = Match(match.code, match.how, match.match, match.source, prior.outdated, prior.note)
        self.table[key] = match

    def lookup(self, value: object) -> Match | None:
        return None if is_null(value) else self.table.get(normalize(value))

    def map(self, values: pd.Series) -> tuple[pd.Series, LabelStats]:
        """Codes for ``values`` (unmapped values stay as they are) and what happened to them."""
        counts = values.dropna().value_counts()
        stats = LabelStats()
        codes: dict[object, str | None] = {}
        for value, n in counts.items():
            found = None if is_null(value) else self.lookup(value)
            codes[value] = None if is_null(value) else (found.code if found else value)
            stats.add(str(value), int(n), found, is_null(value))
        return _mapped(values, codes), stats


def _mapped(values: pd.Series, codes: dict) -> pd.Series:
    """``values.map(codes).astype("string")``: for Arrow text through its distinct values (a chunk
    has a handful), each mapped once and taken back to the rows, without a lookup per row."""
    dtype = values.dtype
    arrow = isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"
    if not arrow or not all(isinstance(c, str) or c is None for c in codes.values()):
        return values.map(codes).astype("string")
    text = pa.array(values.array)  # a ChunkedArray when the chunk was sliced from a larger table
    encoded = pc.dictionary_encode(text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text)
    mapped = pa.array([codes.get(v) for v in encoded.dictionary.to_pylist()], type=pa.large_string())
    taken = pc.take(mapped, encoded.indices)
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([taken])), index=values.index, name=values.name)


@dataclass
class LabelStats:
    """Counts of one field's values in one run: mapped, unmapped, how, outdated."""

    values: int = 0  # non-blank values
    mapped: int = 0
    by_how: Counter = field(default_factory=Counter)  # code / label / synonym / crosswalk / manifest
    by_match: Counter = field(default_factory=Counter)  # exact / close / broader
    unmapped: Counter = field(default_factory=Counter)  # value as written -> rows
    outdated: dict = field(default_factory=dict)  # value as written -> {code, replaced_by, note, rows}
    sources: set = field(default_factory=set)

    def add(self, value: str, rows: int, found: Match | None, blank: bool) -> None:
        if blank:
            return
        self.values += rows
        if found is None:
            self.unmapped[value] += rows
            return
        self.mapped += rows
        self.by_how[found.how] += rows
        self.by_match[found.match] += rows
        self.sources.add(found.source)
        if found.outdated:
            entry = self.outdated.setdefault(
                value, {"code": found.outdated, "replaced_by": found.code, "note": found.note, "rows": 0}
            )
            entry["rows"] += rows

    def merge(self, other: LabelStats) -> None:
        self.values += other.values
        self.mapped += other.mapped
        self.by_how.update(other.by_how)
        self.by_match.update(other.by_match)
        self.unmapped.update(other.unmapped)
        self.sources |= other.sources
        for value, entry in other.outdated.items():
            mine = self.outdated.setdefault(value, {**entry, "rows": 0})
            mine["rows"] += entry["rows"]

    def as_dict(self, top: int = 50) -> dict:
        """The run-details record of one field (see docs/standards.md, ``labels``)."""
        return {
            "values": self.values,
            "mapped": self.mapped,
            "unmapped": self.values - self.mapped,
            "share_mapped": round(self.mapped / self.values, 4) if self.values else None,
            "by_how": dict(self.by_how),
            "by_match": dict(self.by_match),
            "unmapped_values": dict(self.unmapped.most_common(top)),
            "outdated": self.outdated,
            "sources": sorted(self.sources),
        }


@dataclass(frozen=True)
class Suggestion:
    code: str
    label: str  # the concept's preferred label (zh and en)
    score: float  # 0..1 similarity of the normalized texts
    via: str  # the text it resembles


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def _similarity(a: str, b: str) -> float:
    """Similarity of two normalized labels, 0..1.

    Characters (difflib's ratio) carry Chinese and single words, raised when one
    text contains the other (社区养老院 / 养老院); texts of several words also need
    their words to match (so "sports hall" is not taken for "hospital").
    """
    ratio = _ratio(a, b)
    short, long = sorted((a, b), key=len)
    if len(short) >= 2 and short in long:
        ratio = max(ratio, 0.6 + 0.4 * len(short) / len(long))
    words_a, words_b = a.split(), b.split()
    if len(words_a) > 1 or len(words_b) > 1:
        fewer, more = sorted((words_a, words_b), key=len)
        matched = sum(any(_ratio(w, v) >= 0.8 for v in more) for w in fewer) / len(fewer)
        ratio = (ratio + matched) / 2
    return ratio


def suggest(
    value: object, vocabulary: Vocabulary, crosswalks: Sequence[Crosswalk] = (), limit: int = 3, cutoff: float = 0.45
) -> list[Suggestion]:
    """Codes whose code, labels, synonyms (or other departments' crosswalked values) resemble ``value``.

    >>> from twinhub.standards.pack import load_pack
    >>> [s.code for s in suggest("Elderly care homes", load_pack().vocabulary("facility_category"))][:1]
    ['elderly_care_home']
    """
    text = normalize(value)
    if not text:
        return []
    best: dict[str, tuple[float, str]] = {}
    candidates = [
        (c.code, t)
        for c in vocabulary.concepts if not c.outdated
        for t in (c.code, *c.labels.values(), *c.synonyms)
    ] + [(vocabulary.current(e.code), e.value) for cw in crosswalks for e in cw.entries]
    for code, candidate in candidates:
        score = _similarity(text, normalize(candidate))
        if score >= cutoff and score > best.get(code, (0.0, ""))[0]:
            best[code] = (score, candidate)
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:limit]
    return [Suggestion(code, _preferred(vocabulary, code), round(score, 3), via) for code, (score, via) in ranked]


def _preferred(vocabulary: Vocabulary, code: str) -> str:
    concept = vocabulary.concept(code)
    if concept is None:
        return code
    return " / ".join(dict.fromkeys(v for k, v in sorted(concept.labels.items(), key=lambda kv: kv[0] != "zh")))


@dataclass(frozen=True)
class Levels:
    """How a label cell is read: ``split`` joins several values in one cell; each value is a hierarchy
    joined by ``separator``, of which ``level`` is taken (1 = the broadest, -1 = the finest)."""

    split: str | None = None
    separator: str | None = None
    level: int | None = None

    def part(self, value: str) -> str | None:
        """The level of one value (None when the value is blank or has no such level).

        >>> Levels(separator=";", level=2).part("医疗保健服务;综合医院;三级甲等医院")
        '综合医院'
        >>> Levels(separator=";", level=-1).part("医疗保健服务;综合医院")
        '综合医院'
        """
        if self.separator is not None and self.level is not None:
            parts = value.split(self.separator)
            index = self.level - 1 if self.level > 0 else len(parts) + self.level
            value = parts[index] if 0 <= index < len(parts) else ""
        value = value.strip()
        return None if is_null(value) else value


@dataclass
class LevelStats:
    """Per field and run: cells holding several values, and those whose values map to different codes."""

    cells: int = 0  # non-blank cells
    multi_valued: int = 0
    conflicting: int = 0  # several values mapped to different codes: the first (in cell order) was taken
    examples: dict = field(default_factory=dict)  # a few conflicting cells -> the codes their values map to

    def as_dict(self) -> dict:
        return {"cells": self.cells, "multi_valued": self.multi_valued, "conflicting": self.conflicting,
                "conflicting_examples": dict(list(self.examples.items())[:5])}


def pick_levels(values: pa.Array | pa.ChunkedArray, levels: Levels, matcher: Matcher | None,
                stats: LevelStats) -> pa.Array:
    """Each cell's value to map: the chosen level of the first of its values (in cell order) that
    ``matcher`` maps, else of its first non-blank value (reported as unmapped); null for a blank cell.

    Vectorized: the distinct cells are split and flattened in Arrow, each distinct value is read and
    looked up once, and the choices taken back to the rows.

    >>> cells = pa.array(["A;B;C|D;E;F", "A;X;Y", None])
    >>> pick_levels(cells, Levels("|", ";", 2), None, LevelStats()).to_pylist()
    ['B', 'X', None]
    """
    text = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    encoded = pc.dictionary_encode(pc.cast(text, pa.large_string()))  # label cells repeat: each read once
    cells = encoded.dictionary
    indices = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    rows = np.bincount(indices[indices >= 0], minlength=len(cells))  # rows per distinct cell
    if not levels.split:  # one value per cell: its level
        parts = pa.array([levels.part(v) for v in cells.to_pylist()], pa.large_string())
        stats.cells += int(rows[~np.asarray(parts.is_null())].sum()) if len(cells) else 0
        return pc.take(parts, encoded.indices)
    return pc.take(_pick_distinct(cells, levels, matcher, stats, rows), encoded.indices)


def _pick_distinct(text: pa.Array, levels: Levels, matcher: Matcher | None, stats: LevelStats,
                   rows: np.ndarray) -> pa.Array:
    """:func:`pick_levels` over distinct cells (``rows``: how many rows hold each)."""
    lists = pc.split_pattern(text, levels.split)
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)  # ascending: cells in order
    encoded = pc.dictionary_encode(flat)
    parts = [levels.part(v) if v is not None else None for v in encoded.dictionary.to_pylist()]
    codes: dict[str, int] = {}  # code -> its number, in order of first sight
    found = [matcher.lookup(p) if matcher is not None and p is not None else None for p in parts]
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    code_ids = np.array([codes.setdefault(f.code, len(codes)) if f else -1 for f in found], np.int64)[indices]
    present = np.array([p is not None for p in parts], dtype=bool)[indices]
    chosen = np.full(len(text), -1, dtype=np.int64)
    for candidates in (code_ids >= 0, present):  # the first mapped value, else the first value
        where = np.flatnonzero(candidates & (chosen[parents] < 0))
        first = where[_group_starts(parents[where])]
        chosen[parents[first]] = first
    _count(stats, text, rows, parents, present, code_ids, list(codes))
    taken = pc.take(pa.array(parts, pa.large_string()), encoded.indices)
    return pc.take(taken, pa.array(chosen, pa.int64(), mask=chosen < 0))


def _group_starts(sorted_cells: np.ndarray) -> np.ndarray:
    """Positions where a run of equal values in an ascending array begins."""
    if not len(sorted_cells):
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate([[True], sorted_cells[1:] != sorted_cells[:-1]]))


def _count(stats: LevelStats, text: pa.Array, rows: np.ndarray, parents: np.ndarray, present: np.ndarray,
           code_ids: np.ndarray, codes: list[str]) -> None:
    """Per distinct cell: ``rows`` holding it; per value: its cell (``parents``), whether it is non-blank,
    its code's number (-1: unmapped)."""
    values_per_cell = np.bincount(parents[present], minlength=len(text))
    stats.cells += int(rows[values_per_cell > 0].sum())
    stats.multi_valued += int(rows[values_per_cell > 1].sum())
    mapped = code_ids >= 0
    cells, ids = parents[mapped], code_ids[mapped]
    if not len(cells):
        return
    starts = _group_starts(cells)  # a cell's values are its mapped values' codes: several differ?
    differ = np.minimum.reduceat(ids, starts) != np.maximum.reduceat(ids, starts)
    conflicting = cells[starts][differ]
    stats.conflicting += int(rows[conflicting].sum())
    for cell in conflicting[: max(0, 5 - len(stats.examples))].tolist():
        stats.examples[text[cell].as_py()] = list(dict.fromkeys(codes[i] for i in ids[cells == cell].tolist()))


def map_labels(values: pd.Series, table: Mapping[str, str]) -> pd.Series:
    """Codes for ``values``; nulls stay null, unmapped values stay as they were.

    Leaving unmapped values in place lets the vocabulary check report the
    department's own value, which is what a steward needs to fix the crosswalk.
    """
    codes = {v: None if is_null(v) else table.get(normalize(v), v) for v in values.dropna().unique()}
    return values.map(codes).astype("string")


_NULL_FORMS = _null_forms()
