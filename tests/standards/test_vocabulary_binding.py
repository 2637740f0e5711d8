"""Enums and vocabularies in manifests, and history without loss (issue 16, items 2 and 3).

Each dataset is written here from a truth table (what the hub must do with each row), registered and run
through ``twinhub.hub.ingest`` on a hub in a temporary home; every row is accounted for:
published + quarantined = read.
"""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml

from twinhub.catalog.info import last_published
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.manifest import ManifestError
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup
from twinhub.standards.conform import run_warnings

# --------------------------------------------------------------------------- truth tables

# admin_area: (area_code, name, level as the department writes it, what the hub must do)
AREAS = [
    ("310101", "黄浦区", "区", "published"),  # level mapped onto the enum by labels
    ("310106", "静安区", "county", "published"),  # the current row of 310106
    ("310108", "闸北区", "区", "outdated_key"),  # merged into 静安区 in 2015: held as history
    ("310104", "徐汇区", "district", "enum"),  # a level neither in the enum nor mapped
]

# facility: (facility_id, category, district as written, district published, what the hub must do)
FACILITIES = [
    ("F1", "养老院", "静安区", "310106", "published"),
    ("F2", "养老院", "闸北区", "310106", "published"),  # outdated: mapped to its replacement and reported
    ("F3", "养老院", "闸北", "310106", "published"),  # a synonym of the outdated concept
    ("F4", "养老院", "火星区", "火星区", "published"),  # unknown: kept as written, counted unmapped
    ("F5", "养老院", None, None, "published"),  # blank: neither mapped nor unmapped
    ("F6", "水族馆", "徐汇区", None, "label_unmapped"),  # the standard's own vocabulary still quarantines
]


def _square(i: int) -> list:
    x, y = 121.30 + 0.05 * i, 31.20
    return [[[x, y], [x + 0.04, y], [x + 0.04, y + 0.04], [x, y + 0.04], [x, y]]]


def _areas(tmp_path: pathlib.Path, labels: dict | None = None) -> pathlib.Path:
    features = [{"type": "Feature", "properties": {"code": code, "name": name, "level": level},
                 "geometry": {"type": "Polygon", "coordinates": _square(i)}}
                for i, (code, name, level, _) in enumerate(AREAS)]
    (tmp_path / "areas.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features},
                                                       ensure_ascii=False), encoding="utf-8")
    manifest = {
        "department": "planning", "dataset": "districts", "title": "Districts (2014 register)",
        "standard": "admin_area", "source": {"format": "geojson", "path": "areas.geojson", "crs": "EPSG:4490"},
        "fields": {"area_code": "code", "name": "name", "level": "level"},
        "labels": {"level": {"区": "county"}} if labels is None else labels,
    }
    path = tmp_path / "districts.yaml"
    path.write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    return path


def _facilities(tmp_path: pathlib.Path, vocabularies: dict | None = None) -> pathlib.Path:
    lines = ["id,name,type,district,lon,lat"]
    lines += [f"{fid},{fid} home,{category},{district or ''},{121.40 + i * 0.01},31.20"
              for i, (fid, category, district, _, _) in enumerate(FACILITIES)]
    (tmp_path / "homes.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest = {
        "department": "health", "dataset": "homes", "title": "Care homes", "standard": "facility",
        "source": {"format": "csv", "path": "homes.csv", "crs": "EPSG:4490", "x": "lon", "y": "lat"},
        "fields": {"facility_id": "id", "name": "name", "category": "type", "district": "district"},
        "labels": {"category": {"养老院": "elderly_care_home"}},
        "vocabularies": {"district": "admin_division"} if vocabularies is None else vocabularies,
    }
    path = tmp_path / "homes.yaml"
    path.write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    return path


def _run(hub: Hub, dataset: str):
    result = ingest(hub, lookup(hub, dataset), run_id="r1")
    con = hub.lake.connect(read_only=True)
    try:
        table = dataset.replace(".", '"."')
        rows = con.execute(f'SELECT * FROM "{table}"').df()  # names from this test's own constants
        held = con.execute("SELECT source_row, checks, reasons FROM catalog.quarantine WHERE dataset = ? "
                           "ORDER BY source_row", [dataset]).fetchall()
    finally:
        con.close()
    return result, rows, held, json.loads(last_published(hub.lake, dataset)["details"])


def _expected(truth: list[tuple], what: str) -> set[int]:
    return {i for i, row in enumerate(truth) if row[-1] == what}


# --------------------------------------------------------------------------- item 2: enums, bindings


