"""`twinhub catalog near X Y --crs gcj02|bd09|wgs84|EPSG:xxxx`: a point read off a Chinese web map (or in any
CRS) is converted before the search, so it finds the feature it names."""

from __future__ import annotations

import csv
import json

import pyproj
import pytest
from click.testing import CliRunner

from twinhub import sample
from twinhub.cli.main import main
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup
from twinhub.standards.chinese_crs import wgs84_to_bd09


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    """civil_affairs.elderly_care published: its source is a GCJ-02 CSV, the catalog holds WGS 84/CGCS2000."""
    hub = Hub.open(tmp_path_factory.mktemp("near_crs") / "home")
    entry, _ = register(hub, sample.CITY / "civil_affairs" / "elderly_care.yaml")
    ingest(hub, lookup(hub, entry.id), run_id="first")
    return hub


def _published() -> dict[str, tuple[float, float]]:
    """The care homes' true positions (the generator's truth) that the hub published."""
    with (sample.ROOT / "truth.csv").open(encoding="utf-8", newline="") as fh:
        return {r["id"]: (float(r["lon"]), float(r["lat"])) for r in csv.DictReader(fh)
                if r["dataset"] == "civil_affairs.elderly_care" and r["expected"] == "published"}


def _as_the_department_wrote_it() -> dict[str, tuple[float, float]]:
    """The same care homes as the department's CSV gives them: GCJ-02, read off a web map."""
    with (sample.CITY / "civil_affairs" / "elderly_care.csv").open(encoding="gbk", newline="") as fh:
        return {r["机构编号"]: (float(r["经度"]), float(r["纬度"])) for r in csv.DictReader(fh) if r["经度"]}


def _near(hub: Hub, x: float, y: float, *options: str):
    return CliRunner().invoke(main, ["catalog", "near", repr(x), repr(y), "--radius", "25", *options,
                                     "--home", str(hub.home)])


def _found(result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [f["facility_id"] for f in json.loads(result.output)]


def test_a_gcj02_point_finds_the_feature_it_names_and_without_crs_does_not(hub):
    gcj02 = _as_the_department_wrote_it()
    for facility_id in list(_published())[:4]:
        x, y = gcj02[facility_id]
        assert _found(_near(hub, x, y, "--crs", "gcj02", "--format", "json"))[:1] == [facility_id]
        assert facility_id not in _found(_near(hub, x, y, "--format", "json"))  # searched as it is: ~500 m off


@pytest.mark.parametrize("crs", ["bd09", "BD-09", "wgs84", "EPSG:4549"])
def test_other_crss(hub, crs):
    facility_id, (lon, lat) = next(iter(_published().items()))
    if crs.lower().startswith("bd"):
        x, y = wgs84_to_bd09(lon, lat)
    elif crs == "EPSG:4549":
        x, y = pyproj.Transformer.from_crs("EPSG:4490", "EPSG:4549", always_xy=True).transform(lon, lat)
    else:
        x, y = lon, lat
    assert _found(_near(hub, x, y, "--crs", crs, "--format", "json"))[:1] == [facility_id]


def test_the_table_says_where_the_point_was_searched(hub):
    result = _near(hub, 121.4912, 31.2416, "--crs", "gcj02")
    assert result.exit_code == 0, result.output
    assert "121.4912 31.2416 (gcj02) is 121.4867201 31.2435732 in EPSG:4490" in result.output


def test_an_unknown_crs_is_refused_naming_the_usual_ones(hub):
    result = _near(hub, 121.49, 31.24, "--crs", "mars")
    assert result.exit_code == 2 and "--crs 'mars' is not a CRS: use gcj02 (Amap, Tencent), bd09 (Baidu)" in result.output
