"""The public variant of a dataset: ``<department>.<dataset>_public``, coarsened, published alongside.

A manifest's ``public_variant`` asks for one of two forms, built from the new
version inside the same publishing transaction (readers never see a variant of
another version):

- ``grid_m``: one row per row, with only the columns the manifest lists
  (``columns``) that are, in this version, neither personal nor above ``internal``,
  and each location replaced by the centre of the grid cell (``grid_m`` metres
  wide, in a metric CRS: the target CRS if it is projected, else the CGCS2000
  3-degree Gauss-Kruger zone of the data) holding it;
- ``aggregate``: one row per value of a field (e.g. ``district``) with the number
  of rows, leaving out values with fewer than ``min_count`` rows (never fewer than
  the city's ``floor``, default 5). A field that is not open in this version
  (above ``internal`` or holding personal data, the scan's findings included)
  publishes no variant.

The hub may withhold the variant (``{"withheld": why}``: the scan raised the dataset
and no steward has acknowledged it yet): the variant is then removed. The rules
are checked here, on the tiers of the version being published, whatever the
manifest check let through.

The variant is classified ``public`` and is an ordinary catalog dataset
(search, exports, queries see it); its run row says which dataset it comes from.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import duckdb
import pyproj

from twinhub.catalog import notes
from twinhub.catalog.lake import META_SCHEMA
from twinhub.catalog.notes import q
from twinhub.errors import UserError
from twinhub.standards.tiers import ColumnTier, rank

SUFFIX = "_public"
TIER = "public"
FLOOR = 5  # the least min_count when the hub gives none (twinhub.hub.protection.variant_floor)
log = logging.getLogger("twinhub")


class VariantConflict(UserError, ValueError):
    """``<dataset>_public`` is already a dataset of its own."""


def variant_id(dataset: str) -> str:
    return dataset + SUFFIX


def metric_crs(target_crs: str, lon: float) -> str:
    """A CRS in metres to snap in: ``target_crs`` if projected in metres, else the 3-degree zone at ``lon``.

    >>> metric_crs("EPSG:4490", 121.47)
    'EPSG:4549'
    """
    crs = pyproj.CRS.from_user_input(target_crs)
    if crs.is_projected and all(a.unit_name in ("metre", "meter") for a in crs.axis_info):
        return target_crs
    central = 3 * round(lon / 3)
    if 75 <= central <= 135:  # CGCS2000 / 3-degree Gauss-Kruger CM 75E .. 135E
        return f"EPSG:{4534 + (central - 75) // 3}"
    return f"+proj=tmerc +lon_0={central} +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m +no_defs +type=crs"


def open_columns(tiers: list[ColumnTier], geometry: str | None) -> list[str]:
    """Columns a public variant may carry: no personal data, tier at most internal."""
    return [t.name for t in tiers if t.name != geometry and not t.personal_data and rank(t.classification) <= 1]


def withheld_because(entry, variant: dict) -> str | None:
    """Why the variant of this version may not be published (None: it may)."""
    if variant.get("withheld"):
        return str(variant["withheld"])
    field = variant.get("aggregate")
    if field and field not in open_columns(list(entry.column_tiers), entry.geometry):
        tier = next((t for t in entry.column_tiers if t.name == field), None)
        what = (f"holds personal data ({', '.join(tier.personal_data)})" if tier and tier.personal_data else
                f"is {tier.classification}" if tier else "is not a published column")
        return f"public_variant.aggregate: {field} {what} in this version; a public variant aggregates only " \
               f"over open fields"
    return None


def _grid_sql(table: str, columns: list[str], geometry: str, grid_m: float, target: str, metric: str) -> str:
    g, cols = q(geometry), "".join(f"{q(c)}, " for c in columns)
    cell = lambda axis: f"(floor(ST_{axis}(_p) / {grid_m!r}) + 0.5) * {grid_m!r}"  # noqa: E731
    return (
        f"SELECT {cols}ST_Transform(ST_Point({cell('X')}, {cell('Y')}), '{metric}', '{target}', always_xy := true) "
        f"AS {g} FROM (SELECT {cols}ST_Transform(ST_Centroid({g}), '{target}', '{metric}', always_xy := true) AS _p "
        f"FROM {table} WHERE {g} IS NOT NULL)"
    )


def _aggregate_sql(table: str, field: str, min_count: int) -> str:
    f = q(field)
    return (f'SELECT {f}, count(*) AS "count" FROM {table} GROUP BY {f} '
            f"HAVING count(*) >= {int(min_count)} ORDER BY {f}")


def parent_of(con: duckdb.DuckDBPyConnection, dataset: str) -> str | None:
    """The dataset ``dataset`` is the public variant of ('' when it is a dataset of its own; None if absent)."""
    if not con.execute(f"SELECT count(*) FROM {META_SCHEMA}.datasets WHERE dataset = ?", [dataset]).fetchone()[0]:
        return None
    row = con.execute(
        f"SELECT json_extract_string(details, '$.variant_of') FROM {META_SCHEMA}.runs WHERE dataset = ? "
        "ORDER BY finished_at DESC LIMIT 1", [dataset]).fetchone()
    return (row[0] if row else None) or ""


def publish_variant(con: duckdb.DuckDBPyConnection, entry, run, variant: dict | None,
                    extent: list | None) -> int | None:
    """Inside the publishing transaction of ``entry`` (catalog.publish.DatasetEntry): build, replace or
    remove its public variant; returns the variant's row count (None when there is none)."""
    vid = variant_id(entry.id)
    parent = parent_of(con, vid)
    if parent == "":
        raise VariantConflict(f"{entry.id}: public_variant would replace the dataset {vid}, which is registered "
                              f"on its own; rename one of them")
    vtable = f"{q(entry.department)}.{q(entry.name + SUFFIX)}"
    withheld = withheld_because(entry, variant) if variant else None
    if withheld:
        log.warning("%s: public variant %s withheld: %s", entry.id, vid, withheld)
        run.details["public_variant"] = {"withheld": withheld}
    if not variant or withheld:
        if parent == entry.id:  # the manifest no longer asks for it, or it may not be published now
            con.execute(f"DROP TABLE IF EXISTS {vtable}")
            for meta in ("datasets", "columns"):
                con.execute(f"DELETE FROM {META_SCHEMA}.{meta} WHERE dataset = ?", [vid])
        return None
    table = f"{q(entry.department)}.{q(entry.name)}"
    tiers = list(entry.column_tiers)
    if variant.get("grid_m"):
        lon = (extent[0] + extent[2]) / 2 if extent else 0.0
        allowed = [c for c in open_columns(tiers, entry.geometry) if c in (variant.get("columns") or ())]
        select = _grid_sql(table, allowed, entry.geometry, float(variant["grid_m"]),
                           entry.target_crs, metric_crs(entry.target_crs, lon))
        key, geometry = [k for k in entry.key if k in allowed], entry.geometry
    else:
        select, key, geometry = _aggregate_sql(table, variant["aggregate"], min_count(variant)), [], None
    con.execute(f"CREATE OR REPLACE TABLE {vtable} AS {select}")
    rows = con.execute(f"SELECT count(*) FROM {vtable}").fetchone()[0]
    schema = notes.columns_of(con, entry.department, entry.name + SUFFIX)
    notes.record_columns(con, vid, [list(c) for c in schema], tuple(key), [], geometry,
                         tiers=[ColumnTier(name, TIER, "none") for name, _ in schema])
    _record_entry(con, entry, run, vid, variant, rows)
    return rows


