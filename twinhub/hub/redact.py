"""Values of protected columns taken out of what leaves a run (Dagster check metadata, logs).

An audit's sample of failing rows carries each reason's ``value`` as the source
wrote it (and messages quoting it). Dagster stores that metadata in its own
database and shows it to anyone who can open the UI, so before it leaves the run
every value of a column at ``sensitive`` or above (by the run's effective tiers:
declared, raised by the scan) is replaced by a marker, in the value and wherever
the message quotes it. A reason naming a column the run has no tier for (a source
column, a composite key ``a, b``) is judged by the highest tier of what it names,
else by the dataset's. A dataset whose locations are protected has no map preview in
Dagster either (:func:`protected_geometry`).

    >>> privacy = {"classification": "restricted", "columns": {"id_no": {"classification": "restricted"},
    ...            "status": {"classification": "internal"}}}
    >>> redact_sample([{"source_row": 3, "reasons": [{"check": "type", "column": "id_no", "value": "3101",
    ...                 "message": "'3101' is not 18 characters"}]}], privacy)
    [{'source_row': 3, 'reasons': [{'check': 'type', 'column': 'id_no', 'value': '[redacted: restricted]', 'message': "'[redacted: restricted]' is not 18 characters"}]}]
"""

from __future__ import annotations

from collections.abc import Mapping

from twinhub.catalog.lake import Lake
from twinhub.standards.tiers import highest, rank

PROTECTED_FROM = "sensitive"  # values of columns at this tier or above never leave the run
MARKER = "[redacted: {tier}]"
TEXT_KEYS = ("message", "detail", "record")  # where a reason may quote its value


def column_tier(column: str | None, privacy: Mapping | None) -> str:
    """The tier of ``column`` in the run (a composite ``a, b``: the highest of its parts; unknown: the dataset's)."""
    privacy = privacy or {}
    columns = privacy.get("columns") or {}
    dataset = privacy.get("classification") or "restricted"  # no tiers known: when in doubt, grade higher
    names = [c.strip() for c in (column or "").split(",") if c.strip()]
    known = [columns[c]["classification"] for c in names if c in columns]
    return highest(known) if known and len(known) == len(names) else dataset


def redact_reason(reason: Mapping, privacy: Mapping | None) -> dict:
    """``reason`` with its value (and any quote of it) replaced when its column is protected."""
    tier = column_tier(reason.get("column"), privacy)
    out = dict(reason)
    if rank(tier) < rank(PROTECTED_FROM) or out.get("value") in (None, ""):
        return out
    value, marker = str(out["value"]), MARKER.format(tier=tier)
    out["value"] = marker
    for key in TEXT_KEYS:
        if isinstance(out.get(key), str):
            out[key] = out[key].replace(value, marker)
    return out


def redact_sample(sample: list[Mapping], privacy: Mapping | None) -> list[dict]:
    """An audit's failing-rows sample with protected values replaced by a marker."""
    return [{**row, "reasons": [redact_reason(r, privacy) for r in row.get("reasons") or []]} for row in sample]


def protected_geometry(lake: Lake, dataset: str) -> str | None:
    """The tier of ``dataset``'s served geometry when it is protected (its map preview would show every
    location), else None."""
    con = lake.connect(read_only=True)
    try:
        tiers = [t for (t,) in con.execute("SELECT classification FROM catalog.columns WHERE dataset = ? "
                                           "AND is_geometry", [dataset]).fetchall()]
    finally:
        con.close()
    tier = highest(tiers, default="public")
    return tier if rank(tier) >= rank(PROTECTED_FROM) else None
