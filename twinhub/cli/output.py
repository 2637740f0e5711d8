"""Print records as an aligned table (CJK-width aware), JSON or CSV.

Any value a query returns prints, nested or not: dates and times as ISO text, BLOBs as hex,
decimals as their exact digits, intervals as Python writes a timedelta, NaN and infinities as
null in JSON (which has no such numbers), structs and maps as JSON objects, lists as arrays.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import math
import unicodedata
from collections.abc import Mapping, Sequence

FORMATS = ("table", "json", "csv")


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def plain(value: object) -> object:
    """``value`` as JSON can hold it (see the module docstring), recursively."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    return _json_default(value)


def _cell(value: object, limit: int = 60) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, (Mapping, list, tuple)):
        text = json.dumps(plain(value), ensure_ascii=False)
    elif isinstance(value, (bytes, bytearray, memoryview, dt.date, dt.time)):
        text = str(_json_default(value))
    else:
        text = str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([_width(c)] + [_width(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v + " " * (w - _width(v)) for v, w in zip(values, widths)).rstrip()

    out = [line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells]
    return "\n".join(out)


def _json_default(value: object) -> object:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, decimal.Decimal):
        return str(value)  # exact digits: a float would round them
    return str(value)


def _csv_value(value: object) -> object:
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(plain(value), ensure_ascii=False)
    return value if value is None or isinstance(value, (bool, int, float, str)) else _json_default(value)


def render(columns: Sequence[str], rows: Sequence[Sequence[object]], fmt: str = "table") -> str:
    if fmt == "json":
        records = [dict(zip(columns, plain(list(row)))) for row in rows]
        return json.dumps(records, ensure_ascii=False, indent=2, allow_nan=False)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_csv_value(v) for v in row] for row in rows])
        return buffer.getvalue().rstrip("\n")
    return table(columns, rows)
