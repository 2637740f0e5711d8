"""How much of a column's values a vocabulary maps, and the code a value clearly resembles."""

from __future__ import annotations

from dataclasses import dataclass

from twinhub.guided.profile import ColumnProfile
from twinhub.standards.labels import Matcher, suggest
from twinhub.standards.pack import Vocabulary

SIMILAR_MAX_CONCEPTS = 300  # vocabularies longer than this are not searched by similarity when scoring
CONFIDENT_LABEL = 0.85  # a suggested code this similar goes into the crosswalk draft; below it, "?"
LABEL_MARGIN = 0.1  # ... and only if the runner-up code is this much less similar (GBIN: litter_bin 0.90, grit_bin 0.83)


@dataclass(frozen=True)
class ValueFit:
    share: float  # share of the sample's rows whose value the vocabulary (or a close suggestion) maps
    exact: float  # the share mapped by the vocabulary itself


_VALUE_FITS: dict[tuple[int, str], ValueFit] = {}


def value_fit(column: ColumnProfile, vocabulary: Vocabulary) -> ValueFit:
    """How much of the column's sample the vocabulary maps (its 50 commonest values; remembered)."""
    if column.values is None or column.type not in ("string", "integer") or column.distinct > 500:
        return ValueFit(0.0, 0.0)
    key = (id(column.values), vocabulary.name)
    if key not in _VALUE_FITS:
        _VALUE_FITS[key] = _value_fit(column, vocabulary)
    return _VALUE_FITS[key]


def _value_fit(column: ColumnProfile, vocabulary: Vocabulary) -> ValueFit:
    matcher = Matcher(vocabulary)
    counts = column.values.value_counts().head(50)
    similar = len(vocabulary.concepts) <= SIMILAR_MAX_CONCEPTS  # a long code list is matched exactly only
    exact = close = 0
    for i, (value, rows) in enumerate(counts.items()):
        if matcher.lookup(value) is not None:
            exact += rows
        elif similar and i < 10 and confident_code(value, vocabulary)[0] is not None:
            close += rows
    total = int(counts.sum())
    return ValueFit((exact + close) / total, exact / total)


def confident_code(value: str, vocabulary: Vocabulary) -> tuple[str | None, list]:
    """The code ``value`` clearly resembles (else None), and the suggestions behind the answer.

    >>> from twinhub.standards.pack import load_pack
    >>> v = load_pack().vocabulary("street_asset_type")
    >>> confident_code("BENCHES", v)[0], confident_code("GBIN", v)[0]
    ('bench', None)
    """
    found = suggest(value, vocabulary, limit=2)
    if not found or found[0].score < CONFIDENT_LABEL:
        return None, found
    if len(found) > 1 and found[0].score - found[1].score < LABEL_MARGIN:
        return None, found
    return found[0].code, found
