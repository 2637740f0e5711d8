"""Hubs whose city is where the real-world datasets are (the shipped pack's city is Shanghai)."""

from __future__ import annotations

import pathlib
import shutil

import pytest
import yaml

from twinhub.hub.home import Hub
from twinhub.standards.pack import DEFAULT_PACK

REALWORLD = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data" / "realworld"

CITIES = {  # name -> extent in lon/lat (target CRS EPSG:4326)
    "adur": ("Adur", "Europe/London", [-0.42, 50.80, -0.17, 50.90]),
    "toronto": ("Toronto (East York)", "America/Toronto", [-79.64, 43.58, -79.11, 43.86]),
    "boston": ("Boston", "America/New_York", [-71.20, 42.22, -70.98, 42.40]),
    "banqiao": ("New Taipei", "Asia/Taipei", [121.28, 24.67, 122.01, 25.30]),
    "bath": ("Bath and North East Somerset", "Europe/London", [-2.71, 51.27, -2.27, 51.44]),
    "nyc": ("New York City", "America/New_York", [-74.26, 40.49, -73.70, 40.92]),
}


def city_hub(root: pathlib.Path, city: str) -> Hub:
    """A hub in ``root/home`` whose standards pack is the shipped one with ``city``'s city.yaml."""
    pack = root / "pack"
    if not pack.exists():
        for part in ("schemas", "vocabularies", "crosswalks"):
            shutil.copytree(DEFAULT_PACK / part, pack / part)
    name, timezone, extent = CITIES[city]
    (pack / "city.yaml").write_text(yaml.safe_dump({
        "name": name, "target_crs": "EPSG:4326", "timezone": timezone, "extent": extent, "buffer_m": 2000,
        "transform_accuracy_m": 5, "day_first": city != "boston",
    }), encoding="utf-8")
    home = root / "home"
    Hub.open(home)
    # the departments' files are the shared real-world data and the test's own folder (landing:)
    landing = {department: [str(REALWORLD), str(root)] for department in ("facilities", "city_services", "parks")}
    (home / "twinhub.yaml").write_text(yaml.safe_dump({"standards": str(pack), "landing": landing}), encoding="utf-8")
    return Hub.open(home)


@pytest.fixture
def adur_hub(tmp_path: pathlib.Path) -> Hub:
    return city_hub(tmp_path, "adur")


@pytest.fixture
def toronto_hub(tmp_path: pathlib.Path) -> Hub:
    return city_hub(tmp_path, "toronto")
