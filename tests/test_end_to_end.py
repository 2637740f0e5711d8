"""The sample city through Dagster in-process: counts, accuracy, quarantine, cross-department SQL, refusals."""

from __future__ import annotations

from collections import defaultdict

import pytest
from pyproj import Geod

from twinhub.catalog.info import dataset_info, quarantine_rows
from twinhub.catalog.query import QueryRefused, run_query

GEOD = Geod(ellps="WGS84")
DATASETS = ["civil_affairs.elderly_care", "emergency.shelters", "health.health_centres", "water.pumping_stations"]


def _published(hub, dataset: str) -> dict[str, tuple[float, float]]:
    result = run_query(hub.lake, f"SELECT facility_id, ST_X(geometry) x, ST_Y(geometry) y FROM {dataset}")
    return {row[0]: (row[1], row[2]) for row in result.rows}


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_source_row_is_published_or_quarantined(demo_hub, truth, dataset):
    rows = [t for t in truth if t["dataset"] == dataset]
    latest = dataset_info(demo_hub.lake, dataset)["versions"][0]
    assert latest["status"] == "published"
    assert latest["rows_read"] == len(rows)
    assert latest["rows_published"] + latest["rows_quarantined"] == latest["rows_read"]
    assert latest["rows_published"] == sum(t["expected"] == "published" for t in rows)
    assert len(_published(demo_hub, dataset)) == latest["rows_published"]
    assert len(quarantine_rows(demo_hub.lake, dataset)) == latest["rows_quarantined"]


@pytest.mark.parametrize(
    "dataset, source_crs",
    [
        ("civil_affairs.elderly_care", "GCJ-02"),
        ("health.health_centres", "BD-09"),
        ("water.pumping_stations", "EPSG:4549"),
        ("emergency.shelters", "EPSG:4326"),
    ],
)
def test_published_positions_are_within_5_cm_of_the_truth(demo_hub, truth, dataset, source_crs):
    assert dataset_info(demo_hub.lake, dataset)["versions"][0]["source_crs"] == source_crs
    published = _published(demo_hub, dataset)
    expected = {t["id"]: (float(t["lon"]), float(t["lat"])) for t in truth
                if t["dataset"] == dataset and t["expected"] == "published"}
    assert set(published) == set(expected)
    errors = []
    for ident, (lon, lat) in expected.items():
        x, y = published[ident]
        errors.append(GEOD.inv(lon, lat, x, y)[2])
    assert max(errors) < 0.05, f"worst error {max(errors):.4f} m"


@pytest.mark.parametrize("dataset", DATASETS)
def test_each_planted_defect_is_quarantined_with_its_reason(demo_hub, truth, dataset):
    held = {r["source_row"]: r for r in quarantine_rows(demo_hub.lake, dataset)}
    planted = {int(t["source_row"]): t["expected"] for t in truth if t["dataset"] == dataset and t["expected"] != "published"}
    assert set(held) == set(planted)
    for source_row, check in planted.items():
        checks = [r["check"] for r in held[source_row]["reasons"]]
        assert check in checks, (source_row, checks)
        assert held[source_row]["record"], "the original values are kept with the reasons"


def test_reasons_name_the_column_and_value(demo_hub):
    rows = {r["source_row"]: r for r in quarantine_rows(demo_hub.lake, "civil_affairs.elderly_care")}
    label = rows[5]["reasons"][0]
    assert (label["column"], label["source_column"], label["value"]) == ("category", "机构类型", "老年活动室")
    typed = next(r for r in rows[21]["reasons"] if r["check"] == "type")
    assert (typed["column"], typed["source_column"], typed["value"]) == ("capacity", "床位数", "约50")
    assert rows[21]["record"]["床位数"] == "约50"


def test_labels_are_mapped_to_vocabulary_codes(demo_hub):
    result = run_query(demo_hub.lake, "SELECT DISTINCT category FROM emergency.shelters ORDER BY 1")
    # "Emergency Shelter", "shelter", "Evacuation shelter", "EVACUATION POINT" -> two codes
    assert [r[0] for r in result.rows] == ["emergency_shelter", "evacuation_point"]
    result = run_query(demo_hub.lake, "SELECT DISTINCT category FROM civil_affairs.elderly_care ORDER BY 1")
    assert [r[0] for r in result.rows] == ["day_care_centre", "elderly_care_home"]  # 敬老院 and "养老院 " included


