"""Versions: reading the catalog as of a version or a time, and serving an earlier version again.

Every publish is a DuckLake snapshot, and a dataset's versions are the
snapshots its publishing runs committed. A user names a dataset's version by
its number for that dataset, ``v1``, ``v2``, ``v3``... in publish order,
rollbacks included (catalog/runs.py ``NUMBERED``); the snapshot id beside it is
catalog-wide (a dataset goes 9 -> 19 -> 21) and is what ``--as-of`` reads,
every table at once. History is not rewritten: a
rollback publishes the rows (and the quarantine) of an earlier version as a
*new* version, recorded in ``catalog.runs`` with status ``rollback``. The one
exception is :func:`purge`, for a version that leaked what it must not have:
it removes that version from history, data files included, audited.

    >>> parse_as_of("12")
    12
    >>> parse_as_of("2026-05-01T08:00:00+08:00").isoformat()
    '2026-05-01T08:00:00+08:00'
    >>> parse_version("v3")
    3
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass, field

import duckdb
import sqlglot

from twinhub.catalog import audit, column_tiers, notes, variants
from twinhub.catalog.lake import ALIAS, META_SCHEMA, Lake, UnknownVersion, commit, with_retry
from twinhub.catalog.preview import preview_path, render_preview
from twinhub.catalog.runs import NUMBERED, version_label
from twinhub.errors import UserError
from twinhub.standards.tiers import highest, rank

log = logging.getLogger("twinhub")

AS_OF_HINT = ("give a catalog snapshot number (the `snapshot` column of `twinhub catalog show DATASET`) "
              "or a time such as 2026-05-01 08:00")
VERSION_SYNTAX = re.compile(r"[vV](\d{1,9})")


class AmbiguousVersion(UserError, ValueError):
    """A bare number where a dataset's version is asked: it could be a version number or a snapshot id."""


@dataclass
class RollbackResult:
    dataset: str
    run_id: str
    version: int | None  # the new version's catalog snapshot
    restored: int  # the catalog snapshot of the version whose rows are served again
    rows_published: int
    rows_quarantined: int
    summary: str
    number: int | None = None  # the new version's number for the dataset (v4)
    restored_number: int | None = None  # the number of the version served again (v1)

    @property
    def label(self) -> str:
        return version_label(self.number, self.version)

    @property
    def restored_label(self) -> str:
        return version_label(self.restored_number, self.restored)


def parse_version(text: str) -> int:
    """A dataset's version number from ``v3`` (what ``twinhub catalog show`` lists).

    A bare number is refused: scripts written when versions were catalog snapshot ids would
    otherwise roll back to another version than they meant."""
    value = str(text).strip()
    if match := VERSION_SYNTAX.fullmatch(value):
        return int(match.group(1))
    if value.isdigit():
        raise AmbiguousVersion(
            f"{value!r}: versions are numbered per dataset now (v1, v2, v3... in `twinhub catalog show DATASET`); "
            f"write v{value} for the dataset's version {value}, or --snapshot {value} for catalog snapshot {value} "
            "(what a bare number meant before)")
    raise UnknownVersion(f"{value!r} is not a version: write it as in `twinhub catalog show DATASET`, e.g. v3 "
                         "(or --snapshot N for a catalog snapshot)")


def find_version(con: duckdb.DuckDBPyConnection, dataset: str, number: int | None = None,
                 snapshot: int | None = None) -> dict:
    """The version of ``dataset`` numbered ``number``, or held by catalog ``snapshot`` (a record of
    :func:`dataset_versions`); UnknownVersion, listing its versions, when there is none."""
    known = dataset_versions(con, dataset)
    found = next((v for v in known if (v["number"] == number if number is not None else v["version"] == snapshot)),
                 None)
    if found is None:
        asked = f"v{number}" if number is not None else f"at catalog snapshot {snapshot}"
        listed = ", ".join(version_label(v["number"], v["version"]) for v in reversed(known)) or "none"
        raise UnknownVersion(f"{dataset} has no version {asked}; its versions: {listed}")
    return found


def parse_as_of(text: str | int, tz: dt.tzinfo | None = None) -> int | dt.datetime:
    """A version number, or a time (naive times are in ``tz``, default UTC)."""
    value = str(text).strip()
    if re.fullmatch(r"\d{1,18}", value):
        return int(value)
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise UnknownVersion(f"--as-of {value!r} is neither a version nor a time: {AS_OF_HINT}") from None
    return when if when.tzinfo else when.replace(tzinfo=tz or dt.timezone.utc)