@pytest.mark.slow
def test_an_enum_field_takes_labels_and_an_outdated_key_never_costs_the_current_row(hub, tmp_path):
    register(hub, _areas(tmp_path))
    result, rows, held, details = _run(hub, "planning.districts")

    assert len(rows) + len(held) == len(AREAS)  # every row accounted for
    published = dict(zip(rows["area_code"], rows["level"]))
    assert published == {AREAS[i][0]: "county" for i in _expected(AREAS, "published")}  # 区 -> county
    assert published["310106"] == "county" and "310108" not in published  # 静安区 kept, not lost
    by_row = {row - 1: (checks, json.loads(reasons)) for row, checks, reasons in held}  # source rows count from 1
    assert {row: checks for row, (checks, _) in by_row.items()} == {
        i: AREAS[i][-1] for i in range(len(AREAS)) if AREAS[i][-1] not in ("published",)}
    [history] = by_row[2][1]
    assert (history["column"], history["value"]) == ("area_code", "310108")
    assert "310106" in history["message"] and "history" in history["message"]  # names its replacement
    assert details["history"] == {"policy": "keep_current", "rows": 1, "held": {
        "area_code": {"310108": {"code": "310108", "replaced_by": "310106", "rows": 1}}}}
    assert details["checks"].get("duplicate_key") is None and details["checks"]["outdated_key"] == 1
    assert details["labels"]["level"]["by_how"] == {"manifest": 2, "code": 1}
    assert details["labels"]["level"]["unmapped_values"] == {"district": 1}
    assert any("310108" in line and "history" in line for line in run_warnings(details))


def test_labels_on_an_enum_field_refuse_a_value_outside_the_enum(hub, tmp_path):
    with pytest.raises(ManifestError) as error:
        register(hub, _areas(tmp_path, labels={"level": {"区": "district"}}))
    assert "labels.level.区" in error.value.problems
    assert "'district' is not a code" in error.value.problems["labels.level.区"]


@pytest.mark.slow
def test_a_bound_vocabulary_flags_and_maps_an_outdated_district(hub, tmp_path):
    register(hub, _facilities(tmp_path))
    result, rows, held, details = _run(hub, "health.homes")

    assert len(rows) + len(held) == len(FACILITIES)
    published = dict(zip(rows["facility_id"], rows["district"].astype(object).where(rows["district"].notna(), None)))
    assert published == {FACILITIES[i][0]: FACILITIES[i][3] for i in _expected(FACILITIES, "published")}
    assert {row - 1: checks for row, checks, _ in held} == {i: "label_unmapped" for i in _expected(FACILITIES, "label_unmapped")}
    district = details["labels"]["district"]
    assert district["outdated"] == {
        "闸北区": {"code": "310108", "replaced_by": "310106", "note": "merged into 静安区 (Jing'an District) in 2015", "rows": 1},
        "闸北": {"code": "310108", "replaced_by": "310106", "note": "merged into 静安区 (Jing'an District) in 2015", "rows": 1},
    }
    assert district["unmapped_values"] == {"火星区": 1} and district["values"] == 5 and district["mapped"] == 4
    assert "history" not in details  # district is no key (facility_id is): nothing held, the rows publish mapped
    assert sum("闸北区" in line and "310106" in line for line in run_warnings(details)) == 1


@pytest.mark.parametrize("bindings, key, says", [
    ({"distrct": "admin_division"}, "vocabularies.distrct", "did you mean 'district'"),
    ({"district": "shanghai_districts"}, "vocabularies.district", "no vocabulary 'shanghai_districts'"),
    ({"category": "admin_division"}, "vocabularies.category", "has its own vocabulary facility_category"),
    ({"capacity": "admin_division"}, "vocabularies.capacity", "only a text field"),
])
def test_a_bad_binding_names_its_key(hub, tmp_path, bindings, key, says):
    with pytest.raises(ManifestError) as error:
        register(hub, _facilities(tmp_path, vocabularies=bindings))
    assert key in error.value.problems and says in error.value.problems[key], error.value.problems


@pytest.mark.parametrize("inline, value, outdated", [
    ({"闸北区": "310106"}, "闸北区", "310108"),  # the department maps the old label onto its replacement itself
    ({}, "Zhabei", "310108"),
    ({"老闸北": "310106"}, "老闸北", None),  # its own spelling: a plain mapping, no history
    ({}, "静安区", None),
])
def test_mapping_an_outdated_label_onto_its_replacement_is_still_history(inline, value, outdated):
    from twinhub.standards.labels import Matcher
    from twinhub.standards.pack import load_pack

    found = Matcher(load_pack().vocabulary("admin_division"), inline=inline).lookup(value)
    assert (found.code, found.outdated) == ("310106", outdated)


def test_only_an_enum_the_labels_name_is_mapped_as_a_vocabulary():
    from twinhub.standards.pack import field_vocabularies, load_pack

    pack = load_pack()
    areas, facility = pack.standard("admin_area"), pack.standard("facility")
    assert set(field_vocabularies(areas, pack)) == {"area_code", "parent_code"}  # level checked strictly, as before
    assert field_vocabularies(areas, pack, labelled=["level"])["level"].codes == [
        "province", "prefecture", "county", "township"]
    bound = field_vocabularies(facility, pack, {"district": "admin_division", "category": "admin_division"})
    assert (bound["district"].name, bound["category"].name) == ("admin_division", "facility_category")
