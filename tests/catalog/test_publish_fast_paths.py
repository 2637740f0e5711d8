"""The shortcuts of staging and publishing give what the general paths give.

A stage already in key order is published without a sort (and without the duplicate
query when no key repeats); label columns are found with a sample ruling columns out
first; catalog.columns is written with its tiers in one INSERT; previews draw points
from a coordinate array.
"""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely

from twinhub import sample
from twinhub.catalog import notes, preview
from twinhub.catalog.publish import RunInfo, publish
from twinhub.catalog.stage import QUARANTINE_COLUMNS, Stage
from twinhub.hub.ingest import dataset_entry
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup
from twinhub.standards.tiers import ColumnTier

NO_QUARANTINE = pd.DataFrame(columns=QUARANTINE_COLUMNS)


def _rows(ids: list, start: int = 0) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame({
        "facility_id": pd.array(ids, dtype="string"),
        "name": pd.array([f"n{start + i}" for i in range(n)], dtype="string"),
        "category": pd.array(["pumping_station"] * n, dtype="string"),
        "district": pd.array([None] * n, dtype="string"),
        "address": pd.array([None] * n, dtype="string"),
        "capacity": pd.array([i % 7 for i in range(n)], dtype="Int64"),
        "geometry": pd.Series([shapely.to_wkb(shapely.Point(121.4 + i * 1e-4, 31.2)) for i in range(start, start + n)],
                              dtype=object),
        "_source_row": range(start, start + n),
    })


def _stage(root, chunks: list[list]) -> Stage:
    stage = Stage(root)
    start = 0
    for ids in chunks:
        stage.write(_rows(ids, start), NO_QUARANTINE)
        start += len(ids)
    return stage


@pytest.fixture
def water(hub):
    register(hub, sample.CITY / "water" / "pumping_stations.yaml")
    manifest = lookup(hub, "water.pumping_stations").manifest
    return hub, dataset_entry(manifest, hub.pack.standard("facility"), hub.target_crs)


def _publish(hub, entry, stage: Stage, run_id: str):
    stage.finalize(entry.key, info={})
    stage = Stage.open(stage.root)  # as the publish step reopens it
    run = RunInfo(run_id, dt.datetime.now(dt.timezone.utc), "sha256:" + run_id, "EPSG:4490")
    return stage, publish(hub.lake, entry, stage, run)


def _published(hub, dataset: str) -> list[tuple]:
    """The rows in the order they are stored (rowid), geometry as text."""
    con = hub.lake.connect(read_only=True)
    try:
        return con.execute(
            f"SELECT * EXCLUDE (geometry), ST_AsText(geometry) FROM {dataset} ORDER BY rowid").fetchall()
    finally:
        con.close()


def test_a_stage_in_key_order_is_published_in_that_order_without_the_general_paths(water, monkeypatch):
    hub, entry = water
    ids = [f"K{i:05d}" for i in range(30)]
    stage = _stage(hub.staging_dir / "sorted", [ids[:10], ids[10:25], [], ids[25:]])
    monkeypatch.setattr(Stage, "_duplicates", lambda self, key: pytest.fail("no key repeats: nothing to look for"))
    stage, result = _publish(hub, entry, stage, "sorted")
    assert stage.sorted_by == ["facility_id"]
    assert (result.rows_published, result.rows_quarantined) == (30, 0)
    rows = _published(hub, "water.pumping_stations")
    assert [r[0] for r in rows] == ids


def test_a_stage_out_of_key_order_is_sorted_and_both_paths_publish_the_same_rows(water, tmp_path):
    hub, entry = water
    ids = [f"K{i:05d}" for i in range(30)]
    shuffled = ids[20:] + ids[:20]
    stage, _ = _publish(hub, entry, _stage(hub.staging_dir / "shuffled", [shuffled[:15], shuffled[15:]]), "shuffled")
    assert stage.sorted_by == []
    unsorted = _published(hub, "water.pumping_stations")
    assert [r[0] for r in unsorted] == ids
    # the same rows staged in key order: the same published rows, source rows included (row_sources)
    order = sorted(range(30), key=lambda i: shuffled[i])
    frame = pd.concat([_rows(shuffled[:15]), _rows(shuffled[15:], 15)]).iloc[order].reset_index(drop=True)
    again = Stage(hub.staging_dir / "in-order")
    again.write(frame.iloc[:12], NO_QUARANTINE)
    again.write(frame.iloc[12:], NO_QUARANTINE)
    again, _ = _publish(hub, entry, again, "in-order")
    assert again.sorted_by == ["facility_id"]
    assert _published(hub, "water.pumping_stations") == unsorted


@pytest.mark.parametrize("chunks, in_order", [
    ([["A1", "A2", "A2"], ["A3"]], True),  # a key twice inside a chunk
    ([["A1", "A2"], ["A2", "A3"]], True),  # ... and across two chunks
    ([["A2", "A1", "A3", "A2"]], False),
])
def test_repeated_keys_are_held_back_whether_or_not_the_stage_is_in_order(water, chunks, in_order):
    hub, entry = water
    stage, result = _publish(hub, entry, _stage(hub.staging_dir / "dups", chunks), "dups")
    assert stage.sorted_by == (["facility_id"] if in_order else [])
    assert (result.rows_published, result.rows_quarantined, result.reasons) == (2, 2, {"duplicate_key": 2})
    assert [r[0] for r in _published(hub, "water.pumping_stations")] == ["A1", "A3"]


