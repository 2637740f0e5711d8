"""Suspected truncation: a staged dataset that looks cut off by an export's page or row limit.

An API export capped at 900 rows per district, a spreadsheet saved at 65,535 rows, a download stopped
at its first 1,000 records: every row is valid, so no row-level check notices. Three signs, each a
DuckDB query over the staged Parquet (and, for the last, the catalog):

``group_cap``
    several groups of a categorical column (districts, categories) share the column's largest count
    and that count is a round page size: 900 bus stops in each of 8 districts.
``total_cap``
    the source's row count is exactly a row or page limit (1,000, 5,000, 65,535, 1,048,576 ...).
``far_smaller``
    far fewer source rows than the city's other published datasets of the same standard
    (under ``FAR_SMALLER_SHARE`` of their median).

A finding is a warning, never a block (a district can truly have 900 stops): the audit's
``completeness`` check reports it, the run's details keep it (``truncation``), the release notes name
it and the interoperability score's ``completeness`` part is halved (standards/score.py).

    >>> round_cap(900), round_cap(65535), round_cap(937), round_cap(40)
    (True, True, False, False)
"""

from __future__ import annotations

import logging

import duckdb
from sqlglot import exp

from twinhub.catalog.lake import META_SCHEMA, Lake
from twinhub.catalog.stage import Stage
from twinhub.hub.redact import PROTECTED_FROM
from twinhub.standards import score
from twinhub.standards.tiers import rank

log = logging.getLogger("twinhub")

# Page sizes and row limits a whole export stops at: round thousands, powers of two, spreadsheet limits.
TOTAL_CAPS = frozenset(
    {1000, 2000, 2500, 3000, 5000, 10_000, 20_000, 25_000, 50_000, 100_000, 200_000, 250_000, 500_000, 1_000_000}
    | {2 ** k for k in range(10, 21)}  # 1024 ... 1048576
    | {2 ** k - 1 for k in (15, 16, 20)}  # 32767, 65535 (old Excel: 65536 rows less the header), 1048575
)
MIN_GROUP_CAP = 100  # a per-group page smaller than this is too likely by chance
GROUP_STEP = 50  # per-group caps are multiples of this (900 per district) or a total cap
MIN_GROUPS_AT_CAP = 3  # groups sharing the largest count before it looks like a cap
MAX_GROUPS = 200  # a text column with more distinct values is not a grouping (names, ids, addresses)
GROUP_SAMPLE = 5000  # rows that rule a text column out as a grouping when they alone hold too many values
FAR_SMALLER_SHARE = 0.10  # of the median source rows of the same standard's other datasets
MIN_PEERS = 2  # other datasets of the standard needed for a median worth comparing with


def round_cap(n: int) -> bool:
    """Whether ``n`` rows could be a per-group page: a multiple of ``GROUP_STEP`` from ``MIN_GROUP_CAP``
    on, or a total cap."""
    return n in TOTAL_CAPS or (n >= MIN_GROUP_CAP and n % GROUP_STEP == 0)


def _ident(column: str) -> str:
    return exp.to_identifier(column, quoted=True).sql("duckdb")


def _text_columns(con: duckdb.DuckDBPyConnection, glob: str, skip: set[str]) -> list[str]:
    """The staged text columns with at most ``MAX_GROUPS`` values among ``GROUP_SAMPLE`` rows: candidate groupings."""
    described = con.execute("SELECT * FROM read_parquet(?) LIMIT 0", [glob]).description
    text = [d[0] for d in described if str(d[1]) == "VARCHAR" and d[0] not in skip]
    if not text:
        return []
    # a column with more than MAX_GROUPS values among the first rows has more in all (names, ids): ruled out
    # on a sample, as the release notes' label columns are; the others' groups are counted whole
    counts = con.execute(f"SELECT {', '.join(f'count(DISTINCT {_ident(c)})' for c in text)} "
                         f"FROM (SELECT * FROM read_parquet(?) LIMIT {GROUP_SAMPLE})", [glob]).fetchone()
    return [c for c, n in zip(text, counts) if n <= MAX_GROUPS]


def _group_cap(con: duckdb.DuckDBPyConnection, glob: str, column: str, named: bool = True) -> dict | None:
    """The ``group_cap`` finding of one column, if its largest groups look capped; ``named``: whether the
    finding may show the groups' values (not for a protected column)."""
    c = _ident(column)
    capped = con.execute(
        f"WITH g AS (SELECT {c} AS value, count(*) AS n FROM read_parquet(?) WHERE {c} IS NOT NULL GROUP BY 1) "
        "SELECT value, n, count(*) OVER () AS groups, max(n) OVER () AS largest FROM g "
        "QUALIFY n = largest ORDER BY value", [glob]).fetchall()
    if not capped:
        return None
    largest, groups = capped[0][1], capped[0][2]
    if groups > MAX_GROUPS or len(capped) < MIN_GROUPS_AT_CAP or not round_cap(largest):
        return None
    values = [str(r[0]) for r in capped] if named else []
    shown = ", ".join(values[:10]) + (", ..." if len(values) > 10 else "") if named else "values not shown"
    return {"sign": "group_cap", "column": column, "cap": int(largest), "groups": values,
            "groups_at_cap": len(capped), "groups_total": int(groups),
            "message": f"{len(capped)} of {groups} {column} groups have exactly {largest} rows, the most of any "
                       f"({shown}): an export capped at {largest} rows per {column}?"}


