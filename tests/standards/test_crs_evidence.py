"""CRS with evidence (twinhub/hub/crs_evidence.py, `twinhub crs evidence`): a POI file that declares no CRS is
ranked WGS 84 / GCJ-02 / BD-09 by what the hub already publishes (same-named bus stops, district polygons,
city.yaml landmarks), and a dataset one GCJ-02 offset away from its standard's published features is flagged.

The truth is built here: bus stops and district polygons published in WGS 84 from known positions, and a POI
file whose rows stand at known positions (a bus stop's, a landmark's, or random) with the district that
position falls in, written in WGS 84, GCJ-02 or BD-09."""

from __future__ import annotations

import csv
import dataclasses
import json
import pathlib

import numpy as np
import pytest
import shapely
import yaml
from click.testing import CliRunner

from twinhub.catalog.query import locked_connection
from twinhub.cli.main import main
from twinhub.connectors import SourceError, open_source
from twinhub.hub.crs_evidence import evidence_hint, offset_findings, rank_with_evidence
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest, stage_dataset
from twinhub.hub.manifest import ManifestError
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup
from twinhub.standards.chinese_crs import wgs84_to_bd09, wgs84_to_gcj02
from twinhub.standards.crs_detect import load_landmarks

BOX = (121.35, 31.12, 121.60, 31.32)  # central Shanghai (the sample city's)
DISTRICTS = [("310101", "黄浦区"), ("310104", "徐汇区"), ("310105", "长宁区"), ("310106", "静安区"),
             ("310107", "普陀区"), ("310109", "虹口区"), ("310110", "杨浦区"), ("310115", "浦东新区")]
SHIFT = {"EPSG:4326": lambda lon, lat: (lon, lat), "GCJ-02": wgs84_to_gcj02, "BD-09": wgs84_to_bd09}


def _rectangles() -> list[shapely.Polygon]:
    """Eight districts: the box cut into 4 columns x 2 rows (~6 x 11 km each)."""
    minx, miny, maxx, maxy = BOX
    w, h = (maxx - minx) / 4, (maxy - miny) / 2
    return [shapely.box(minx + c * w, miny + r * h, minx + (c + 1) * w, miny + (r + 1) * h)
            for r in range(2) for c in range(4)]