def dataset_versions(con: duckdb.DuckDBPyConnection, dataset: str) -> list[dict]:
    """Versions of ``dataset`` still readable (newest first): version (its catalog snapshot, also as
    ``snapshot``), number (1, 2, 3... for this dataset), run_id, status, published_at."""
    rows = con.execute(
        f"""SELECT s.snapshot_id, v.number, v.run_id, v.status, s.snapshot_time
            FROM ({NUMBERED}) v JOIN {ALIAS}.snapshots() s
              ON json_extract_string(s.commit_extra_info, '$.run_id') = v.run_id
             AND json_extract_string(s.commit_extra_info, '$.dataset') = v.dataset
            WHERE v.dataset = ? ORDER BY 1 DESC""",
        [dataset],
    ).fetchall()
    return [dict(zip(("version", "number", "run_id", "status", "published_at"), r), snapshot=r[0]) for r in rows]


def rollback(lake: Lake, dataset: str, version: int, run_id: str, reason: str = "") -> RollbackResult:
    """Serve ``dataset`` as it was at catalog snapshot ``version`` (one of its versions) again, as a new
    version (one transaction). :func:`find_version` turns a version number (v3) into its snapshot."""
    con = lake.connect()
    try:
        target = find_version(con, dataset, snapshot=version)
        served = dataset_versions(con, dataset)[0]
        if served["version"] == version:
            raise UnknownVersion(f"{version_label(target['number'], version)} is the one {dataset} serves now: "
                                 "nothing to roll back")
        result = with_retry(lambda: _commit(con, dataset, target, run_id, reason), what=f"rolling back {dataset}")
        result.number = next((v["number"] for v in dataset_versions(con, dataset) if v["run_id"] == run_id), None)
    finally:
        con.close()
    render_preview(lake, dataset, result.version)
    return result


def _q(name: str) -> str:
    return notes.q(name)


def _commit(con: duckdb.DuckDBPyConnection, dataset: str, target: dict, run_id: str, reason: str) -> RollbackResult:
    info = json.dumps({"run_id": run_id, "dataset": dataset})
    figures = commit(con, lambda: _restore(con, dataset, target, run_id, reason),
                     f"rollback {dataset} to {version_label(target['number'], target['version'])}", info)
    snapshot = con.execute(
        f"SELECT max(snapshot_id) FROM {ALIAS}.snapshots() WHERE commit_extra_info = ?", [info]
    ).fetchone()[0]
    return RollbackResult(dataset, run_id, snapshot, target["version"], *figures, restored_number=target["number"])


