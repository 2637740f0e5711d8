"""Text encoding detection shared by the connectors (CSV files, DBF tables without a code page).

``detect_encoding`` tries ``CANDIDATE_ENCODINGS`` in order on a sample and takes the first
that reads it:

- UTF-8, with or without a BOM, is reliable: other encodings' text is almost never valid UTF-8.
- GBK/GB18030 is reliable.
- Big5 bytes are nearly all valid GB18030 too. They are told apart because Big5 text
  lands in GBK's user-defined areas, which decode to Private Use Area characters that
  real GBK text does not contain; so GB18030 is skipped when its reading has any.
  Limit: a tiny Big5 file whose few characters all miss those areas (e.g. just
  ``板橋區``) still reads as GB18030 mojibake.
- Latin-1 is last and is only reached when GB18030 and Big5 both fail. Any bytes decode
  as Latin-1, but real Latin-1 text has no C1 control characters (bytes 0x80-0x9F, which
  Windows-1252 uses for € “ ” …); a sample with them fits no candidate. Limit: Western
  text in which every accented letter is followed by an ASCII letter (``Müller, Köln``)
  is valid GB18030 and reads as Chinese characters.

For those cases the manifest declares ``source.encoding``.

>>> detect_encoding("闸北区".encode("gbk"), whole_file=True)
'gb18030'
>>> detect_encoding(b"Preis 5\\x80", whole_file=True) is None
True
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# tried in order when no encoding is declared
CANDIDATE_ENCODINGS = ("utf-8-sig", "gb18030", "big5", "latin-1")
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")  # where GB18030 puts Big5 text (see the module docstring)
_C1_CONTROLS = re.compile("[\x80-\x9f]")  # never in Latin-1 text, common in Windows-1252 bytes


def plausible(sample: bytes, encoding: str, whole_file: bool) -> bool:
    """Whether ``sample`` reads as text in ``encoding`` (a character cut at the end of a
    partial sample is allowed)."""
    try:
        text = sample.decode(encoding)
    except UnicodeDecodeError as exc:
        if whole_file or exc.start < len(sample) - 4:
            return False
        text = sample[: exc.start].decode(encoding)
    if encoding == "gb18030":
        return not _PRIVATE_USE.search(text)
    if encoding == "latin-1":
        return not _C1_CONTROLS.search(text)
    return True


def detect_encoding(sample: bytes, whole_file: bool) -> str | None:
    """The first of ``CANDIDATE_ENCODINGS`` that reads ``sample``, or None if none does."""
    return next((enc for enc in CANDIDATE_ENCODINGS if plausible(sample, enc, whole_file)), None)


def detect_encoding_of_parts(parts: Iterable[bytes]) -> str | None:
    """The first of ``CANDIDATE_ENCODINGS`` that reads every one of ``parts`` (whole pieces of text, no
    character split between two), or None: ``detect_encoding`` of their concatenation, in bounded memory."""
    candidates = list(CANDIDATE_ENCODINGS)
    for part in parts:
        candidates = [enc for enc in candidates if plausible(part, enc, whole_file=True)]
    return candidates[0] if candidates else None