def _district_of(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    names = np.full(lon.size, "", dtype=object)
    for (_, name), polygon in zip(DISTRICTS, _rectangles()):
        names[shapely.contains_xy(polygon, lon, lat)] = name
    return names


def _geojson(path: pathlib.Path, features: list[tuple[dict, dict]]) -> None:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": p, "geometry": g} for p, g in features]}, ensure_ascii=False), "utf-8")


def _manifest(folder: pathlib.Path, department: str, dataset: str, standard: str, source: dict, fields: dict,
              **extra) -> pathlib.Path:
    path = folder / f"{dataset}.yaml"
    path.write_text(yaml.safe_dump({"department": department, "dataset": dataset, "title": dataset, "standard": standard,
                                    "source": source, "fields": fields, "classification": "public", **extra},
                                   allow_unicode=True), "utf-8")
    return path


def _publish(hub: Hub, manifest: pathlib.Path, rows: int) -> None:
    entry, _ = register(hub, manifest)
    result = ingest(hub, lookup(hub, entry.id), run_id=f"first-{entry.id}")
    assert (result.rows_published, result.rows_quarantined) == (rows, 0), result.reasons


@dataclasses.dataclass
class City:
    hub: Hub
    folder: pathlib.Path
    stops: tuple[np.ndarray, np.ndarray, np.ndarray]  # lon, lat, name of the published bus stops (WGS 84)
    poi: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # true lon, lat, name, district of the POI rows

    def poi_csv(self, crs: str, name: str | None = None) -> pathlib.Path:
        """The POI file with its coordinates written in ``crs`` (and no CRS declared anywhere)."""
        lon, lat, names, districts = self.poi
        x, y = SHIFT[crs](lon, lat)
        path = self.folder / (name or f"poi_{crs.replace(':', '')}.csv")
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["编号", "名称", "区", "经度", "纬度"])
            for i in range(lon.size):
                writer.writerow([f"P{i:04d}", names[i], districts[i], f"{x[i]:.7f}", f"{y[i]:.7f}"])
        return path


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    """Districts and 200 bus stops published (WGS 84); a POI list of 320 rows: 150 at a bus stop (same name),
    every landmark of city.yaml inside the box, and the rest at random places with names of their own."""
    folder = tmp_path_factory.mktemp("crs_evidence")
    hub = Hub.open(folder / "home")
    rng = np.random.default_rng(16)
    _geojson(folder / "districts.geojson", [
        ({"code": code, "name": name, "level": "county"}, shapely.geometry.mapping(polygon))
        for (code, name), polygon in zip(DISTRICTS, _rectangles())])
    _publish(hub, _manifest(folder, "planning", "districts", "admin_area",
                            {"format": "geojson", "path": "districts.geojson"},
                            {"area_code": "code", "name": "name", "level": "level"}), 8)
    minx, miny, maxx, maxy = BOX
    lon, lat = rng.uniform(minx + 0.005, maxx - 0.005, 200), rng.uniform(miny + 0.005, maxy - 0.005, 200)
    names = np.array([f"公交站{i:03d}" for i in range(200)], dtype=object)
    _geojson(folder / "bus_stops.geojson", [
        ({"id": f"S{i:03d}", "name": names[i], "mode": "bus"}, {"type": "Point", "coordinates": [lon[i], lat[i]]})
        for i in range(200)])
    _publish(hub, _manifest(folder, "transport", "bus_stops", "transit_stop",
                            {"format": "geojson", "path": "bus_stops.geojson"},
                            {"stop_id": "id", "name": "name", "mode": "mode"}), 200)
    inside = [m for m in load_landmarks(hub.pack.root / "city.yaml")
              if minx < m.lon < maxx and miny < m.lat < maxy]
    assert len(inside) >= 5  # the pack's landmarks are Shanghai's
    at_stop = rng.choice(200, 150, replace=False)
    n_random = 320 - 150 - len(inside)
    rand_lon, rand_lat = rng.uniform(minx, maxx, n_random), rng.uniform(miny, maxy, n_random)
    noise = rng.normal(0, 3e-5, (2, 320))  # a few metres: two departments never place a stop identically
    poi_lon = np.concatenate([lon[at_stop], [m.lon for m in inside], rand_lon]) + noise[0]
    poi_lat = np.concatenate([lat[at_stop], [m.lat for m in inside], rand_lat]) + noise[1]
    poi_names = np.concatenate([names[at_stop], [m.name for m in inside],
                                [f"小店{i:03d}" for i in range(n_random)]]).astype(object)
    return City(hub, folder, (lon, lat, names), (poi_lon, poi_lat, poi_names, _district_of(poi_lon, poi_lat)))


def _as_written(city: City, crs: str):
    lon, lat, names, districts = city.poi
    x, y = SHIFT[crs](lon, lat)
    return x, y, names, districts


@pytest.mark.parametrize("crs", ["EPSG:4326", "GCJ-02", "BD-09"])
def test_the_true_crs_ranks_first_with_every_kind_of_evidence(city, crs):
    x, y, names, districts = _as_written(city, crs)
    found = rank_with_evidence(city.hub, x, y, names, districts)
    assert found.ranked[0].crs == crs and found.decided == crs
    assert {c.crs for c in found.ranked} >= {"EPSG:4326", "GCJ-02", "BD-09"}  # the range alone ties them
    kinds = {e.kind: e for e in found.evidence}
    assert set(kinds) == {"landmarks", "names", "districts"} and all(e.decisive for e in kinds.values())
    assert found.decided_by == ["landmarks", "names", "districts"] and not found.conflicts
    names_m = kinds["names"].values
    assert kinds["names"].pairs == 150 and names_m[crs] < 10  # the same bus stops, metres apart
    assert all(v > 300 for c, v in names_m.items() if c != crs)  # one offset (or more) away
    shares = kinds["districts"].values
    assert shares[crs] == 1.0 and all(v < 0.98 for c, v in shares.items() if c != crs)
    assert kinds["landmarks"].values[crs] < 10
    message = found.message()
    assert f"decides for {crs}" in message and f"set source.crs: {crs}" in message
    assert "median distance" in message and "inside their own district" in message


def test_the_district_evidence_alone_decides_and_says_so(city):
    """No names to match: the district column still tells WGS 84 from GCJ-02 (e.g. 100 % vs ~93 %)."""
    x, y, _, districts = _as_written(city, "GCJ-02")
    found = rank_with_evidence(city.hub, x, y, None, districts)
    assert [e.kind for e in found.evidence] == ["districts"] and found.decided == "GCJ-02"
    share = found.evidence[0].values
    assert share["GCJ-02"] == 1.0 and 0.85 < share["EPSG:4326"] < 0.99


