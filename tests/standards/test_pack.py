"""A standards pack is data: a city changes files, not code."""

from __future__ import annotations

import shutil

import pytest
import yaml

from standards.pack import DEFAULT_PACK, StandardsError, load_pack
from twinhub import sample
from twinhub.home import Hub
from twinhub.ingest import ingest
from twinhub.registry import lookup, register


def test_the_shipped_pack():
    pack = load_pack()
    assert pack.city.target_crs == "EPSG:4490"
    facility = pack.standard("facility")
    assert facility.version == "1.0.0" and facility.primary_key == ["facility_id"]
    assert facility.geometry_field.custom["geometryType"] == "Point"
    assert all(f.description for f in facility.fields)
    vocabulary = pack.vocabulary("facility_category")
    assert {"elderly_care_home", "pumping_station"} <= set(vocabulary.codes)
    assert all(c.labels.get("en") and c.labels.get("zh") for c in vocabulary.concepts)


def test_a_broken_schema_names_its_file(tmp_path):
    shutil.copytree(DEFAULT_PACK, tmp_path / "pack", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    bad = tmp_path / "pack" / "schemas" / "facility.schema.yaml"
    data = yaml.safe_load(bad.read_text(encoding="utf-8"))
    data["fields"][0]["type"] = "text"
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(StandardsError, match="facility.schema.yaml"):
        load_pack(str(tmp_path / "pack"))


def test_a_city_extends_its_vocabulary_by_editing_files(tmp_path):
    """老年活动室 is unmapped in the shipped pack; a city adds it as a synonym and the row publishes."""
    shutil.copytree(DEFAULT_PACK, tmp_path / "pack", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    vocabulary = tmp_path / "pack" / "vocabularies" / "facility_category.yaml"
    data = yaml.safe_load(vocabulary.read_text(encoding="utf-8"))
    next(c for c in data["concepts"] if c["code"] == "day_care_centre")["synonyms"].append("老年活动室")
    vocabulary.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    hub = Hub.open(tmp_path / "home")
    (hub.home / "twinhub.yaml").write_text(f"standards: {tmp_path / 'pack'}\n", encoding="utf-8")
    hub = Hub.open(hub.home)
    register(hub, sample.CITY / "civil_affairs" / "elderly_care.yaml")
    result = ingest(hub, lookup(hub, "civil_affairs.elderly_care"), run_id="city")
    assert "label_unmapped" not in result.reasons
    assert result.rows_published == 19  # 18 in the shipped pack, plus row 5
