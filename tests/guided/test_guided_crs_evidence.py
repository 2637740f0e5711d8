"""Guided registration breaks a CRS tie with the hub's evidence (twinhub/hub/crs_evidence.py): a POI file
without a declared CRS, whose WGS 84, GCJ-02 and BD-09 readings all fall inside the city, is proposed in the
CRS its names agree with, against bus stops another department published at known WGS 84 positions."""

from __future__ import annotations

import csv
import json
import pathlib

import numpy as np
import pytest
import yaml

from twinhub.guided.guide import propose
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup
from twinhub.standards.chinese_crs import wgs84_to_gcj02

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("guided_crs")
    hub = Hub.open(folder / "home")
    rng = np.random.default_rng(8)
    lon, lat = rng.uniform(121.40, 121.55, 120), rng.uniform(31.15, 31.30, 120)
    (folder / "stops.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": f"S{i:03d}", "name": f"公交站{i:03d}", "mode": "bus"},
         "geometry": {"type": "Point", "coordinates": [float(lon[i]), float(lat[i])]}} for i in range(120)]},
        ensure_ascii=False), "utf-8")
    (folder / "stops.yaml").write_text(yaml.safe_dump({
        "department": "transport", "dataset": "bus_stops", "title": "Bus stops", "standard": "transit_stop",
        "source": {"format": "geojson", "path": "stops.geojson"}, "fields": {"stop_id": "id", "name": "name",
                                                                            "mode": "mode"},
        "classification": "public"}, allow_unicode=True), "utf-8")
    entry, _ = register(hub, folder / "stops.yaml")
    assert ingest(hub, lookup(hub, entry.id), run_id="stops").rows_published == 120
    return hub, folder, lon, lat


def _poi(folder: pathlib.Path, name: str, x: np.ndarray, y: np.ndarray) -> pathlib.Path:
    path = folder / name
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["站点名称", "经度", "纬度"])
        writer.writerows([f"公交站{i:03d}", f"{x[i]:.7f}", f"{y[i]:.7f}"] for i in range(x.size))
    return path


@pytest.mark.parametrize("written, expected", [("wgs84", "EPSG:4326"), ("gcj02", "GCJ-02")])
def test_the_hubs_evidence_decides_the_tie(published, written, expected):
    hub, folder, lon, lat = published
    x, y = (lon, lat) if written == "wgs84" else wgs84_to_gcj02(lon, lat)
    proposal = propose(hub, str(_poi(folder, f"poi_{written}.csv", x, y)), department="tourism",
                       standard="transit_stop")
    choice = proposal.profile.crs
    assert proposal.manifest["fields"]["name"] == "站点名称"
    assert len(choice.candidates) >= 2  # the ranges alone tie
    assert choice.decided_by == ["names"] and choice.sure
    assert choice.crs == expected and proposal.manifest["source"]["crs"] == expected
    assert any("the evidence points to" in line for line in choice.evidence)
