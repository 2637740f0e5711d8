"""Polygons partly outside the city's extent (issue 16, item 8): kept whole and reported with their outside
part; wholly outside ones quarantined.

Real boundaries: NYC's five boroughs (DCP Borough Boundaries 16a, in realworld/us_nyc_borough_boundaries,
a zipped Shapefile in US feet). The city is the Bronx; its "old" extent is the bounding box of the Bronx's
largest land mass, so its islets (City Island, Hart Island, Rikers) lie past it, as Shanghai's Sheshan islet
lay past the old Shanghai extent. The oracle is shapely over the same boundaries, read and reprojected by geopandas.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import zipfile

import numpy as np
import pytest
import shapely
import yaml

from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup
from twinhub.standards.checks.outside_city import OUTSIDE_CITY
from twinhub.standards.pack import DEFAULT_PACK, load_pack

pytestmark = pytest.mark.slow

BOROUGHS = pathlib.Path("/work/shared/data/realworld/us_nyc_borough_boundaries/nybb_16a.zip")
BUFFER_M = 500
SCHEMA = {
    "name": "borough", "title": "Borough", "version": "1.0.0", "primaryKey": ["boro_code"],
    "fields": [
        {"name": "boro_code", "type": "string", "constraints": {"required": True, "unique": True}},
        {"name": "name", "type": "string", "constraints": {"required": True}},
        {"name": "geometry", "type": "geojson", "geometryType": "Polygon", "constraints": {"required": True}},
    ],
}


def _boroughs() -> dict[str, shapely.Geometry]:
    """BoroName -> MultiPolygon in NAD83 lon/lat (the city's CRS), read with GDAL (the oracle's copy, not the hub's)."""
    import geopandas as gpd

    frame = gpd.read_file(f"zip://{BOROUGHS}").set_crs("EPSG:2263", allow_override=True)
    return dict(zip(frame["BoroName"], frame.to_crs("EPSG:4269").geometry))


def _mainland(geom: shapely.Geometry) -> tuple[float, ...]:
    return max(shapely.get_parts(geom), key=lambda p: p.area).bounds


def _pack(root: pathlib.Path, extent: tuple[float, ...]) -> pathlib.Path:
    """The shipped pack with the Bronx as its city (NAD83 lon/lat: no datum shift from the source) and a borough standard."""
    shutil.copytree(DEFAULT_PACK, root, ignore=shutil.ignore_patterns("*.py", "__pycache__", "checks"))
    city = yaml.safe_load((root / "city.yaml").read_text(encoding="utf-8"))
    city.update(name="The Bronx", target_crs="EPSG:4269", timezone="America/New_York", extent=list(extent),
                buffer_m=BUFFER_M, crs_candidates=["EPSG:2263"])
    (root / "city.yaml").write_text(yaml.safe_dump(city), encoding="utf-8")
    (root / "schemas" / "borough.schema.yaml").write_text(yaml.safe_dump(SCHEMA), encoding="utf-8")
    return root


def _run(tmp_path: pathlib.Path, extent: tuple[float, ...], **extra):
    landing = tmp_path / "landing"
    landing.mkdir(parents=True)
    with zipfile.ZipFile(BOROUGHS) as z:  # the Shapefile as published; its .prj is ESRI WKT (feet)
        z.extractall(landing)
    pack = _pack(tmp_path / "pack", extent)
    hub = Hub.open(tmp_path / "home")
    (hub.home / "twinhub.yaml").write_text(yaml.safe_dump({"standards": str(pack), "landing": {"planning": [str(landing)]}}),
                                           encoding="utf-8")
    hub = Hub.open(hub.home)
    manifest = tmp_path / "boroughs.yaml"
    manifest.write_text(yaml.safe_dump({
        "department": "planning", "dataset": "boroughs", "title": "Borough boundaries", "standard": "borough",
        "source": {"format": "shapefile", "path": str(landing / "nybb.shp"), "crs": "EPSG:2263"},
        "fields": {"boro_code": "BoroCode", "name": "BoroName"}, **extra}), encoding="utf-8")
    register(hub, manifest)
    result = ingest(hub, lookup(hub, "planning.boroughs"), run_id="r1")
    con = hub.lake.connect(read_only=True)
    try:
        details = json.loads(con.execute("SELECT details FROM catalog.runs WHERE run_id = 'r1'").fetchone()[0])
        published = dict(con.execute("SELECT name, ST_AsWKB(geometry) FROM planning.boroughs").fetchall())
        quarantined = {json.loads(r)["BoroName"]: c for c, r in con.execute(
            "SELECT checks, record FROM catalog.quarantine WHERE dataset = 'planning.boroughs'").fetchall()}
    finally:
        con.close()
    return hub, result, details, {k: shapely.from_wkb(bytes(v)) for k, v in published.items()}, quarantined


def test_the_bronx_islets_past_the_old_extent_are_kept_and_reported_with_their_outside_part(tmp_path):
    truth = _boroughs()
    old = _mainland(truth["Bronx"])
    assert truth["Bronx"].bounds[2] > old[2] + 0.01 and truth["Bronx"].bounds[1] < old[1] - 0.005  # the islets
    hub, result, details, published, quarantined = _run(tmp_path, old)
    gate = shapely.box(*hub.pack.city.gate(hub.target_crs))

    # partly inside: kept whole (every islet of the Bronx is published); wholly outside: quarantined
    assert set(published) == {"Bronx", "Manhattan", "Queens"}
    assert quarantined == {"Staten Island": "outside_city", "Brooklyn": "outside_city"}
    assert shapely.equals_exact(published["Bronx"], truth["Bronx"], tolerance=1e-6)
    assert len(shapely.get_parts(published["Bronx"])) == len(shapely.get_parts(truth["Bronx"]))

    report = details["partly_outside"]
    assert report["policy"] == "keep" and report["rows"] == 3
    by_row = {g["source_row"]: g for g in report["geometries"]}
    names = ["Staten Island", "Queens", "Brooklyn", "Manhattan", "Bronx"]  # the Shapefile's order
    for name in ("Bronx", "Manhattan", "Queens"):
        outside = shapely.difference(truth[name], gate)
        reported = by_row[names.index(name) + 1]
        assert reported["share_outside"] == pytest.approx(outside.area / truth[name].area, abs=1e-3), name
        assert np.allclose(reported["outside_bbox"], outside.bounds, atol=1e-5), name
    bronx = by_row[names.index("Bronx") + 1]
    assert bronx["outside_bbox"][2] == pytest.approx(truth["Bronx"].bounds[2], abs=1e-5)  # the easternmost islet
    assert "partly outside the city's extent and are kept whole" in report["message"]
    # the gate's diagnosis speaks of the wholly outside boroughs only: no "0 km from the city" for the Bronx
    assert details["plausibility"]["outside_city"] == 2


def test_with_the_extent_widened_to_the_real_boundary_nothing_is_outside(tmp_path):
    truth = _boroughs()
    _, result, details, published, quarantined = _run(tmp_path, truth["Bronx"].bounds)
    assert "Bronx" in published and "Bronx" not in quarantined
    assert all(g["source_row"] != 5 for g in details["partly_outside"]["geometries"])  # the Bronx: wholly inside


def test_outside_quarantine_holds_back_every_shape_not_wholly_inside(tmp_path):
    truth = _boroughs()
    _, result, details, published, quarantined = _run(tmp_path, _mainland(truth["Bronx"]), outside="quarantine")
    assert published == {} and set(quarantined) == set(truth)
    assert set(quarantined.values()) == {"outside_city"}
    assert details["partly_outside"] == {"policy": "quarantine", "rows": 0, "geometries": []}


def test_the_check_keeps_a_shape_crossing_the_edge_and_refuses_points_and_shapes_outside():
    gate = load_pack().city.gate()
    inside = OUTSIDE_CITY.vectorized({"extent": gate})
    x0, y0, x1, y1 = gate
    cases = {
        "polygon across the east edge": (shapely.box(x1 - 0.01, y0 + 0.1, x1 + 0.01, y0 + 0.2), True),
        "polygon wholly east": (shapely.box(x1 + 0.01, y0 + 0.1, x1 + 0.02, y0 + 0.2), False),
        "ferry line to a neighbour": (shapely.LineString([(x1 - 0.1, y0 + 0.1), (x1 + 1, y0 + 0.1)]), True),
        "point just east": (shapely.Point(x1 + 0.001, y0 + 0.1), False),
        "multipoint half out": (shapely.MultiPoint([(x1 - 0.1, y0 + 0.1), (x1 + 0.1, y0 + 0.1)]), False),
        "polygon with an islet past the edge": (shapely.MultiPolygon([shapely.box(x1 - 0.2, y0 + 0.1, x1 - 0.1, y0 + 0.2),
                                                                      shapely.box(x1 + 0.1, y0 + 0.1, x1 + 0.11, y0 + 0.11)]),
                                                True),
    }
    got = inside(np.array([g for g, _ in cases.values()], dtype=object)).tolist()
    assert dict(zip(cases, got)) == {k: v for k, (_, v) in cases.items()}
    strict = OUTSIDE_CITY.vectorized({"extent": gate, "outside": "quarantine"})  # the manifest's outside: quarantine
    got = strict(np.array([g for g, _ in cases.values()], dtype=object)).tolist()
    assert dict(zip(cases, got)) == {k: False for k in cases}
