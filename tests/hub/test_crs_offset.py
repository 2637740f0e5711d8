"""The stage audit's crs_offset warning (twinhub/hub/crs_offset.py): bus stops read off a GCJ-02 web map but
declared WGS 84 sit ~500 m from the same stops another department published; the run stages them, warns
with the evidence, and publishes (every row is valid). A correct copy, and a first dataset with nothing to
compare with, raise nothing.

The truth: 150 stops at known WGS 84 positions in central Shanghai, published by transport."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import yaml

from twinhub.hub.audit import audit_stage
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest, stage_dataset
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup
from twinhub.standards.chinese_crs import wgs84_to_gcj02

pytestmark = pytest.mark.slow


def _stops(folder: pathlib.Path, name: str, lon: np.ndarray, lat: np.ndarray, department: str) -> pathlib.Path:
    (folder / f"{name}.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": f"S{i:03d}", "name": f"公交站{i:03d}", "mode": "bus"},
         "geometry": {"type": "Point", "coordinates": [float(lon[i]), float(lat[i])]}} for i in range(lon.size)]},
        ensure_ascii=False), "utf-8")
    manifest = folder / f"{name}.yaml"
    manifest.write_text(yaml.safe_dump({
        "department": department, "dataset": name, "title": name, "standard": "transit_stop",
        "source": {"format": "geojson", "path": f"{name}.geojson", "crs": "EPSG:4326"},  # declared WGS 84
        "fields": {"stop_id": "id", "name": "name", "mode": "mode"}, "classification": "public"},
        allow_unicode=True), "utf-8")
    return manifest


def _offset_audit(hub: Hub, manifest: pathlib.Path, run_id: str):
    entry, _ = register(hub, manifest)
    staged = stage_dataset(hub, lookup(hub, entry.id), run_id=run_id)
    audit = next(a for a in audit_stage(staged.stage, entry.manifest.quality, None) if a.name == "crs_offset")
    staged.stage.cleanup()
    return audit


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("crs_offset")
    hub = Hub.open(folder / "home")
    rng = np.random.default_rng(5)
    lon, lat = rng.uniform(121.40, 121.55, 150), rng.uniform(31.15, 31.30, 150)
    first = _stops(folder, "bus_stops", lon, lat, "transport")
    audit = _offset_audit(hub, first, "stage-first")
    assert audit.passed and audit.facts == {"compared": False}  # nothing published to compare with yet
    entry, _ = register(hub, first)
    assert ingest(hub, lookup(hub, entry.id), run_id="publish-first").rows_published == 150
    return hub, folder, lon, lat


def test_points_read_off_a_gcj02_map_but_declared_wgs84_are_warned_about(hub):
    hub, folder, lon, lat = hub
    glon, glat = wgs84_to_gcj02(lon, lat)
    audit = _offset_audit(hub, _stops(folder, "stops_from_web_map", glon, glat, "tourism"), "stage-gcj")
    assert not audit.passed and not audit.blocking  # a warning: the rows are valid, a person should look
    (finding,) = audit.facts["findings"]
    assert finding["likely"] == "GCJ-02 declared as WGS 84"
    assert finding["paired_by"] == "name" and finding["pairs"] == 150
    assert 300 < finding["median_m_as_declared"] < 800  # the GCJ-02 offset in Shanghai
    assert "tourism.stops_from_web_map" in finding["message"]


def test_a_correct_copy_raises_nothing(hub):
    hub, folder, lon, lat = hub
    audit = _offset_audit(hub, _stops(folder, "stops_surveyed", lon + 2e-6, lat, "tourism"), "stage-ok")
    assert audit.passed and audit.facts["compared"] is True and audit.facts["findings"] == []
    assert audit.facts["sampled"] == 150
