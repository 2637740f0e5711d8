"""A standards pack is data: a city changes files, not code."""

from __future__ import annotations

import shutil

import pytest
import yaml

from twinhub import sample
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup
from twinhub.standards.pack import DEFAULT_PACK, StandardsError, load_pack


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


# --------------------------------------------------------------------------- the shipped standards

import pathlib  # noqa: E402

from twinhub.standards import admin_divisions  # noqa: E402
from twinhub.standards.pack import load_city  # noqa: E402

GEOMETRY = {"facility": "Point", "street_asset": "Point", "service_request": "Point", "building": "Polygon",
            "admin_area": "Polygon", "road_segment": "LineString"}


@pytest.mark.parametrize("name", sorted(GEOMETRY))
def test_each_shared_entity_type_is_a_documented_versioned_standard(name):
    pack = load_pack()
    standard = pack.standard(name)
    assert standard.version and standard.title and standard.description.strip()
    assert standard.primary_key and all(standard.required(pack.standard(name).schema.get_field(k))
                                        for k in standard.primary_key)
    assert standard.geometry_field.custom["geometryType"] == GEOMETRY[name]
    for f in standard.fields:
        assert f.title and f.description, f"{name}.{f.name} is not documented"
        vocabulary = f.custom.get("vocabulary")
        if vocabulary:
            assert all(c.labels.get("en") and c.labels.get("zh") for c in pack.vocabulary(vocabulary).concepts)
    assert any(f.custom.get("unit") for f in standard.fields) or name == "service_request"


def _pack_copy(tmp_path) -> pathlib.Path:
    root = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return root


def test_a_manifest_can_pin_a_kept_older_version(tmp_path):
    root = _pack_copy(tmp_path)
    current = yaml.safe_load((root / "schemas" / "facility.schema.yaml").read_text(encoding="utf-8"))
    (root / "schemas" / "archive").mkdir()
    old = dict(current, version="0.9.0", fields=[f for f in current["fields"] if f["name"] != "address"])
    (root / "schemas" / "archive" / "facility-0.9.0.schema.yaml").write_text(yaml.safe_dump(old), encoding="utf-8")
    newer = dict(current, version="1.2.0")
    (root / "schemas" / "facility.schema.yaml").write_text(yaml.safe_dump(newer), encoding="utf-8")
    (root / "schemas" / "archive" / "facility-1.0.0.schema.yaml").write_text(yaml.safe_dump(current), encoding="utf-8")
    pack = load_pack(str(root))
    assert pack.standard("facility").version == "1.2.0"  # unpinned: the newest
    assert pack.standard("facility@1").version == "1.2.0"  # the newest 1.x
    assert pack.standard("facility@1.0").version == "1.0.0"
    assert pack.standard("facility@0.9.0").version == "0.9.0" and "address" not in pack.standard("facility@0.9.0").field_names
    with pytest.raises(StandardsError, match="no version '2' .* 0.9.0, 1.0.0, 1.2.0"):
        pack.standard("facility@2")


def test_two_files_with_one_version_are_refused(tmp_path):
    root = _pack_copy(tmp_path)
    shutil.copy(root / "schemas" / "facility.schema.yaml", root / "schemas" / "facility-copy.schema.yaml")
    with pytest.raises(StandardsError, match="facility@1.0.0 is also defined in"):
        load_pack(str(root))


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda d: d["concepts"].append({"code": "x", "labels": {"en": "X"}, "replaced_by": "nowhere"}),
         "replaced_by 'nowhere' is not a code"),
        (lambda d: d["concepts"].append(dict(d["concepts"][0])), "appear more than once"),
        (lambda d: d.pop("version"), "needs a 'version'"),
    ],
)
def test_a_broken_vocabulary_names_its_file(tmp_path, edit, says):
    root = _pack_copy(tmp_path)
    path = root / "vocabularies" / "facility_category.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(StandardsError, match=says) as error:
        load_pack(str(root))
    assert "facility_category.yaml" in str(error.value)


def test_the_district_vocabulary_is_generated_from_the_national_code_list(realworld, tmp_path):
    """cn_admin_division_codes: regenerating gives the shipped file; attribution sits beside it."""
    root = _pack_copy(tmp_path)
    admin_divisions.main([str(realworld / "cn_admin_division_codes"), "--pack", str(root)])
    shipped = DEFAULT_PACK / "vocabularies"
    assert (root / "vocabularies" / "admin_division.yaml").read_text(encoding="utf-8") == (
        shipped / "admin_division.yaml").read_text(encoding="utf-8")
    assert "modood/Administrative-divisions-of-China" in (shipped / "admin_division.SOURCE.txt").read_text(encoding="utf-8")
    vocabulary = load_pack().vocabulary("admin_division")
    with (realworld / "cn_admin_division_codes" / "areas.csv").open(encoding="utf-8") as fh:
        shanghai = {line.split(",")[0] for line in fh if line.startswith("31")}
    assert set(vocabulary.codes) == shanghai | {"310000"}
    zhabei = vocabulary.concept("310108")
    assert zhabei.labels["zh"] == "闸北区" and zhabei.replaced_by == "310106" and "2015" in zhabei.note
    assert "310108" not in shanghai  # 闸北区 is not in the national list any more: the vocabulary still knows it


def test_city_policy_keys(tmp_path):
    root = _pack_copy(tmp_path)
    city = load_pack(str(root)).city
    assert city.transform_accuracy_m == 1 and "EPSG:4549" in city.crs_candidates and city.day_first
    data = yaml.safe_load((root / "city.yaml").read_text(encoding="utf-8"))
    data["score_weights"] = {"schema": 2, "speed": 1}
    (root / "city.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(StandardsError, match="score_weights: unknown part"):
        load_city(root / "city.yaml")
    data["score_weights"] = {}
    data["crs_candidates"] = ["EPSG:4549", "EPSG:99999"]
    (root / "city.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(StandardsError, match=r"city.yaml: unknown CRS 'EPSG:99999'"):
        load_city(root / "city.yaml")