def min_count(variant: dict) -> int:
    """The variant's min_count, never below the floor."""
    return max(int(variant.get("min_count", FLOOR)), int(variant.get("floor", FLOOR)))


def _record_entry(con: duckdb.DuckDBPyConnection, entry, run, vid: str, variant: dict, rows: int) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    how = (f"locations snapped to the centres of a {variant['grid_m']:g} m grid" if variant.get("grid_m") else
           f"row counts per {variant['aggregate']} "
           f"(values with fewer than {min_count(variant)} rows left out)")
    con.execute(f"DELETE FROM {META_SCHEMA}.datasets WHERE dataset = ?", [vid])
    con.execute(
        f"INSERT INTO {META_SCHEMA}.datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [vid, entry.department, entry.name + SUFFIX, f"{entry.title} (public variant)",
         f"Public variant of {entry.id}: {how}; personal and non-public columns left out.",
         entry.standard, entry.standard_version, TIER, entry.target_crs, vid, now],
    )
    details = {"variant_of": entry.id, "public_variant": variant}
    con.execute(
        f"INSERT INTO {META_SCHEMA}.runs (run_id, dataset, status, started_at, finished_at, rows_read, "
        "rows_published, rows_quarantined, standard, standard_version, target_crs, details) "
        "VALUES (?, ?, 'published', ?, ?, ?, ?, 0, ?, ?, ?, ?)",
        [run.run_id, vid, run.started_at, now, rows, rows, entry.standard, entry.standard_version,
         entry.target_crs, json.dumps(details)],
    )