def test_a_key_with_nulls_takes_the_general_path(water):
    hub, entry = water
    stage = _stage(hub.staging_dir / "nulls", [["A1", None, "A3"]])
    stage, result = _publish(hub, entry, stage, "nulls")
    assert stage.sorted_by == []
    assert [r[0] for r in _published(hub, "water.pumping_stations")] == ["A1", "A3", None]


def test_stage_files_read_back_unchanged(tmp_path):
    frame = _rows([f"K{i}" for i in range(3000)])
    stage = _stage(tmp_path / "s", [])
    stage.write(frame, NO_QUARANTINE)
    table = pq.read_table(tmp_path / "s" / "rows-000000.parquet")
    assert table.to_pandas()["facility_id"].tolist() == frame["facility_id"].tolist()
    assert table.column("geometry").to_pylist() == list(frame["geometry"])
    assert table.to_pandas()["capacity"].tolist() == frame["capacity"].tolist()


def test_label_columns_agree_with_exact_counts_of_every_column():
    con = notes.duckdb.connect()
    # "late": one value in the first 1000 rows, 60 in all (not a label column); "few": 3 values;
    # "unique": a value per row; "pair": two values in two rows (labels only when rows <= 2)
    con.execute("""CREATE TABLE t AS SELECT CASE WHEN i < 1000 THEN 'x' ELSE 'v' || (i % 60) END AS late,
                   'c' || (i % 3) AS few, 'u' || i AS "unique", NULL::VARCHAR AS empty FROM range(3000) r(i)""")
    schema = con.execute("SELECT column_name, column_type FROM (DESCRIBE t)").fetchall()
    assert notes.label_columns(con, "t", schema) == ["few"]
    con.execute("CREATE TABLE small AS SELECT * FROM t WHERE late = 'v1' OR late = 'v2' LIMIT 2")
    assert notes.label_columns(con, "small", schema) == ["late", "few", "unique"]  # two rows: all count


def test_catalog_columns_carry_their_tiers_from_one_insert(water):
    hub, entry = water
    con = hub.lake.connect()
    try:
        schema = [["id", "VARCHAR"], ["phone", "VARCHAR"], ["geometry", "GEOMETRY"]]
        tiers = [ColumnTier("phone", "sensitive", "mask", ("phone",)), ColumnTier("id", "internal", "none"),
                 ColumnTier("gone", "public", "none")]
        notes.record_columns(con, "x.y", schema, ("id",), ["id"], "geometry", tiers=tiers)
        rows = con.execute("SELECT * FROM catalog.columns WHERE dataset = 'x.y' ORDER BY position").fetchall()
    finally:
        con.close()
    assert rows == [
        ("x.y", 0, "id", "VARCHAR", True, True, False, "internal", "none", None),
        ("x.y", 1, "phone", "VARCHAR", False, False, False, "sensitive", "mask", "phone"),
        ("x.y", 2, "geometry", "GEOMETRY", False, False, True, None, None, None),
    ]


def _png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("many", [False, True])
def test_points_drawn_from_coordinates_match_drawing_each_geometry(many, monkeypatch):
    points = [shapely.Point(121.3 + (i * 7919 % 1000) / 4000, 31.1 + (i * 104729 % 1000) / 5000) for i in range(3000)]
    others = [None, shapely.Point(), shapely.from_wkt("POINT Z (121.45 31.25 4)"),
              shapely.from_wkt("MULTIPOINT ((121.41 31.21), (121.42 31.22))"),
              shapely.from_wkt("POLYGON ((121.4 31.15, 121.5 31.15, 121.5 31.2, 121.4 31.15))"),
              shapely.from_wkt("LINESTRING (121.3 31.1, 121.6 31.3)")]
    geometries = (points if many else points[:100]) + others
    fast = _png(preview.draw(geometries, (121.3, 31.1, 121.6, 31.3), "x"))
    monkeypatch.setattr(preview.shapely, "get_type_id", lambda g: np.full(len(g), -1))  # no point fast path
    one_by_one = _png(preview.draw(geometries, (121.3, 31.1, 121.6, 31.3), "x"))
    assert fast == one_by_one


def test_the_preview_drawn_through_the_publishing_connection_is_the_versions(water, monkeypatch):
    hub, entry = water
    monkeypatch.setattr(preview, "MAX_FEATURES", 10)  # the sampled path
    ids = [f"K{i:05d}" for i in range(30)]
    _, result = _publish(hub, entry, _stage(hub.staging_dir / "p", [ids]), "p")
    path = preview.preview_path(hub.lake, entry.id, result.snapshot_id)
    drawn = path.read_bytes()
    path.unlink()
    _publish(hub, entry, _stage(hub.staging_dir / "p2", [ids[:5]]), "p2")  # a later version exists
    assert preview.render_preview(hub.lake, entry.id, result.snapshot_id) == path  # its own connection
    assert path.read_bytes() == drawn


def test_a_failing_write_of_a_stage_in_key_order_raises_its_own_error(water):
    hub, entry = water
    stage = Stage(hub.staging_dir / "broken")
    frame = _rows(["K1", "K2"])
    frame.loc[1, "geometry"] = b"\x01\x02not wkb"
    stage.write(frame, NO_QUARANTINE)
    stage.finalize(entry.key, info={})
    assert stage.sorted_by == ["facility_id"]
    run = RunInfo("broken", dt.datetime.now(dt.timezone.utc), "sha256:x", "EPSG:4490")
    with pytest.raises(Exception) as failed:
        publish(hub.lake, entry, Stage.open(stage.root), run)
    assert "aborted" not in str(failed.value) and "WKB" in str(failed.value).upper()