def _restore(con: duckdb.DuckDBPyConnection, dataset: str, target: dict, run_id: str,
             reason: str) -> tuple[int, int, str]:
    """Inside the transaction: the rows, quarantine, entry and columns of ``target`` become current."""
    department, name = dataset.split(".", 1)
    table, version = f"{_q(department)}.{_q(name)}", target["version"]
    at = f"AT (VERSION => {int(version)})"
    old_run = _one(con, f"SELECT * FROM {META_SCHEMA}.runs {at} WHERE run_id = ? AND dataset = ?",
                   [target["run_id"], dataset], "run record")
    # read before this transaction rewrites catalog.columns: each column at the stricter of its tier then
    # and now (a column graded up since, by a steward or the scan, stays graded up in the version restored)
    tiers = _stricter(column_tiers.read(con, dataset, at), column_tiers.read(con, dataset))
    tier = _served_tier(con, dataset, at)
    geometry = _geometry(con, department, name)
    before = notes.facts(con, dataset, table, None, geometry)
    previous_run = notes.previous_run(con, dataset)
    _replace_rows(con, dataset, at, run_id)
    _restore_variant(con, dataset, at, tiers)
    entry = _one(con, f"SELECT * FROM {META_SCHEMA}.datasets {at} WHERE dataset = ?", [dataset], "catalog entry")
    now = dt.datetime.now(dt.timezone.utc)
    con.execute(f"DELETE FROM {META_SCHEMA}.datasets WHERE dataset = ?", [dataset])
    con.execute(f"INSERT INTO {META_SCHEMA}.datasets BY NAME SELECT * REPLACE (?::TIMESTAMPTZ AS updated_at, "
                f"?::VARCHAR AS classification) FROM {META_SCHEMA}.datasets {at} WHERE dataset = ?",
                [now, tier, dataset])
    key = tuple(r[0] for r in con.execute(
        f"SELECT name FROM {META_SCHEMA}.columns {at} WHERE dataset = ? AND is_key", [dataset]).fetchall())
    after = notes.facts(con, dataset, table, None, geometry)
    published = after["rows"]
    quarantined = con.execute(f"SELECT count(*) FROM {META_SCHEMA}.quarantine WHERE dataset = ?",
                              [dataset]).fetchone()[0]
    release = notes.compare(before, after)
    release["summary"] = f"rollback to {version_label(target['number'], version)}: {release['summary']}"
    release["rollback_to"] = version
    release["rollback_to_number"] = target["number"]
    notes.record(con, dataset, run_id, previous_run, release)
    notes.record_columns(con, dataset, after["schema"], key, list(after["labels"]), geometry)
    column_tiers.write(con, dataset, tiers)
    details = {"rollback_to_version": version, "rollback_to_number": target["number"],
               "rollback_of_run": target["run_id"], "reason": reason}
    values = {
        "run_id": run_id, "dataset": dataset, "status": "rollback", "started_at": now, "finished_at": now,
        "rows_read": published + quarantined, "rows_published": published, "rows_quarantined": quarantined,
        "source_fingerprint": old_run["source_fingerprint"], "config_fingerprint": old_run["config_fingerprint"],
        "standard": old_run["standard"], "standard_version": old_run["standard_version"],
        "source_crs": old_run["source_crs"], "target_crs": entry["target_crs"],
        "extent": json.dumps(after["extent"]), "details": json.dumps(details, ensure_ascii=False),
    }
    con.execute(f"INSERT INTO {META_SCHEMA}.runs ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                list(values.values()))
    return published, quarantined, release["summary"]


def _replace_rows(con: duckdb.DuckDBPyConnection, dataset: str, at: str, run_id: str) -> None:
    """The dataset's rows and quarantine become those of the version ``at``."""
    department, name = dataset.split(".", 1)
    table = f"{_q(department)}.{_q(name)}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE restored AS SELECT * FROM {table} {at}")
    if [c for c, _ in notes.columns_of(con, department, name)] == _temp_columns(con):
        con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} SELECT * FROM restored")
    else:  # the schema changed since that version
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM restored")
    con.execute(f"DELETE FROM {META_SCHEMA}.quarantine WHERE dataset = ?", [dataset])
    con.execute(
        f"INSERT INTO {META_SCHEMA}.quarantine SELECT dataset, ?, source_row, checks, reasons, record "
        f"FROM {META_SCHEMA}.quarantine {at} WHERE dataset = ?",
        [run_id, dataset],
    )


def _stricter(then: dict[str, dict], now: dict[str, dict]) -> dict[str, dict]:
    """Per column, the tier record (column_tiers.read) with the higher classification; ``then`` on a tie."""
    out = dict(then)
    for name, tier in now.items():
        if name in out and rank(tier["classification"]) > rank(out[name]["classification"]):
            out[name] = tier
    return out


def _served_tier(con: duckdb.DuckDBPyConnection, dataset: str, at: str) -> str | None:
    """The dataset's tier for the version restored: the stricter of its tier then and now."""
    tiers = [r[0] for sql in (f"SELECT classification FROM {META_SCHEMA}.datasets {at} WHERE dataset = ?",
                              f"SELECT classification FROM {META_SCHEMA}.datasets WHERE dataset = ?")
             for r in con.execute(sql, [dataset]).fetchall() if r[0]]
    return highest(tiers) if tiers else None


def _variant_refused(con: duckdb.DuckDBPyConnection, vid: str, at: str, tiers: dict[str, dict]) -> list[str]:
    """Columns of the variant as it was at ``at`` that the dataset's ``tiers`` no longer let out openly."""
    columns = con.execute(f"SELECT name FROM {META_SCHEMA}.columns {at} WHERE dataset = ? AND NOT is_geometry",
                          [vid]).fetchall()
    return [n for (n,) in columns if n in tiers and (rank(tiers[n]["classification"]) > rank("internal")
                                                     or tiers[n].get("personal_data"))]


