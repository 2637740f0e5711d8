"""The bundled sample city: four departments' sources, their manifests, and the truth."""

import pathlib

ROOT = pathlib.Path(__file__).parent
CITY = ROOT / "city"
TRUTH = ROOT / "truth.csv"
DERIVED = ROOT / "derived"  # derived datasets (SQL) the demo copies into the hub home


def manifests() -> list[pathlib.Path]:
    return sorted(CITY.glob("*/*.yaml"))
