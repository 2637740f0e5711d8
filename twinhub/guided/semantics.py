"""What a column's values are, beyond their type: initials, names, ids, constants, lists, hierarchies.

Each answer is a small function of the column's sample values, vectorized (pandas string ops):

>>> import pandas as pd
>>> from twinhub.guided.profile import profile_column
>>> initials(profile_column("NAME", pd.Series(["HP", "XH", "JA", "CN"])))
True
>>> name_like(profile_column("adname", pd.Series(["黄浦区", "徐汇区", "静安区"])))
True
>>> hierarchy(profile_column("类型", pd.Series(["医疗保健服务;综合医院;三级甲等医院", "医疗保健服务;诊所;诊所"])))
Hierarchy(separator=';', depth=3, split=None)
>>> hierarchy(profile_column("modes", pd.Series(["bus|metro", "bus", "ferry|bus"])))
Hierarchy(separator=None, depth=1, split='|')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from twinhub.guided.profile import ColumnProfile

MOSTLY = 0.9  # "the values are X" when this share of the non-blank sample is
_INITIALS = r"^[A-Z]{1,5}[0-9]?$"  # HP, JA, XH, SH01-like short codes in capitals
_CJK = r"[\u3400-\u9fff]"
SEPARATORS = ("|", ";", "；", "/", ">")  # hierarchy levels (a comma is prose's: never a level)
LIST_SEPARATORS = ("|", ";", "；", ",", "，")
ID_WORDS = re.compile(r"(^|[^a-z])(id|fid|oid|objectid|code|no|uid|gid)([^a-z]|$)|编号|代码|编码|序号|标识", re.I)


def _values(column: ColumnProfile) -> pd.Series:
    return column.values if column.values is not None else pd.Series([], dtype="string")


def _share(mask: pd.Series) -> float:
    return float(mask.mean()) if len(mask) else 0.0


def constant(column: ColumnProfile) -> bool:
    """One value in every row (a shapefile's ``Id`` of zeros): no id, no label."""
    return column.distinct == 1 and len(_values(column)) > 1


def initials(column: ColumnProfile) -> bool:
    """Short capitalised ASCII codes (pinyin initials ``HP``, ``JA``): codes, not names."""
    values = _values(column)
    return column.type == "string" and _share(values.str.fullmatch(_INITIALS).fillna(False)) >= MOSTLY


def name_like(column: ColumnProfile) -> bool:
    """Names: Chinese characters, or several words, mostly different from row to row."""
    values = _values(column)
    if column.type != "string" or values.empty:
        return False
    texty = (values.str.contains(_CJK, regex=True) | values.str.contains(r"[A-Za-z]+\s+[A-Za-z]+", regex=True)
             | values.str.contains(r"^[A-Z][a-z]{2,}", regex=True))  # Queens
    numbered = values.str.contains(r"\d", regex=True)  # 漕溪北路100号: an address, not a name
    return (_share(texty.fillna(False)) >= MOSTLY and _share(numbered.fillna(False)) < 0.5
            and column.distinct >= 0.5 * len(values))


def id_named(name: str) -> bool:
    """A name ids go by: Id, ID, FID, OBJECTID, code, 编号, 代码 ..."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name)
    return bool(ID_WORDS.search(spaced))


def id_like(column: ColumnProfile) -> bool:
    """An id: unique in the sample, not constant, not blank, named like one."""
    return column.unique and column.null_share == 0 and not constant(column) and id_named(column.name)


@dataclass(frozen=True)
class Hierarchy:
    """How a text column's cells are built: several values joined by ``split`` (a list), each a
    path of ``depth`` levels joined by ``separator`` (``a;b;c``). None where a cell is one value."""

    separator: str | None
    depth: int
    split: str | None

    def spec(self, column: str, level: int) -> dict:
        """The manifest's field mapping (DERIVE_SYNTAX: {column, split, separator, level})."""
        spec: dict = {"column": column}
        if self.split:
            spec["split"] = self.split
        if self.separator:
            spec.update(separator=self.separator, level=level)
        return spec

    def values(self, series: pd.Series, level: int | None) -> pd.Series:
        """Every value of every cell (lists exploded), at ``level`` (1-based, -1 the last)."""
        values = series.astype("string").str.strip()
        if self.split:
            values = values.str.split(self.split, regex=False).explode().str.strip()
        if self.separator and level is not None:
            parts = values.str.split(self.separator, regex=False)
            values = parts.str[level - 1 if level > 0 else level].str.strip()
        return values[values.notna() & (values != "")].reset_index(drop=True)


def _consistent_depth(values: pd.Series, separator: str) -> int | None:
    """The number of levels when nearly every value has the same number (>= 2), else None."""
    counts = values.str.count(re.escape(separator)) + 1
    depth = int(counts.mode().iloc[0]) if not counts.empty else 1
    return depth if depth >= 2 and _share(counts == depth) >= MOSTLY else None


def hierarchy(column: ColumnProfile) -> Hierarchy | None:
    """The column's list separator and hierarchy, if its cells are lists or paths (else None)."""
    values = _values(column)
    if column.type != "string" or values.empty or float(values.str.len().mean()) > 200:
        return None
    if _share(values.str.contains(r"^[A-Za-z][A-Za-z0-9+.\-]*://|^[A-Za-z]:\\|\d{1,4}[/-]\d{1,2}[/-]\d{1,4}",
                                  regex=True).fillna(False)) > 0.1:
        return None  # URLs, file paths and dates are no lists or hierarchies
    split = None
    for sep in LIST_SEPARATORS:  # a list separator: in some cells but not nearly all, parts repeat across rows
        has = values.str.contains(sep, regex=False)
        if 0.02 <= _share(has) and _consistent_depth(values, sep) is None:
            parts = values.str.split(sep, regex=False).explode().str.strip()
            if parts.nunique() < 0.8 * len(parts) and _share(has) < 1.0:
                split = sep
                break
    items = values.str.split(split, regex=False).explode().str.strip() if split else values
    for sep in SEPARATORS:
        if sep == split:
            continue
        depth = _consistent_depth(items, sep)
        if depth:
            return Hierarchy(sep, depth, split)
    return Hierarchy(None, 1, split) if split else None


def describe(column: ColumnProfile) -> str:
    """What the column looks like, in a few words ("" when nothing particular)."""
    if constant(column):
        return f"the same value ({column.examples[0] if column.examples else ''}) in every row"
    if initials(column):
        return f"romanised initials or codes ({', '.join(column.examples[:3])}), not names"
    found = hierarchy(column)
    if found is not None:
        parts = []
        if found.split:
            parts.append(f"lists joined by {found.split!r}")
        if found.separator:
            parts.append(f"{found.depth}-level categories joined by {found.separator!r}")
        return " of ".join(parts)
    if id_like(column):
        return f"an id (unique over {len(_values(column)):,} rows)"
    if name_like(column):
        return "names"
    return ""
