"""Find personal data in a dataset's published columns, chunk by chunk, while it is staged.

Detectors (each a regular expression that works inside Chinese text: no ``\\b``,
which Python counts as a word boundary only between ASCII-like characters, but
lookarounds on digits and Latin letters, so ``电话13812345678联系`` matches):

- ``resident_id``: 18-character resident ID numbers (GB 11643) with a plausible
  region and birth date, kept only when the MOD 11-2 check digit is right;
- ``mobile``: 1[3-9]xxxxxxxxx, with an optional +86 and 3-4-4 separators;
- ``landline``: an area code (010, 02x, 0xxx) and a 7-8 digit number;
- ``licence_plate``: a province abbreviation, a letter and 5 (6 for new energy) characters;
- ``email``;
- ``person_name``: only in columns a manifest declares to hold names.

Everything runs vectorized over a chunk's column: one pass of RE2 (Arrow compute,
no lookarounds) with a pattern every detector's matches also match finds the few
values worth a closer look, and only those are tested detector by detector with
the exact patterns (pandas ``.str``). Findings are counts of values per column and
detector, with a few *redacted* examples (``138****5678``): the raw value never
leaves the scan.

    >>> scan = PrivacyScan()
    >>> scan.feed(pd.DataFrame({"note": ["请致电13812345678联系", "无"]}))
    >>> scan.report()["found"]["note"]["mobile"]
    {'values': 1, 'examples': ['138****5678']}
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from twinhub.standards.tiers import covered

_EDGE_L = r"(?<![0-9A-Za-z])"
_EDGE_R = r"(?![0-9A-Za-z])"
# numbers start after anything but a digit: a Latin prefix (ID310104…, Tel13812345678) does not hide one
_NUM_L = r"(?<![0-9])"
_SEP = "[-. ]?"  # 138-1234-5678, 138.1234.5678, 138 1234 5678, 310104 19520403 5894
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_PLATE_CHARS = "A-HJ-NP-Z0-9"  # plates never use I or O
PATTERNS = {
    "resident_id": _NUM_L + r"[1-8][0-9]{5}" + _SEP  # region
                   + r"(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])" + _SEP  # birth date
                   + r"[0-9]{3}[0-9Xx]" + _EDGE_R,  # sequence, check digit
    "mobile": _NUM_L + r"(?:(?:\+|00)86[- ]?)?1[3-9][0-9]" + _SEP + "[0-9]{4}" + _SEP + "[0-9]{4}" + _EDGE_R,
    "landline": _NUM_L + r"(?:\(0(?:10|2[0-9]|[3-9][0-9]{2})\)|0(?:10|2[0-9]|[3-9][0-9]{2}))" + _SEP  # area code
                + r"[2-9][0-9]{2,3}" + _SEP + "[0-9]{4}" + _EDGE_R,
    "licence_plate": f"[{_PROVINCES}][A-HJ-NP-Z][·• ]?[{_PLATE_CHARS}]{{4}}[{_PLATE_CHARS}挂学警港澳]"
                     f"(?:[{_PLATE_CHARS}])?" + _EDGE_R,
    "email": _EDGE_L + r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
}
# a whole value that looks like a person's name: 2-4 Han characters (with · for names
# such as 阿依古丽·买买提), or two or three capitalised Latin words
# (literal characters, not \u escapes: Arrow's RE2 reads the same pattern)
_HAN = "[\u4e00-\u9fff]"
PERSON_NAME = f"^(?:{_HAN}{{2,4}}|{_HAN}{{1,8}}·{_HAN}{{1,8}}|[A-Z][a-z]+(?: [A-Z][a-z]+){{1,2}})$"
# the same patterns for RE2 (Arrow compute), which has no lookarounds: an edge is the start, the end
# or a character that is not a digit or Latin letter. A value matches one iff it matches the other.
RE2_PATTERNS = {name: p.replace(_EDGE_L, "(?:^|[^0-9A-Za-z])").replace(_NUM_L, "(?:^|[^0-9])")
                .replace(_EDGE_R, "(?:$|[^0-9A-Za-z])") for name, p in PATTERNS.items()}
# all of them in one RE2 pass over every value; each then runs alone on the few values it lets through
# (a looser prefilter, e.g. any 7 digits, lets every code like R0001234 through and costs more)
PREFILTER = "|".join(f"(?:{p})" for p in RE2_PATTERNS.values())
# full-width digits, letters, @ and + (not the punctuation every Chinese text has): when a column holds
# any, it is matched as ASCII (NFKC)
_FULL_WIDTH = "[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\uff20\uff0b]"
DETECTORS = tuple(PATTERNS) + ("person_name",)
MAX_EXAMPLES = 3

_SEPARATORS = "[-. ]"
_CAPTURE = {name: re.compile(f"({p})") for name, p in PATTERNS.items()}
_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_ID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)


def id_check_digit_ok(numbers: Iterable[str]) -> np.ndarray:
    """GB 11643 MOD 11-2, vectorized: per 18-character number, whether its last character is right.

    >>> id_check_digit_ok(["11010519491231002X", "110105194912310021"]).tolist()
    [True, False]
    """
    numbers = list(numbers)
    if not numbers:
        return np.zeros(0, dtype=bool)
    raw = np.frombuffer("".join(numbers).upper().encode("ascii"), dtype=np.uint8).reshape(-1, 18)
    total = (raw[:, :17].astype(np.int64) - ord("0")) @ _ID_WEIGHTS
    return _ID_CHECK[total % 11] == raw[:, 17]


# How a mask hides each kind of personal data inside a text (catalog/masking.py runs the same table in SQL):
# (RE2 pattern, replacement). The left edge is consumed and put back (RE2 has no lookbehind); there is no
# right edge, so a longer number is masked too (when in doubt, hide more).
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
EMAIL_VALUE = f"^{_EMAIL}$"  # a value that is one e-mail address and nothing else
MASK_SPANS = (
    ("resident_id", r"(^|[^0-9])([1-8][0-9]{3})[0-9]{2}[-. ]?(?:18|19|20)[0-9]{6}[-. ]?([0-9]{3}[0-9Xx])",
     r"\1\2**********\3"),
    ("mobile", r"(^|[^0-9])((?:(?:\+|00)86[- ]?)?1[3-9][0-9])[-. ]?[0-9]{4}[-. ]?([0-9]{4})", r"\1\2****\3"),
    ("landline", r"(^|[^0-9])(\(0(?:10|2[0-9]|[3-9][0-9]{2})\)|0(?:10|2[0-9]|[3-9][0-9]{2}))([-. ]?)[2-9][0-9]{2,3}"
                 r"[-. ]?([0-9]{4})", r"\1\2\3****\4"),
    ("email", r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})", r"\1***\2"),
    ("licence_plate", f"([{_PROVINCES}][A-HJ-NP-Z])[·• ]?[{_PLATE_CHARS}]{{3,4}}([{_PLATE_CHARS}挂学警港澳]{{2}})",
     r"\1***\2"),
)
ANY_SPAN = "|".join(f"(?:{pattern})" for _, pattern, _ in MASK_SPANS)
_SPANS = tuple((re.compile(pattern), replacement) for _, pattern, replacement in MASK_SPANS)
_EMAIL_VALUE = re.compile(EMAIL_VALUE)
_ANY_SPAN = re.compile(ANY_SPAN)


def redact(text: str) -> str:
    """Mask a value: the rule of ``catalog.masking``'s mask, in Python.

    A value that is one e-mail address keeps its first letter and domain; a text holding phones, ID
    numbers, e-mail addresses or plates keeps its words with each of those masked; any other value
    (a name, an address) keeps a little of itself.

    >>> [redact(v) for v in ["13812345678", "31010519491231002X", "张三", "沪A12345", "li.lei@example.cn"]]
    ['138****5678', '3101**********002X', '张*', '沪A***45', 'l***@example.cn']
    >>> redact("备注@王先生 电话138.1234.5678")
    '备注@王先生 电话138****5678'
    """
    if _EMAIL_VALUE.match(text):
        return text[:1] + "***" + text[text.index("@"):]
    if _ANY_SPAN.search(text):
        for pattern, replacement in _SPANS:
            text = pattern.sub(replacement, text)
        return text
    n = len(text)
    head, tail = keep(n)
    return text[:head] + "*" * (n - head - tail) + text[n - tail:] if n else text


# (longest value, characters kept at the start, at the end) of a mask; longer values keep 4 and 4
MASK_KEEP = ((1, 0, 0), (3, 1, 0), (6, 1, 1), (8, 2, 2), (14, 3, 4))
MASK_KEEP_LONGER = (4, 4)


def keep(n: int) -> tuple[int, int]:
    """How many leading and trailing characters a mask keeps of an ``n``-character value."""
    for limit, head, tail in MASK_KEEP:
        if n <= limit:
            return head, tail
    return MASK_KEEP_LONGER


def _text(column: pd.Series) -> tuple[pd.Series, pa.Array] | None:
    """The column's non-empty text values, as pandas and as Arrow; None when it holds no text."""
    if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
        return None
    values = column.dropna()
    try:
        return values, pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # text mixed with other objects: scan the text
        values = values[values.map(lambda v: type(v) is str)]
        return values, pa.array(values, type=pa.string(), from_pandas=True)


