"""A quarantine reason: which check a row failed, on which column, with what value and why.

The catalog stores a row's reasons as a JSON list of objects with exactly these keys, in this order
(``twinhub quarantine`` reads them back): ``check``, ``column``, ``source_column``, ``value``, ``message``.
"""

from __future__ import annotations

import json
import typing as t


class Reason(t.NamedTuple):
    """One failure of one row. A NamedTuple rather than a frozen dataclass: conform makes one per failing
    cell, and a frozen dataclass costs five times a dict to make (a NamedTuple: twice) on chunks where
    every row fails."""

    check: str
    column: str | None
    source_column: str | None
    value: object  # a short JSON-able form of the value (conform's ``_short``)
    message: str | None

    def as_dict(self) -> dict:
        """The reason as the catalog stores it (these keys, in this order)."""
        return {"check": self.check, "column": self.column, "source_column": self.source_column,
                "value": self.value, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict) -> Reason:
        """A stored reason (keys a reason has not, e.g. a duplicate key's missing ``source_column``, are None)."""
        return cls(data["check"], data.get("column"), data.get("source_column"), data.get("value"),
                   data.get("message"))


def reasons_json(reasons: t.Iterable[Reason]) -> str:
    """The JSON the catalog stores for a row's reasons."""
    return json.dumps([r.as_dict() for r in reasons], ensure_ascii=False, default=str)