def protected_columns(privacy: dict | None) -> set[str]:
    """Columns whose values must not leave the run (twinhub/hub/redact.py's tiers) or carry personal data:
    a finding counts their groups but does not name them."""
    columns = (privacy or {}).get("columns") or {}
    return {name for name, c in columns.items()
            if rank(c["classification"]) >= rank(PROTECTED_FROM) or c.get("personal_data")}


def group_caps(stage: Stage, hidden: set[str] = frozenset()) -> list[dict]:
    """``group_cap`` findings over the stage's conforming rows, one per capped column; the groups of a
    ``hidden`` column are counted but not named."""
    if not stage.parts:
        return []
    con = stage.connect()
    try:
        skip = {stage.geometry_column} if stage.geometry_column else set()
        return [f for c in _text_columns(con, stage.rows_glob, skip)
                if (f := _group_cap(con, stage.rows_glob, c, named=c not in hidden))]
    finally:
        con.close()


def total_cap(rows_read: int) -> dict | None:
    """The ``total_cap`` finding when the source's row count is a row or page limit."""
    if rows_read not in TOTAL_CAPS:
        return None
    return {"sign": "total_cap", "rows": rows_read,
            "message": f"the source has exactly {rows_read} rows, a common export or page limit: cut off there?"}


def peer_rows(lake: Lake, standard: str, dataset: str, con: duckdb.DuckDBPyConnection | None = None) -> dict[str, int]:
    """Source rows of the versions served now of the other datasets of ``standard`` (read on ``con``, the
    caller's catalog connection, else on one opened here)."""
    sql = (f"SELECT q.dataset, q.rows_read FROM {META_SCHEMA}.quality q JOIN {META_SCHEMA}.datasets d "
           "USING (dataset) WHERE d.standard = ? AND q.dataset <> ? ORDER BY 1")
    if con is not None:
        return dict(con.execute(sql, [standard, dataset]).fetchall())
    try:
        con = lake.connect(read_only=True)
    except FileNotFoundError:  # no catalog yet: no peers
        return {}
    try:
        return dict(con.execute(sql, [standard, dataset]).fetchall())
    finally:
        con.close()


def far_smaller(rows_read: int, standard: str, peers: dict[str, int]) -> dict | None:
    """The ``far_smaller`` finding against the median of ``peers`` (dataset -> source rows)."""
    if len(peers) < MIN_PEERS:
        return None
    ordered = sorted(peers.values())
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    if not median or rows_read >= FAR_SMALLER_SHARE * median:
        return None
    return {"sign": "far_smaller", "rows": rows_read, "standard": standard, "peers": len(peers),
            "peer_median": median, "share_of_median": round(rows_read / median, 4),
            "message": f"{rows_read} rows, {rows_read / median:.1%} of the median ({median:g}) of the city's "
                       f"{len(peers)} other {standard} datasets: a partial export?"}


def assess(stage: Stage, standard: str, peers: dict[str, int], hidden: set[str] = frozenset()) -> dict:
    """The run-details record ``truncation``: ``suspected`` and the ``findings`` (each a ``sign``, its
    facts and a ``message``); ``hidden``: columns whose groups a finding does not name."""
    findings = group_caps(stage, hidden)
    findings += [f for f in (total_cap(stage.rows_read), far_smaller(stage.rows_read, standard, peers)) if f]
    return {"suspected": bool(findings), "findings": findings, "rows_read": stage.rows_read,
            "peers": len(peers)}


def record(lake: Lake, dataset: str, standard: str, stage: Stage, details: dict,
           weights: dict[str, float], con: duckdb.DuckDBPyConnection | None = None) -> None:
    """Assess the stage into ``details["truncation"]`` and the score's completeness part (before finalize);
    ``con``: a catalog connection the caller holds open."""
    hidden = protected_columns(details.get("privacy"))
    details["truncation"] = assess(stage, standard, peer_rows(lake, standard, dataset, con), hidden)
    if details["truncation"]["suspected"] and details.get("score"):
        details["score"] = score.penalize_truncation(details["score"], weights)
    for finding in details["truncation"]["findings"]:
        log.warning("%s: suspected truncation: %s", dataset, finding["message"])
