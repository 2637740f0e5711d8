"""Reclaim the catalog's disk: data files no snapshot references, and (on request) old snapshots.

- Orphaned files: Parquet under the data path that no snapshot references,
  e.g. written by a publish killed before its COMMIT. Files younger than
  ``grace`` are spared: they may belong to a publish still in flight.
- Old snapshots (``expire_before``): versions older than that stop being
  readable with ``--as-of`` and ``twinhub trace``; the files only they used are
  then deleted. The version each dataset serves now is never expired.

``dry_run`` lists what would go and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
from dataclasses import dataclass, field

from twinhub.catalog.lake import ALIAS, Lake, with_retry


@dataclass
class VacuumReport:
    orphaned: list[str] = field(default_factory=list)  # files no snapshot references
    expired_snapshots: list[int] = field(default_factory=list)
    old_files: list[str] = field(default_factory=list)  # files only expired snapshots used
    bytes_freed: int = 0
    dry_run: bool = False


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _paths(con, sql: str) -> list[str]:
    return [str(r[0]) for r in con.execute(sql).fetchall()]


def orphaned_files(lake: Lake, grace: dt.timedelta = dt.timedelta(0)) -> list[str]:
    """Data files no snapshot references and older than ``grace`` (a dry run: nothing is deleted)."""
    con = lake.connect()
    try:
        return _paths(con, _orphans_sql(True, grace))
    finally:
        con.close()


def _orphans_sql(dry_run: bool, grace: dt.timedelta) -> str:
    before = (dt.datetime.now(dt.timezone.utc) - grace).isoformat()
    return (f"SELECT path FROM ducklake_delete_orphaned_files('{ALIAS}', dry_run => {str(dry_run).lower()}, "
            f"older_than => TIMESTAMPTZ '{before}')")


def vacuum(lake: Lake, grace: dt.timedelta, expire_before: dt.datetime | None = None,
           dry_run: bool = False) -> VacuumReport:
    """Remove orphaned files (and expire snapshots before ``expire_before``); report what was freed."""
    report = VacuumReport(dry_run=dry_run)
    con = lake.connect()
    try:
        if expire_before is not None:
            report.expired_snapshots = _expire(con, expire_before, dry_run)
            if report.expired_snapshots and not dry_run:
                cleanup = f"SELECT path FROM ducklake_cleanup_old_files('{ALIAS}', cleanup_all => true, dry_run => "
                report.old_files = _sized(report, _paths(con, cleanup + "true)"))
                with_retry(lambda: _paths(con, cleanup + "false)"))
        orphans = _paths(con, _orphans_sql(True, grace))
        report.orphaned = _sized(report, orphans)
        if not dry_run and orphans:
            with_retry(lambda: _paths(con, _orphans_sql(False, grace)))
    finally:
        con.close()
    return report


def _sized(report: VacuumReport, paths: list[str]) -> list[str]:
    """``paths``, their sizes added to what the vacuum frees (measured before deleting)."""
    report.bytes_freed += sum(_size(p) for p in paths)
    return paths


def _expire(con, before: dt.datetime, dry_run: bool) -> list[int]:
    """Snapshots older than ``before``, except the newest (DuckLake serves from it)."""
    newest = con.execute(f"SELECT max(snapshot_id) FROM {ALIAS}.snapshots()").fetchone()[0]
    ids = [r[0] for r in con.execute(
        f"SELECT snapshot_id FROM {ALIAS}.snapshots() WHERE snapshot_time < ? AND snapshot_id < ? ORDER BY 1",
        [before, newest]).fetchall()]
    if ids and not dry_run:
        with_retry(lambda: con.execute(f"CALL ducklake_expire_snapshots('{ALIAS}', versions => {ids})"))
    return ids


def data_files(lake: Lake) -> list[pathlib.Path]:
    """Every file under the catalog's data path (for checks and reports)."""
    return sorted(p for p in lake.data.rglob("*") if p.is_file())