def test_evidence_that_disagrees_is_outvoted_and_shown(city):
    """The landmark rows written in WGS 84, the rest in GCJ-02 (two exports merged): names and districts
    outvote the landmarks, and the message says the landmarks point elsewhere."""
    lon, lat, names, districts = city.poi
    x, y = wgs84_to_gcj02(lon, lat)
    landmark = np.isin(names, [m.name for m in load_landmarks(city.hub.pack.root / "city.yaml")])
    x, y = np.where(landmark, lon, x), np.where(landmark, lat, y)
    found = rank_with_evidence(city.hub, x, y, names, districts)
    assert found.decided == "GCJ-02" and found.decided_by == ["names", "districts"]
    assert found.conflicts == ["landmarks (EPSG:4326)"] and found.ranked[0].crs == "GCJ-02"
    assert "but landmarks (EPSG:4326) point elsewhere" in found.message()


def test_a_district_column_of_division_codes_matches_the_published_area_codes(city):
    x, y, _, districts = _as_written(city, "BD-09")
    codes = np.array([dict((n, c) for c, n in DISTRICTS).get(d, "") for d in districts], dtype=object)
    found = rank_with_evidence(city.hub, x, y, None, codes)
    assert found.decided == "BD-09" and found.evidence[0].values["BD-09"] == 1.0


def test_names_that_look_like_sql_are_only_values(city):
    """The file's names reach DuckDB as one bound list: quotes and statements in them match nothing and
    change nothing."""
    x, y, names, districts = _as_written(city, "EPSG:4326")
    hostile = names.copy()
    hostile[:5] = ["'); DROP TABLE transport.bus_stops; --", '" OR 1=1 --', "公交站000' OR '1'='1",
                   "name", "%"]
    found = rank_with_evidence(city.hub, x, y, hostile, districts)
    assert found.decided == "EPSG:4326"
    con = locked_connection(city.hub.lake)
    try:
        assert con.execute("SELECT count(*) FROM transport.bus_stops").fetchone() == (200,)
    finally:
        con.close()


def test_without_evidence_the_tie_stands(city):
    x, y, _, _ = _as_written(city, "GCJ-02")
    found = rank_with_evidence(city.hub, x, y, np.array(["无名"] * x.size, dtype=object))
    assert found.decided is None and found.evidence == []
    assert "no evidence decides between" in found.message() and "Amap/Tencent: GCJ-02" in found.message()


def test_the_runs_hint_for_an_undeclared_source_shows_the_evidence(city):
    """The run of a source that declares no CRS fails with the ranking and the evidence that decided it."""
    csv_path = city.poi_csv("GCJ-02")
    manifest = _manifest(city.folder, "commerce", "poi", "transit_stop",
                         {"format": "csv", "path": csv_path.name, "x": "经度", "y": "纬度", "crs": "EPSG:4326"},
                         {"stop_id": "编号", "name": "名称", "mode": {"constant": "bus"}})
    entry, _ = register(city.hub, manifest)
    registered = lookup(city.hub, entry.id)
    source = {k: v for k, v in registered.manifest.source.items() if k != "crs"}
    undeclared = dataclasses.replace(registered, manifest=registered.manifest.model_copy(update={"source": source}))
    with pytest.raises(SourceError) as raised:
        stage_dataset(city.hub, undeclared, "run-undeclared")
    text = str(raised.value)
    assert "no CRS declared" in text and "evidence from the hub" in text
    assert "names (same names in transport.bus_stops; 150 rows)" in text and "decides for GCJ-02" in text
    assert "set source.crs: GCJ-02" in text

    chunks = open_source({**source, "path": str(csv_path)}).chunks(2_000)
    hint = evidence_hint(city.hub, chunks, "名称", "区")
    assert "districts (polygons of planning.districts; " in hint and "decided by landmarks, names, districts" in hint


def test_registering_an_undeclared_source_refuses_it_with_the_evidence(city):
    csv_path = city.poi_csv("BD-09", "poi_undeclared.csv")
    manifest = _manifest(city.folder, "commerce", "poi_undeclared", "facility",
                         {"format": "csv", "path": csv_path.name, "x": "经度", "y": "纬度"},
                         {"facility_id": "编号", "name": "名称", "district": "区", "category": {"constant": "shelter"}})
    with pytest.raises(ManifestError) as raised:
        register(city.hub, manifest)
    text = str(raised.value)
    assert "the source does not declare its CRS" in text and "evidence from the hub" in text
    assert "decided by landmarks, names, districts" in text and "set source.crs: BD-09" in text