def _pairs_within(truth, a: str, b: str, metres: float) -> set[tuple[str, str]]:
    def points(ds):
        return {t["id"]: (float(t["lon"]), float(t["lat"])) for t in truth if t["dataset"] == ds and t["expected"] == "published"}

    pa, pb = points(a), points(b)
    return {(i, j) for i, p in pa.items() for j, q in pb.items() if GEOD.inv(*p, *q)[2] <= metres}


def test_postgres_dialect_spatial_join_across_departments(demo_hub, truth):
    sql = """
        SELECT s.facility_id AS shelter, e.facility_id AS care_home
        FROM emergency.shelters AS s
        JOIN civil_affairs.elderly_care AS e
          ON ST_DWithin(s.geometry::geography, e.geometry::geography, 400)
        ORDER BY 1, 2"""
    result = run_query(demo_hub.lake, sql, dialect="postgres")
    expected = _pairs_within(truth, "emergency.shelters", "civil_affairs.elderly_care", 400)
    assert len(expected) >= 5, "the sample city places shelters near care homes"
    assert set(result.rows) == expected


def test_postgres_dialect_st_intersects_with_a_buffer(demo_hub, truth):
    sql = """
        SELECT h.facility_id, count(*) AS pumping_stations
        FROM health.health_centres h
        JOIN water.pumping_stations w ON ST_Intersects(w.geometry, ST_Buffer(h.geometry, 0.02))
        GROUP BY h.facility_id ORDER BY 1"""
    result = run_query(demo_hub.lake, sql, dialect="postgres")
    import shapely

    def points(ds):
        return {t["id"]: shapely.Point(float(t["lon"]), float(t["lat"])) for t in truth
                if t["dataset"] == ds and t["expected"] == "published"}

    centres, stations = points("health.health_centres"), points("water.pumping_stations")
    expected = defaultdict(int)
    for h, hp in centres.items():
        for sp in stations.values():
            if sp.intersects(hp.buffer(0.02)):
                expected[h] += 1
    assert dict(result.rows) == dict(expected)


def _fingerprint(hub) -> tuple:
    con = hub.lake.connect(read_only=True)
    try:
        snapshots = con.execute("SELECT count(*), max(snapshot_id) FROM lake.snapshots()").fetchone()
        counts = tuple(con.execute(f"SELECT count(*) FROM {d}").fetchone()[0] for d in DATASETS)
        return snapshots, counts
    finally:
        con.close()


@pytest.mark.parametrize(
    "sql, dialect, says",
    [
        ("DROP TABLE civil_affairs.elderly_care", "postgres", "DROP"),
        ("SELECT 1; DROP TABLE civil_affairs.elderly_care", "duckdb", "one statement"),
        ("SELECT * FROM read_csv('/etc/passwd')", "duckdb", "file"),
        ("DELETE FROM water.pumping_stations", "mysql", "DELETE"),
        ("SELECT * FROM catalog_secrets", "duckdb", "catalog"),
    ],
)
def test_refused_statements_leave_the_catalog_untouched(demo_hub, sql, dialect, says):
    before = _fingerprint(demo_hub)
    with pytest.raises(QueryRefused) as refused:
        run_query(demo_hub.lake, sql, dialect=dialect)
    assert says.lower() in str(refused.value).lower()
    assert _fingerprint(demo_hub) == before


def test_catalog_metadata_is_queryable(demo_hub):
    result = run_query(demo_hub.lake, "SELECT dataset, standard, classification FROM catalog.datasets ORDER BY 1")
    assert [r[0] for r in result.rows] == DATASETS
    assert {r[1] for r in result.rows} == {"facility"}


def test_quarantine_is_stored_in_the_catalog(demo_hub):
    result = run_query(
        demo_hub.lake, "SELECT dataset, count(*) FROM catalog.quarantine GROUP BY 1 ORDER BY 1", dialect="postgres"
    )
    counts = dict(result.rows)
    for dataset in DATASETS:
        assert counts[dataset] == dataset_info(demo_hub.lake, dataset)["versions"][0]["rows_quarantined"]
    rows = {r["source_row"]: r["record"] for r in quarantine_rows(demo_hub.lake, "civil_affairs.elderly_care")}
    assert {"机构编号", "机构名称", "机构类型", "经度", "纬度"} <= set(rows[5])  # as the department wrote it
    assert rows[3]["facility_id"] == "MZ-0003"  # key duplicates keep their conformed values
