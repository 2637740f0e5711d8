"""A hub whose target CRS is projected (issue 16, item 8): ``target_crs: EPSG:4549`` (CGCS2000 3-degree
Gauss-Kruger CM 120E, northing first in EPSG's axis order) publishes the sample city as the lon/lat hub does.

city.yaml writes the extent in the city's own CRS (EPSG:4490, degrees); the gate is that extent reprojected
to the hub's CRS (densified, x first), so the same rows pass and the same rows are quarantined. The oracle
for the positions is pyproj itself, over the lon/lat hub's published points.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pyproj
import pytest
from click.testing import CliRunner

from twinhub import sample
from twinhub.cli.main import main
from twinhub.hub.home import Hub

pytestmark = pytest.mark.slow

COUNTS = "SELECT dataset, rows_read, rows_published, rows_quarantined FROM catalog.quality ORDER BY dataset"


def _demo(home: pathlib.Path, target_crs: str | None) -> tuple[Hub, str]:
    assert CliRunner().invoke(main, ["--home", str(home), "init"]).exit_code == 0
    if target_crs:
        config = home / "twinhub.yaml"
        config.write_text(config.read_text(encoding="utf-8").replace("\ntarget_crs:\n", f"\ntarget_crs: {target_crs}\n"),
                          encoding="utf-8")
    result = CliRunner().invoke(main, ["--home", str(home), "demo"])
    assert result.exit_code == 0, result.output
    return Hub.open(home, create=False), result.output


def _fetch(hub: Hub, sql: str) -> list[tuple]:
    con = hub.lake.connect(read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[Hub, str], tuple[Hub, str]]:
    root = tmp_path_factory.mktemp("projected")
    return _demo(root / "lonlat", None), _demo(root / "gauss_kruger", "EPSG:4549")


@pytest.fixture(scope="module")
def hubs(demos) -> tuple[Hub, Hub]:
    return demos[0][0], demos[1][0]


def test_every_sample_dataset_publishes_the_same_counts_in_a_projected_hub(hubs):
    lonlat, projected = hubs
    assert projected.target_crs == "EPSG:4549"
    expected = _fetch(lonlat, COUNTS)
    assert len(expected) == len(sample.manifests()) and all(published > 0 for _, _, published, _ in expected)
    assert _fetch(projected, COUNTS) == expected


def test_the_projected_hub_publishes_metres_where_pyproj_puts_the_lonlat_hubs_points(hubs):
    lonlat, projected = hubs
    sql = ("SELECT facility_id, ST_X(geometry), ST_Y(geometry) FROM emergency.shelters ORDER BY facility_id")
    degrees, metres = _fetch(lonlat, sql), _fetch(projected, sql)
    assert [r[0] for r in degrees] == [r[0] for r in metres]
    to_gk = pyproj.Transformer.from_crs(lonlat.target_crs, "EPSG:4549", always_xy=True)
    for (_, lon, lat), (_, x, y) in zip(degrees, metres):
        ex, ey = to_gk.transform(lon, lat)
        assert abs(x - ex) < 0.01 and abs(y - ey) < 0.01  # x is the easting (~600 km), y the northing (~3,400 km)
        assert 500_000 < x < 700_000 and 3_300_000 < y < 3_600_000


def test_the_gate_in_the_projected_crs_holds_the_whole_extent(hubs):
    _, projected = hubs
    city = projected.city
    minx, miny, maxx, maxy = city.gate("EPSG:4549")
    to_gk = pyproj.Transformer.from_crs(city.target_crs, "EPSG:4549", always_xy=True)
    x0, y0, x1, y1 = city.extent
    # the extent's edges, not only its corners: the northern edge bulges north of its corners in Gauss-Kruger
    for lon, lat in [(x0 + (x1 - x0) * i / 50, y) for i in range(51) for y in (y0, y1)] + \
                    [(x, y0 + (y1 - y0) * i / 50) for i in range(51) for x in (x0, x1)]:
        x, y = to_gk.transform(lon, lat)
        assert minx < x < maxx and miny < y < maxy
    assert maxx - minx < 200_000  # the buffer is 2 km in metres, not 2000 degrees


def test_the_demo_query_measures_the_same_metres_in_the_projected_hub(demos):
    (_, lonlat), (_, projected) = demos
    table = [o.split("shelters within 400 m")[1].split("next:")[0] for o in (lonlat, projected)]
    assert table[0].count("\n") > 4  # a header, a rule and the shelters near a care home
    assert table[1] == table[0]  # ::geography over Gauss-Kruger metres, not metres read as degrees


@pytest.mark.parametrize(("x", "y", "written_in"), [
    ([121.47, 121.50, 121.40], [31.23, 31.20, 31.25], "EPSG:4326"),  # People's Square area, lon/lat
    ([640_000.0, 643_000.0, 633_000.0], [3_457_000.0, 3_454_000.0, 3_459_000.0], "EPSG:4549"),  # the same, metres
])
def test_crs_detection_ranks_the_same_in_a_projected_hub(x, y, written_in):
    from twinhub.standards.crs_detect import rank_crs
    from twinhub.standards.pack import load_pack

    city = load_pack().city
    ranked = {t: [c.crs for c in rank_crs(np.array(x), np.array(y), city, t)] for t in ("EPSG:4490", "EPSG:4549")}
    assert ranked["EPSG:4549"] == ranked["EPSG:4490"] and ranked["EPSG:4490"][0] == written_in
