"""Finding 6 (confinement): a department registers only files in its own landing folders.

It registered any file the hub could read, by absolute or ``..`` path (another department's raw
CSV, /etc/passwd), and published it. Now every path (symlinks resolved, every file of a folder or
a Shapefile's sidecars) must lie inside the department's ``landing`` folders in twinhub.yaml, or,
when none are declared, inside its manifest's folder; and again at every run.
"""

from __future__ import annotations

import shutil
import zipfile

import pytest

from twinhub.hub.ingest import ingest
from twinhub.hub.manifest import ManifestError
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup, registered

from .source_support import SHELTERS, hub_with, write_manifest


@pytest.fixture
def city(tmp_path):
    """Two departments' landing folders; water's holds its raw CSV, emergency's its shelters."""
    water, emergency = tmp_path / "landing" / "water", tmp_path / "landing" / "emergency"
    water.mkdir(parents=True)
    emergency.mkdir(parents=True)
    (water / "meters.csv").write_text("shelter_id,name,type,lon,lat\nW-1,Resident Li,shelter,121.47,31.23\n", encoding="utf-8")
    shutil.copy(SHELTERS, emergency / "shelters.geojson")
    return tmp_path, water, emergency


# (id, how the emergency department names a file that is not its own)
ESCAPES = [
    ("dotdot-to-another-department", lambda water, emergency: {"format": "csv", "path": "../water/meters.csv",
                                                               "x": "lon", "y": "lat", "crs": "EPSG:4326"}),
    ("absolute-other-department", lambda water, emergency: {"format": "csv", "path": str(water / "meters.csv"),
                                                            "x": "lon", "y": "lat", "crs": "EPSG:4326"}),
    ("absolute-system-file", lambda water, emergency: {"format": "csv", "path": "/etc/passwd", "crs": "EPSG:4326"}),
    ("symlink-inside-to-outside", lambda water, emergency: {"format": "csv", "path": "alias.csv",
                                                            "x": "lon", "y": "lat", "crs": "EPSG:4326"}),
]


@pytest.mark.parametrize("declared", [False, True], ids=["default-manifest-folder", "landing-declared"])
@pytest.mark.parametrize("source", [pytest.param(c[1], id=c[0]) for c in ESCAPES])
def test_a_department_cannot_register_a_file_outside_its_folders(city, source, declared):
    root, water, emergency = city
    (emergency / "alias.csv").symlink_to(water / "meters.csv")
    config = {"landing": {"emergency": [str(emergency)], "water": [str(water)]}} if declared else {}
    hub = hub_with(root / "home", **config)
    with pytest.raises(ManifestError) as info:
        register(hub, write_manifest(emergency, "stolen", source(water, emergency)))
    problem = info.value.problems.get("source.path", "")
    assert "outside the folders your department may register files from" in problem, info.value.problems
    assert str(emergency) in problem and "landing.emergency" in problem
    assert registered(hub) == []


def test_files_inside_the_landing_folder_register_from_a_manifest_elsewhere(city):
    root, water, emergency = city
    hub = hub_with(root / "home", landing={"emergency": [str(emergency)]})
    manifests = root / "manifests"
    register(hub, write_manifest(manifests, "shelters", {"format": "geojson", "path": str(emergency / "shelters.geojson")}))
    assert [r.id for r in registered(hub)] == ["emergency.shelters"]


def test_a_shapefile_folder_with_a_sidecar_linked_elsewhere_is_refused(city, realworld):
    """Every file GDAL would read counts: a .dbf symlinked to another department's file is refused."""
    root, water, emergency = city
    with zipfile.ZipFile(realworld / "us_nyc_borough_boundaries" / "nybb_16a.zip") as archive:
        archive.extractall(root / "nyc")
    folder = emergency / "nybb"
    folder.mkdir()
    for part in (root / "nyc").rglob("nybb.*"):
        if part.suffix == ".dbf":
            shutil.copy(part, water / "nybb.dbf")
            (folder / "nybb.dbf").symlink_to(water / "nybb.dbf")
        else:
            shutil.copy(part, folder / part.name)
    hub = hub_with(root / "home", landing={"emergency": [str(emergency)]})
    with pytest.raises(ManifestError) as info:
        register(hub, write_manifest(emergency, "boroughs", {"format": "shapefile", "path": "nybb"},
                                     fields={"facility_id": "BoroCode", "name": "BoroName", "category": "BoroName"}))
    assert "nybb.dbf" in info.value.problems.get("source.path", "") and str(water) in info.value.problems["source.path"]


def test_a_file_swapped_for_a_symlink_after_registration_is_refused_at_the_run(city):
    root, water, emergency = city
    hub = hub_with(root / "home", landing={"emergency": [str(emergency)]})
    register(hub, write_manifest(emergency, "shelters", {"format": "geojson", "path": "shelters.geojson"}))
    (emergency / "shelters.geojson").unlink()
    secret = water / "secret.geojson"
    shutil.copy(SHELTERS, secret)  # another department's file, valid GeoJSON
    (emergency / "shelters.geojson").symlink_to(secret)
    with pytest.raises(Exception, match="outside the folders your department may register files from"):
        ingest(hub, lookup(hub, "emergency.shelters"), run_id="swapped")
    con = hub.lake.connect(read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'emergency'").fetchall()}
    finally:
        con.close()
    assert "shelters" not in tables