def _restore_variant(con: duckdb.DuckDBPyConnection, dataset: str, at: str, tiers: dict[str, dict]) -> None:
    """The dataset's public variant (catalog/variants.py) as it was at the version ``at``: its rows and its
    catalog entry and columns, or no variant when the version had none. A variant published with a later
    version would otherwise keep serving that version's rows, coarsened. A variant holding a column the
    restored ``tiers`` protect (sensitive or above, personal data) is not restored: none is served."""
    vid = variants.variant_id(dataset)
    department, name = vid.split(".", 1)
    vtable = f"{_q(department)}.{_q(name)}"
    then = con.execute(f"SELECT count(*) FROM {META_SCHEMA}.datasets {at} WHERE dataset = ?", [vid]).fetchone()[0]
    if then and (refused := _variant_refused(con, vid, at, tiers)):
        log.warning("%s: the public variant of that version is not restored: %s no longer open",
                    dataset, ", ".join(refused))
        then = 0
    now = variants.parent_of(con, vid)
    if now == "" or (not then and now is None):  # a dataset of its own, or no variant then nor now
        return
    if then:
        con.execute(f"CREATE OR REPLACE TEMP TABLE restored_variant AS SELECT * FROM {vtable} {at}")
        con.execute(f"CREATE OR REPLACE TABLE {vtable} AS SELECT * FROM restored_variant")
    else:
        con.execute(f"DROP TABLE IF EXISTS {vtable}")
    for meta in ("datasets", "columns"):
        con.execute(f"DELETE FROM {META_SCHEMA}.{meta} WHERE dataset = ?", [vid])
        if then:
            con.execute(f"INSERT INTO {META_SCHEMA}.{meta} BY NAME "
                        f"SELECT * FROM {META_SCHEMA}.{meta} {at} WHERE dataset = ?", [vid])


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list, what: str) -> dict:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    row = cursor.fetchone()
    if row is None:
        raise UnknownVersion(f"the catalog has no {what} for this version: it cannot be rolled back to")
    return dict(zip(names, row))


def _temp_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 'restored' "
                                      "AND database_name = 'temp' ORDER BY column_index").fetchall()]


def _geometry(con: duckdb.DuckDBPyConnection, department: str, name: str) -> str | None:
    return next((c for c, t in notes.columns_of(con, department, name) if t.startswith("GEOMETRY")), None)


class PurgeRefused(UserError, ValueError):
    """A purge that would remove the served version, or is asked without a reason."""


@dataclass
class PurgeResult:
    dataset: str
    version: int
    snapshots: list[int]  # the catalog versions expired: none of them can be read any more
    files: list[str]  # data files deleted from disk
    inlined_rows: int  # rows kept in the metadata database that no remaining version could read, deleted
    others: dict[str, list[int]] = field(default_factory=dict)  # other datasets' versions that went with them


def purge(lake: Lake, dataset: str, version: int, reason: str, actor: str | None = None) -> PurgeResult:
    """Remove ``version`` of ``dataset`` from history: what it served cannot be read again, with ``--as-of``
    or from disk.

    DuckLake keeps every version (time travel); data only goes by expiring every snapshot that can still
    see it and then deleting the files no remaining snapshot uses (``ducklake_expire_snapshots``,
    ``ducklake_cleanup_old_files``). The rows of ``version`` (the dataset's, its public variant's, its
    quarantine's) are visible from its snapshot until the dataset's next version, so every snapshot in
    between is expired: other datasets' versions committed meanwhile go too (listed in ``others``; what
    they still serve stays). Rows small enough to live inside the metadata database (DuckLake's data
    inlining) that no remaining snapshot can read are deleted too, and the version's map preview.
    The served version cannot be purged: roll back or publish a corrected version first. Audited
    (action ``purge``), refused attempts too.
    """
    actor = actor or audit.current_actor()
    con = lake.connect()
    try:
        try:
            snapshots, others = _purge_plan(con, dataset, int(version), reason)
        except (PurgeRefused, UnknownVersion) as exc:
            audit.record(lake, audit.AuditEntry(action="purge", statement=f"purge {dataset} version {version}",
                                                status="refused", message=str(exc), tables=[dataset], actor=actor),
                         con=con)
            raise
        with_retry(lambda: con.execute(f"CALL ducklake_expire_snapshots('{ALIAS}', versions => ?)", [snapshots]),
                   what=f"purging {dataset}")
        files = [str(r[0]) for r in with_retry(lambda: con.execute(
            f"SELECT path FROM ducklake_cleanup_old_files('{ALIAS}', cleanup_all => true)").fetchall())]
        inlined = _drop_unreadable_inlined_rows(con, lake)
        audit.record(lake, audit.AuditEntry(
            action="purge", statement=f"purge {dataset} version {version}: {reason}", tables=[dataset],
            actor=actor, message=f"expired versions {snapshots}; {len(files)} files and {inlined} inlined rows "
                                 f"deleted; other datasets' versions gone with them: {others or 'none'}"), con=con)
    finally:
        con.close()
    for snapshot in snapshots:
        for name in (dataset, variants.variant_id(dataset)):
            preview_path(lake, name, snapshot).unlink(missing_ok=True)
    return PurgeResult(dataset, int(version), snapshots, files, inlined, others)


