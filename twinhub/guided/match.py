"""How well a source column fits a standard's field: by name, by type, by values.

Names are compared after folding (``GeoX`` -> ``geo x``, ``case_enquiry_id`` ->
``case enquiry id``) against the field's name, its Table Schema title and the other
names departments use (names.yaml, English and Chinese).

>>> name_score("case_enquiry_id", ["request id", "case enquiry id"])
(1.0, 'case enquiry id')
>>> name_score("机构名称", ["名称"])[0] > 0.6
True
>>> name_score("feature_ty", ["feature type"])
(0.9, 'feature type')
"""

from __future__ import annotations

import difflib
import functools
import pathlib
import re
from dataclasses import dataclass

import frictionless
import yaml

from twinhub.guided.areas import AreaUnit
from twinhub.guided.judge import judge
from twinhub.guided.profile import ColumnProfile
from twinhub.guided.values import ValueFit, confident_code, value_fit

__all__ = ["Fit", "ValueFit", "confident_code", "fit", "label_like", "name_score", "value_fit"]
from twinhub.standards.pack import Standard, StandardsPack

NAMES_FILE = pathlib.Path(__file__).with_name("names.yaml")
SHAPEFILE_NAME_LENGTH = 10
NEARLY_UNIQUE = 0.95  # a key column with this share of distinct values fits, less surely (repeats are quarantined)
TYPE_FIT = {  # field type -> column types that read as it
    "integer": {"integer"}, "number": {"integer", "number"}, "boolean": {"boolean"},
    "date": {"date", "datetime"}, "datetime": {"datetime", "date"},
}


@functools.lru_cache(maxsize=1)
def _names() -> dict[str, list[str]]:
    return yaml.safe_load(NAMES_FILE.read_text(encoding="utf-8"))["fields"]


def fold(name: str) -> str:
    """A column or field name as lower-case words."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", str(name))
    return re.sub(r"[\s_\-.:/()\[\]]+", " ", spaced).strip().casefold()


def field_names(standard: Standard, field: frictionless.Field) -> list[str]:
    """Every name the field goes by: its own, its title, names.yaml's (and a schema's ``synonyms``)."""
    names = _names()
    found = [field.name, field.title or "", *(field.custom.get("synonyms") or ())]
    found += names.get(f"{standard.name}.{field.name}") or names.get(field.name) or []
    return [n for n in dict.fromkeys(fold(n) for n in found) if n]


def _one(column: str, name: str) -> float:
    if column == name:
        return 1.0
    words, wanted = column.split(), name.split()
    if len(wanted) < len(words) and (words[-len(wanted):] == wanted or words[:len(wanted)] == wanted):
        return 0.85
    if len(wanted) == 1 and wanted[0] in words:
        return 0.6
    if len(name) >= 2 and name in column:  # 机构名称 contains 名称; structid contains id (weakly)
        return 0.5 + 0.4 * len(name) / len(column)
    ratio = difflib.SequenceMatcher(None, column, name).ratio()
    return 0.8 * ratio if ratio >= 0.8 else 0.0


def _truncated(column: str, name: str) -> bool:
    """Shapefile (dBASE) columns keep 10 characters: ``feature_ty`` is ``feature type`` cut short."""
    raw = column.casefold()
    return len(raw) == SHAPEFILE_NAME_LENGTH and name.replace(" ", "_")[:SHAPEFILE_NAME_LENGTH] == raw


def name_score(column: str, names: list[str]) -> tuple[float, str]:
    """The best match of ``column`` among ``names``, and the name it matched."""
    folded = fold(column)
    return max(((0.9 if _truncated(column, fold(n)) else _one(folded, fold(n)), fold(n)) for n in names),
               default=(0.0, ""))


def type_fit(field: frictionless.Field, column: ColumnProfile) -> float:
    if column.type == "empty":
        return 0.0
    accepted = TYPE_FIT.get(field.type)
    return 1.0 if accepted is None or column.type in accepted else 0.2


def label_like(column: ColumnProfile, rows: int) -> bool:
    """Short text with few distinct values: the shape of a label column."""
    if column.type != "string" or column.values is None or column.distinct < 2:
        return False
    return column.distinct <= max(50, 0.1 * rows) and float(column.values.str.len().mean()) <= 40


@dataclass(frozen=True)
class Fit:
    field: str
    column: str
    confidence: float
    why: str
    values: float = 0.0  # for a label field: the share of the sample's values its vocabulary maps
    spec: dict | None = None  # a derived mapping (docs: DERIVE_SYNTAX) instead of the bare column name


def fit(standard: Standard, field: frictionless.Field, column: ColumnProfile, pack: StandardsPack,
        area: AreaUnit | None = None) -> Fit:
    """How well ``column`` fits ``field``, with the reason in words (``area``: the column's area unit)."""
    score, via = name_score(column.name, field_names(standard, field))
    why = [f"name matches {via!r} ({score:.2f})"] if score else []
    score *= type_fit(field, column)
    if column.type == "empty":
        why.append("the column is empty in the sample")
    elif score and type_fit(field, column) < 1:
        why.append(f"but {column.type} values for a {field.type} field")
    unique = bool(field.constraints.get("unique")) or field.name in standard.primary_key
    if unique and not column.unique and score:
        values = len(column.values) if column.values is not None else 0
        nearly = values and column.distinct / values >= NEARLY_UNIQUE
        score *= 0.7 if nearly else 0.3  # 0.7: mapped, but marked TODO (below SURE_FIELD)
        why.append(f"but {values - column.distinct} of its {values} values repeat (the field is a key)")
    vocabulary = field.custom.get("vocabulary")
    share = 0.0
    if vocabulary and column.type != "empty":
        share = value_fit(column, pack.vocabulary(vocabulary)).share
        if share:
            why.append(f"{share:.0%} of its values map to {vocabulary}")
        score = max(score, 0.4 + 0.6 * share if share >= 0.3 else 0.0, score * (0.5 + share))
    judged = judge(standard, field, column, pack, area, score, why)
    share = judged.values if judged.values is not None and judged.values > share else share
    return Fit(field.name, column.name, min(judged.score, 1.0), "; ".join(judged.why), share, judged.spec)
