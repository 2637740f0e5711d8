"""Transit standards in the sample pack (issue 16, item 7): transit_stop, transit_route and transit_mode.

A synthetic bus route (GeoJSON, LineString Z, both directions) and a CSV of its stops go through the
hub (register + ingest) with the shipped pack; every row is published or quarantined for its reason.
"""

from __future__ import annotations

import json
import pathlib

import pytest
import shapely
import yaml
from click.testing import CliRunner

from twinhub.catalog.query import run_query
from twinhub.cli.main import main
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup
from twinhub.standards.labels import lookup_table, normalize
from twinhub.standards.pack import load_pack

# Route 71's two directions along Yan'an Road (WGS 84 lon, lat, height in metres): the known truth.
ROUTE = {
    "71-E": [(121.400, 31.2130, 4.0), (121.440, 31.2180, 5.5), (121.475, 31.2290, 6.0), (121.4905, 31.2355, 4.5)],
    "71-W": [(121.4905, 31.2355, 4.5), (121.475, 31.2290, 6.0), (121.440, 31.2180, 5.5), (121.400, 31.2130, 4.0)],
}
# stop id, name, routes, mode as written, district as written, lon, lat, expected
STOPS = [
    ("S01", "延安西路虹许路", "71-E;71-W", "公交", "长宁区", 121.400, 31.2130, "published"),
    ("S02", "延安中路华山路", "71-E;71-W", "公交车", "静安区", 121.440, 31.2180, "published"),
    ("S03", "延安东路西藏中路", "71-E;71-W;927", "bus", "黄浦区", 121.475, 31.2290, "published"),
    ("S04", "延安东路外滩", "71-E;71-W", "Bus", "黄浦区", 121.4905, 31.2355, "published"),
    ("S05", "延安东路浙江中路", "71-E", "巴士", "黄浦区", 31.2300, 121.4800, "outside_city"),  # lat/lon swapped
    ("S06", "延安中路陕西北路", "71-E;;71-W", "公交", "静安区", 121.455, 31.2230, "pattern"),  # an empty route id
]


def test_the_pack_ships_the_transit_standards_and_modes():
    pack = load_pack()
    stop, route = pack.standard("transit_stop"), pack.standard("transit_route")
    assert stop.primary_key == ["stop_id"] and route.primary_key == ["route_id"]
    assert stop.geometry_field.custom["geometryType"] == "Point"
    assert route.geometry_field.custom["geometryType"] == "LineString"
    assert {f.name for f in stop.fields} == {"stop_id", "name", "route_ids", "mode", "district", "geometry"}
    assert {f.name for f in route.fields} == {"route_id", "name", "mode", "operator", "geometry"}
    table = lookup_table(pack.vocabularies["transit_mode"])
    chinese = {"公交": "bus", "地铁": "metro", "有轨电车": "tram", "轮渡": "ferry", "铁路": "rail",
               "公交车": "bus", "轨道交通": "metro", "渡轮": "ferry", "Subway": "metro", "Streetcar": "tram"}
    assert {label: table.get(normalize(label)) for label in chinese} == chinese


def test_standards_list_shows_them(tmp_path):
    Hub.open(tmp_path / "home")  # a hub (reading commands do not create one)
    result = CliRunner().invoke(main, ["--home", str(tmp_path / "home"), "standards", "list"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for name in ("transit_stop", "transit_route", "transit_mode"):
        assert name in result.output


def _hub(tmp_path: pathlib.Path) -> Hub:
    """A hub whose transport department lands its files in tmp_path/landing (twinhub.yaml landing:)."""
    landing = tmp_path / "landing"
    landing.mkdir()
    hub = Hub.open(tmp_path / "home")
    (hub.home / "twinhub.yaml").write_text(yaml.safe_dump({"landing": {"transport": [str(landing)]}}),
                                           encoding="utf-8")
    return Hub.open(hub.home)


def _write_sources(landing: pathlib.Path) -> None:
    features = [{"type": "Feature", "properties": {"line_id": rid, "line_name": "71路", "type": "公交",
                                                   "company": "上海巴士第一公交有限公司"},
                 "geometry": {"type": "LineString", "coordinates": [list(c) for c in coords]}}
                for rid, coords in ROUTE.items()]
    (landing / "route_71.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features},
                                                         ensure_ascii=False), encoding="utf-8")
    lines = ["站点编号,站点名称,线路,方式,所属区,经度,纬度"]
    lines += [",".join(map(str, stop[:7])) for stop in STOPS]
    (landing / "route_71_stops.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _manifest(tmp_path: pathlib.Path, name: str, data: dict) -> pathlib.Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.slow
def test_a_bus_route_with_heights_and_its_stops_publish_through_the_hub(tmp_path):
    hub = _hub(tmp_path)
    landing = tmp_path / "landing"
    _write_sources(landing)
    register(hub, _manifest(tmp_path, "routes", {
        "department": "transport", "dataset": "bus_routes", "title": "Bus routes", "standard": "transit_route",
        "source": {"format": "geojson", "path": str(landing / "route_71.geojson"), "crs": "EPSG:4326"},
        "fields": {"route_id": "line_id", "name": "line_name", "mode": "type", "operator": "company"}}))
    register(hub, _manifest(tmp_path, "stops", {
        "department": "transport", "dataset": "bus_stops", "title": "Bus stops", "standard": "transit_stop",
        "source": {"format": "csv", "path": str(landing / "route_71_stops.csv"), "x": "经度", "y": "纬度",
                   "crs": "EPSG:4326"},
        "fields": {"stop_id": "站点编号", "name": "站点名称", "route_ids": "线路", "mode": "方式", "district": "所属区"}}))

    routes = ingest(hub, lookup(hub, "transport.bus_routes"), run_id="r1")
    assert (routes.rows_read, routes.rows_published, routes.rows_quarantined) == (2, 2, 0)
    published = run_query(hub.lake, "SELECT route_id, mode, operator, ST_AsText(geometry) FROM transport.bus_routes "
                                     "ORDER BY route_id").rows
    assert [(r[0], r[1], r[2]) for r in published] == [("71-E", "bus", "上海巴士第一公交有限公司"),
                                                       ("71-W", "bus", "上海巴士第一公交有限公司")]
    for (route_id, *_, wkt) in published:  # the path and its heights, WGS 84 -> CGCS2000 is sub-metre
        line = shapely.from_wkt(wkt)
        assert shapely.has_z(line), wkt
        assert [tuple(round(v, 5) for v in c) for c in line.coords] == [tuple(round(v, 5) for v in c)
                                                                        for c in ROUTE[route_id]]

    stops = ingest(hub, lookup(hub, "transport.bus_stops"), run_id="r1")
    expected = {s[0]: s[7] for s in STOPS}
    assert stops.rows_read == len(STOPS)
    assert stops.rows_published + stops.rows_quarantined == stops.rows_read
    assert stops.rows_published == sum(v == "published" for v in expected.values())
    assert set(stops.reasons) == {v for v in expected.values() if v != "published"}
    rows = run_query(hub.lake, "SELECT stop_id, mode, district, route_ids FROM transport.bus_stops ORDER BY 1").rows
    assert [r[0] for r in rows] == [k for k, v in expected.items() if v == "published"]
    assert {r[1] for r in rows} == {"bus"}  # 公交, 公交车, bus, Bus map to one code
    assert [r[2] for r in rows] == ["310105", "310106", "310101", "310101"]
    assert rows[2][3].split(";") == ["71-E", "71-W", "927"]