def _purge_plan(con: duckdb.DuckDBPyConnection, dataset: str, version: int,
                reason: str) -> tuple[list[int], dict[str, list[int]]]:
    """The snapshots to expire to purge ``version``, and the other datasets' versions among them."""
    if not (reason or "").strip():
        raise PurgeRefused(f"give the reason for purging: twinhub catalog purge {dataset} --version {version} "
                           f"--reason \"...\"")
    target = find_version(con, dataset, snapshot=version)  # purge names the version by its catalog snapshot
    known = sorted(v["version"] for v in dataset_versions(con, dataset))
    later = [v for v in known if v > version]
    if not later:
        raise PurgeRefused(f"{version_label(target['number'], version)} is the one {dataset} serves now: serve "
                           f"another first (twinhub rollback {dataset} vN, or publish a corrected version), "
                           f"then purge it")
    snapshots = [r[0] for r in con.execute(
        f"SELECT snapshot_id FROM {ALIAS}.snapshots() WHERE snapshot_id >= ? AND snapshot_id < ? ORDER BY 1",
        [version, later[0]]).fetchall()]
    others: dict[str, list[int]] = {}
    for other, snapshot in con.execute(
            f"""SELECT json_extract_string(commit_extra_info, '$.dataset'), snapshot_id FROM {ALIAS}.snapshots()
                WHERE snapshot_id > ? AND snapshot_id < ? ORDER BY 2""", [version, later[0]]).fetchall():
        if other and other != dataset:
            others.setdefault(other, []).append(snapshot)
    return snapshots, others


_INLINED = re.compile(r"ducklake_inlined_data_\d+_\d+")


def _drop_unreadable_inlined_rows(con: duckdb.DuckDBPyConnection, lake: Lake) -> int:
    """Delete rows of DuckLake's inlined data that no remaining snapshot can read (expiring snapshots drops
    the files only they use, but keeps such rows of tables that still exist); returns how many."""
    catalog, schema = lake.metadata_schema.split(".", 1)
    listing = sqlglot.exp.select("table_name").from_(sqlglot.exp.table_("ducklake_inlined_data_tables", db=schema,
                                                                         catalog=catalog, quoted=True))
    deleted = 0
    for (name,) in con.execute(listing.sql("duckdb")).fetchall():
        if not _INLINED.fullmatch(str(name)):
            continue
        table = sqlglot.exp.table_(name, db=schema, catalog=catalog, quoted=True)
        snapshots = sqlglot.exp.table_("ducklake_snapshot", db=schema, catalog=catalog, quoted=True)
        readable = sqlglot.parse_one(
            "EXISTS (SELECT 1 FROM s WHERE s.snapshot_id >= t.begin_snapshot AND s.snapshot_id < t.end_snapshot)",
            read="duckdb")
        readable.find(sqlglot.exp.Table).replace(snapshots.as_("s"))
        for column in readable.find_all(sqlglot.exp.Column):
            if column.table == "t":
                column.set("table", sqlglot.exp.to_identifier(name, quoted=True))
        condition = sqlglot.exp.and_(sqlglot.exp.column("end_snapshot").is_(sqlglot.exp.null()).not_(),
                                     sqlglot.exp.not_(readable))
        deleted += con.execute(sqlglot.exp.delete(table, where=condition).sql("duckdb")).fetchone()[0]
    return deleted
