"""Fields no single column fills: a key derived from several columns, a constant level.

The manifest syntax is docs/registering.md's (DERIVE_SYNTAX): ``{key: [名称, 地址]}`` builds a
stable key from several columns, ``{constant: county}`` fills a field no column holds.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from twinhub.guided import semantics
from twinhub.guided.inspect import Profile
from twinhub.guided.profile import ColumnProfile
from twinhub.standards.labels import Matcher
from twinhub.standards.pack import Standard, StandardsPack

KEY_COLUMNS = 3  # a derived key combines at most this many columns ...
KEY_CANDIDATES = 6  # ... chosen among this many
PREFERRED = ("name", "address", "road_name", "district")  # mapped to these fields, a column is tried first


@dataclass(frozen=True)
class Derived:
    field: str
    spec: dict
    column: str  # the first column it reads (for the report)
    confidence: float
    why: str


def _key_candidates(profile: Profile, mapped: dict[str, str]) -> list[ColumnProfile]:
    """Columns a key could be built from: complete text or whole numbers, not constant, not measurements."""
    by_column = {column: field for field, column in mapped.items()}
    rank = {f: i for i, f in enumerate(PREFERRED)}
    usable = [c for c in profile.attribute_columns if c.null_share == 0 and not semantics.constant(c)
              and c.type in ("string", "integer") and c.name not in profile.areas]
    return sorted(usable, key=lambda c: (rank.get(by_column.get(c.name, ""), len(rank)), -c.distinct))[:KEY_CANDIDATES]


def derived_key(profile: Profile, field: str, mapped: dict[str, str]) -> Derived | None:
    """The fewest columns that are unique together over the sample, as ``{key: [...]}``; None if none are."""
    frame = profile.frame.rename(columns=str)
    candidates = _key_candidates(profile, mapped)
    rows = len(frame)
    for size in range(1, KEY_COLUMNS + 1):
        for combo in itertools.combinations([c.name for c in candidates], size):
            if rows and not frame[list(combo)].astype("string").duplicated().any():
                repeats = "; ".join(f"{c} alone repeats in {int(frame[c].duplicated(keep=False).sum()):,} rows"
                                    for c in combo if size > 1)
                why = (f"no column is unique; {' + '.join(combo)} {'are' if size > 1 else 'is'} unique together over "
                       f"{rows:,} rows" + (f" ({repeats})" if repeats else "")
                       + ": the key is built from them and changes when one of them is edited")
                return Derived(field, {"key": list(combo)}, combo[0], 0.8, why)
    return None


def admin_level(code: str) -> str | None:
    """The level of a GB/T 2260 code (6 digits; 9 for townships).

    >>> [admin_level(c) for c in ("310000", "310100", "310101", "310101001", "x")]
    ['province', 'prefecture', 'county', 'township', None]
    """
    if not code.isdigit():
        return None
    if len(code) == 9:
        return "township"
    if len(code) != 6:
        return None
    return "province" if code.endswith("0000") else "prefecture" if code.endswith("00") else "county"


def constant_level(standard: Standard, profile: Profile, mapped: dict[str, str], pack: StandardsPack) -> Derived | None:
    """``level: {constant: county}`` when every mapped division code is of one level the field allows."""
    level_field = next((f for f in standard.attribute_fields if f.name == "level"), None)
    allowed = standard.enum_fields.get("level") if level_field else None
    code_field = next((name for name, v in standard.vocabulary_fields.items() if v == "admin_division"
                       and name in mapped), None)
    if not allowed or code_field is None:
        return None
    matcher = Matcher(pack.vocabulary("admin_division"))
    values = profile.frame[mapped[code_field]].astype("string").str.strip().dropna().drop_duplicates()
    found = {v: c.code for v in values if (c := matcher.lookup(v)) is not None}
    levels = {admin_level(code) for code in found.values()}
    if not found or len(found) < 0.9 * len(values) or len(levels) != 1 or next(iter(levels)) not in allowed:
        return None
    (level,) = levels
    value, code = next(iter(found.items()))
    return Derived("level", {"constant": level}, mapped[code_field], 0.9,
                   f"every {code_field} value is a {level}-level division ({len(found)} of them, e.g. {value} -> {code})")
