"""Profile a sample of a source's columns: inferred type, blanks, distinct values, examples.

>>> import pandas as pd
>>> p = profile_column("beds", pd.Series(["12", "30", "None", "8"]))
>>> p.type, p.null_share, p.distinct
('integer', 0.25, 3)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from twinhub.standards.coerce import _blank
from twinhub.standards.dates import parse_datetimes

TYPE_SHARE = 0.9  # a column is of a type when this share of its non-blank sample values read as it
_DATE_LIKE = re.compile(r"\d{1,4}\s*[-/.年]\s*\d{1,2}|^\d{8}(?:T|\s|$)|^\d{4}$")
_DATE_ONLY = re.compile(r"^\s*\d{1,4}[-/.年]\d{1,2}[-/.月]\d{1,4}日?\s*(?:00:00(?::00)?)?\s*$")
BOOLEANS = frozenset({"true", "false", "yes", "no", "y", "n", "t", "f", "是", "否"})


@dataclass
class ColumnProfile:
    name: str
    type: str  # integer | number | boolean | date | datetime | string | empty
    null_share: float
    distinct: int  # distinct non-blank values in the sample
    unique: bool  # every non-blank sample value differs
    examples: list[str] = field(default_factory=list)
    values: pd.Series | None = field(default=None, repr=False)  # the non-blank sample values, as text
    numeric: pd.Series | None = field(default=None, repr=False)  # the values as numbers, when they are

    def as_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "null_share": round(self.null_share, 4),
                "distinct": self.distinct, "unique": self.unique, "examples": self.examples}


def _share(hits: pd.Series, total: int) -> float:
    return float(hits.sum()) / total if total else 0.0


def infer_type(values: pd.Series) -> tuple[str, pd.Series | None]:
    """The type of non-blank text ``values``, and their numbers when numeric."""
    if values.empty:
        return "empty", None
    numbers = pd.to_numeric(values.str.replace(",", "", regex=False), errors="coerce")
    if _share(numbers.notna(), len(values)) >= TYPE_SHARE:
        whole = numbers.dropna()
        return ("integer" if bool((whole.round() == whole).all()) else "number"), numbers
    if _share(values.str.casefold().isin(BOOLEANS), len(values)) >= TYPE_SHARE:
        return "boolean", None
    if _share(values.str.contains(_DATE_LIKE), len(values)) < TYPE_SHARE:
        return "string", None
    try:
        stamps = parse_datetimes(values, "UTC")
    except (ValueError, OverflowError):  # pandas refuses far-off years: then it is no column of dates
        return "string", None
    if _share(stamps.notna(), len(values)) >= TYPE_SHARE:
        return ("date" if _share(values.str.match(_DATE_ONLY), len(values)) >= TYPE_SHARE else "datetime"), None
    return "string", None


def profile_column(name: str, raw: pd.Series, examples: int = 3) -> ColumnProfile:
    blank = _blank(raw)
    values = raw[~blank].astype("string").str.strip().reset_index(drop=True)
    kind, numbers = infer_type(values)
    distinct = values.drop_duplicates()
    return ColumnProfile(
        name=str(name), type=kind, null_share=float(blank.mean()) if len(raw) else 1.0, distinct=len(distinct),
        unique=len(distinct) == len(values) and len(values) > 0,
        examples=[str(v)[:60] for v in distinct.head(examples)], values=values, numeric=numbers,
    )


def profile_frame(frame: pd.DataFrame) -> list[ColumnProfile]:
    return [profile_column(str(c), frame[c]) for c in frame.columns]