def test_offset_warning_for_a_gcj02_copy_declared_as_wgs84_and_not_for_a_correct_one(city):
    lon, lat, names = city.stops
    glon, glat = wgs84_to_gcj02(lon, lat)
    findings, message = offset_findings(city.hub, "transport.bus_stops_copy", glon, glat, names,
                                        standard="transit_stop")
    assert len(findings) == 1 and findings[0]["likely"] == "GCJ-02 declared as WGS 84"
    assert findings[0]["paired_by"] == "name" and findings[0]["pairs"] == 200
    assert 300 < findings[0]["median_m_as_declared"] < 700 and findings[0]["median_m_if"]["GCJ-02 declared as WGS 84"] < 1
    assert "check source.crs" in message and "GCJ-02" in message

    by_position, _ = offset_findings(city.hub, "transport.bus_stops_copy", glon, glat, standard="transit_stop")
    assert by_position and by_position[0]["paired_by"] == "position"
    assert by_position[0]["likely"] == "GCJ-02 declared as WGS 84"

    # its standard from the registry; the catalog connection of the caller reused (and left open)
    con = locked_connection(city.hub.lake)
    try:
        again, _ = offset_findings(city.hub, "transport.bus_stops", glon, glat, names, con=con)
        assert again and again[0]["standard"] == "transit_stop" and again[0]["likely"] == "GCJ-02 declared as WGS 84"
        assert con.execute("SELECT 1").fetchone() == (1,)
    finally:
        con.close()

    assert offset_findings(city.hub, "transport.bus_stops_copy", lon, lat, names, standard="transit_stop") == ([], "")
    assert offset_findings(city.hub, "transport.bus_stops_copy", lon + 1e-5, lat, standard="transit_stop") == ([], "")


def test_offset_warning_when_the_published_features_are_the_shifted_ones(city):
    """Correct WGS 84 points against a standard published from GCJ-02 declared as WGS 84: the warning says the
    published features may be the wrong ones."""
    lon, lat, names = city.stops
    blon, blat = wgs84_to_bd09(lon, lat)
    findings, _ = offset_findings(city.hub, "transport.bus_stops_copy", blon, blat, names, standard="transit_stop")
    assert findings and findings[0]["likely"] == "BD-09 declared as WGS 84"
    glon, glat = wgs84_to_gcj02(lon, lat)
    shifted_back = (2 * lon - glon, 2 * lat - glat)  # the stops as if the *published* ones were GCJ-02
    findings, message = offset_findings(city.hub, "transport.x", *shifted_back, names, standard="transit_stop")
    assert findings and findings[0]["likely"] == "published features in GCJ-02"
    assert "published features of this standard may be the shifted ones" in message


def _cli(city: City, *args: str):
    return CliRunner().invoke(main, [*args, "--home", str(city.hub.home)])


def test_cli_crs_evidence_on_a_file(city):
    path = city.poi_csv("GCJ-02")
    result = _cli(city, "crs", "evidence", str(path), "--name-column", "名称", "--district-column", "区")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[3].startswith("GCJ-02 ")  # the first candidate of the table
    assert "decides for GCJ-02" in result.output and "set source.crs: GCJ-02" in result.output
    as_json = _cli(city, "crs", "evidence", str(path), "--name-column", "名称", "--district-column", "区",
                   "--format", "json")
    data = json.loads(as_json.output)
    assert data["decided"] == "GCJ-02" and data["ranked"][0]["crs"] == "GCJ-02"
    names = next(e for e in data["evidence"] if e["kind"] == "names")
    assert names["values"]["GCJ-02"] < 10 and names["values"]["EPSG:4326"] > 300


def test_cli_crs_evidence_on_a_manifest_takes_its_name_and_district_columns(city):
    path = city.poi_csv("EPSG:4326", "poi_checked.csv")
    manifest = _manifest(city.folder, "commerce", "poi_checked", "facility",
                         {"format": "csv", "path": path.name, "x": "经度", "y": "纬度", "crs": "GCJ-02"},
                         {"facility_id": "编号", "name": "名称", "district": "区"})
    result = _cli(city, "crs", "evidence", str(manifest))
    assert result.exit_code == 0, result.output
    assert "the manifest says GCJ-02; the evidence points to EPSG:4326" in result.output


def test_cli_crs_evidence_names_a_missing_column(city):
    result = _cli(city, "crs", "evidence", str(city.poi_csv("EPSG:4326")), "--name-column", "name")
    assert result.exit_code == 2 and "--name-column: no column 'name'" in result.output and "名称" in result.output
