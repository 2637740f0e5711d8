"""Map departments' own label values to vocabulary codes.

Matching is on normalized text (Unicode NFKC folds full-width characters,
then case, whitespace and punctuation are folded), so ``"Emergency  Shelter"``,
``"emergency shelter"`` and ``"ＥＭＥＲＧＥＮＣＹ ＳＨＥＬＴＥＲ"`` are one value.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

import pandas as pd

from standards.pack import Vocabulary

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
    """Normalized source value -> code: codes, labels, synonyms, then the crosswalk (which wins)."""
    table: dict[str, str] = {}
    for concept in vocabulary.concepts:
        for text in (concept.code, *concept.labels.values(), *concept.synonyms):
            table.setdefault(normalize(text), concept.code)
    for source_value, code in (crosswalk or {}).items():
        table[normalize(source_value)] = code
    return table


def map_labels(values: pd.Series, table: Mapping[str, str]) -> pd.Series:
    """Codes for ``values``; nulls stay null, unmapped values stay as they were.

    Leaving unmapped values in place lets the vocabulary check report the
    department's own value, which is what a steward needs to fix the crosswalk.
    """
    codes = {v: None if is_null(v) else table.get(normalize(v), v) for v in values.dropna().unique()}
    return values.map(codes).astype("string")


_NULL_FORMS = _null_forms()