def _may_hold_full_width(arrow: pa.Array | pa.ChunkedArray) -> bool:
    """Whether any value could hold a full-width character: UTF-8 writes every one of them (U+FF0B to
    U+FF5A) as EF BC xx or EF BD xx, so text without a 0xEF byte has none. A byte test is ~60x cheaper
    than the regex over every value; bytes outside a sliced array's values only send it to the regex."""
    pieces = arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]
    return any(data is not None and bool((np.frombuffer(data, dtype=np.uint8) == 0xEF).any())
               for data in (piece.buffers()[2] for piece in pieces))


def _where(index: pd.Index, arrow: pa.Array, pattern: str) -> pd.Series:
    """The values RE2 finds ``pattern`` in (as pandas, with their row labels)."""
    hit = pc.match_substring_regex(arrow, pattern).fill_null(False)
    return pd.Series(arrow.filter(hit).to_pylist(), index=index[hit.to_numpy(zero_copy_only=False)], dtype=object)


class PrivacyScan:
    """Fed every staged chunk; reports per column and detector how many values hold personal data.

    ``declared`` maps a column to the kinds of personal data its manifest
    declares (``phone``, ``resident_id``, ``person_name``, ``none`` …); names are
    looked for only in columns declaring ``person_name``. ``skip`` names columns
    not to scan (the geometry).
    """

    def __init__(self, declared: Mapping[str, Iterable[str]] | None = None, skip: Iterable[str] = ()):
        self.declared = {c: tuple(k) for c, k in (declared or {}).items()}
        self.skip = set(skip)
        self.values_scanned = 0
        self.columns_scanned: set[str] = set()
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.examples: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))

    def feed(self, frame: pd.DataFrame) -> None:
        for name in frame.columns:
            if name in self.skip or name.startswith("_"):
                continue
            text = _text(frame[name])
            if text is None:
                continue
            values, arrow = text
            full_width = _may_hold_full_width(arrow) and pc.any(pc.match_substring_regex(arrow, _FULL_WIDTH)).as_py()
            if full_width:  # １３８… is 138…
                arrow = pc.utf8_normalize(arrow, "NFKC")
            self.columns_scanned.add(name)
            self.values_scanned += len(values)
            if "person_name" in self.declared.get(name, ()):
                self._names(name, _where(values.index, arrow, PERSON_NAME))
            candidates = _where(values.index, arrow, PREFILTER)
            if len(candidates):
                self._detect(name, candidates)

    def _detect(self, column: str, values: pd.Series) -> None:
        arrow = pa.array(values, type=pa.string(), from_pandas=True)
        for detector, pattern in RE2_PATTERNS.items():
            hits = _where(values.index, arrow, pattern)
            if not len(hits):
                continue
            if detector == "resident_id":
                self._resident_ids(column, hits)
            else:
                self._add(column, detector, len(hits), hits.head(MAX_EXAMPLES).str.extract(_CAPTURE[detector])[0])

    def _resident_ids(self, column: str, values: pd.Series) -> None:
        found = values.str.extractall(_CAPTURE["resident_id"])[0]
        if found.empty:
            return
        found = found.str.replace(_SEPARATORS, "", regex=True)  # 310104-19520403-5894 is 310104195204035894
        valid = found[id_check_digit_ok(found.tolist())]
        rows = valid.index.get_level_values(0).unique()
        if len(rows):
            self._add(column, "resident_id", len(rows), valid.head(MAX_EXAMPLES))

    def _names(self, column: str, hits: pd.Series) -> None:
        if len(hits):
            self._add(column, "person_name", len(hits), hits.head(MAX_EXAMPLES))

    def _add(self, column: str, detector: str, count: int, samples: pd.Series) -> None:
        self.counts[column][detector] += count
        examples = self.examples[column][detector]
        for sample in samples.dropna():
            if len(examples) < MAX_EXAMPLES and redact(sample) not in examples:
                examples.append(redact(sample))

    def found(self) -> dict[str, list[str]]:
        """Per column, the detectors that matched at least one value."""
        return {c: sorted(d) for c, d in self.counts.items() if d}

    def undeclared(self) -> dict[str, list[str]]:
        """Per column, the kinds found that its manifest does not declare."""
        out = {c: sorted(set(d) - covered(self.declared.get(c, ()))) for c, d in self.found().items()}
        return {c: d for c, d in out.items() if d}

    def report(self) -> dict:
        """The run's findings, ready for the run's details (JSON)."""
        return {
            "columns_scanned": sorted(self.columns_scanned),
            "values_scanned": self.values_scanned,
            "found": {c: {d: {"values": n, "examples": list(self.examples[c][d])} for d, n in sorted(ds.items())}
                      for c, ds in sorted(self.counts.items())},
            "undeclared": self.undeclared(),
        }


def summary(report: Mapping) -> list[str]:
    """One line per column holding undeclared personal data, for the steward."""
    lines = []
    for column, kinds in (report.get("undeclared") or {}).items():
        found = report["found"][column]
        parts = ", ".join(f"{k} in {found[k]['values']} values (e.g. {', '.join(found[k]['examples'])})" for k in kinds)
        lines.append(f"column {column!r} holds undeclared personal data: {parts}")
    return lines
