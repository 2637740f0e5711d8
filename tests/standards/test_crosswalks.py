"""Crosswalk files: shared, versioned, resolved per field, and written to when a mapping is accepted."""

from __future__ import annotations

import pytest
import yaml

from twinhub.standards import crosswalk_files
from twinhub.standards.pack import DEFAULT_PACK, StandardsError, load_crosswalk, load_pack

PACK = load_pack()
VOCABULARIES = {"category": "facility_category", "district": "admin_division"}


@pytest.mark.parametrize(
    ("spec", "names", "inline"),
    [
        ("facility_category_common", ["facility_category_common"], {}),
        ({"老人院": "elderly_care_home"}, [], {"老人院": "elderly_care_home"}),
        (["facility_category_common", {"老人院": "elderly_care_home"}], ["facility_category_common"],
         {"老人院": "elderly_care_home"}),
    ],
    ids=["name", "inline", "both"],
)
def test_a_field_names_crosswalks_and_inline_values(spec, names, inline):
    assert crosswalk_files.split_spec(spec) == (names, inline)
    resolved, problems = crosswalk_files.resolve({"category": spec}, VOCABULARIES, PACK)
    assert problems == {}
    assert [c.name for c in resolved["category"].crosswalks] == names and resolved["category"].inline == inline


@pytest.mark.parametrize(
    ("labels", "key", "says"),
    [
        ({"categry": {"x": "clinic"}}, "labels.categry", "did you mean 'category'"),
        ({"category": "facility_category_comon"}, "labels.category", "did you mean 'facility_category_common'"),
        ({"district": "facility_category_common"}, "labels.district", "maps to vocabulary facility_category"),
        ({"category": {"x": "hospitl"}}, "labels.category.x", "not a code of vocabulary facility_category"),
        ({"district": {"闸北区": "310108"}}, "labels.district.闸北区", "outdated in vocabulary admin_division: use '310106'"),
        ({"category": [1]}, "labels.category", "give a crosswalk name or a mapping"),
    ],
)
def test_problems_name_the_manifest_key(labels, key, says):
    _, problems = crosswalk_files.resolve(labels, VOCABULARIES, PACK)
    assert says in problems[key], problems


def _home_crosswalk(home, name: str, body: str):
    folder = home / crosswalk_files.HOME_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(body, encoding="utf-8")


def test_accepting_appends_keeps_comments_and_bumps_the_version(tmp_path):
    body = ("# our care-home types; reviewed yearly\nname: care_types\nversion: 1.2.9\nvocabulary: facility_category\n"
            "title: Care types\nmappings:\n    - {value: 老人院, code: elderly_care_home}  # since 2019\n")
    _home_crosswalk(tmp_path, "care_types", body)
    path, written = crosswalk_files.add_mapping(PACK, tmp_path, "care_types", "facility_category", "老年活动室",
                                           "day_care_centre", "close")
    text = path.read_text(encoding="utf-8")
    assert "# our care-home types; reviewed yearly" in text and "# since 2019" in text
    assert written.version == "1.2.10" and [e.value for e in written.entries] == ["老人院", "老年活动室"]
    assert written.entries[-1].match == "close" and "accepted" in written.entries[-1].note
    assert text.splitlines()[-1].startswith("    - {value: 老年活动室, code: day_care_centre, match: close")


def test_accepting_into_a_shipped_crosswalk_writes_a_copy_in_the_home(tmp_path):
    shipped = PACK.crosswalks["facility_category_common"]
    before = shipped.path.read_text(encoding="utf-8")
    path, written = crosswalk_files.add_mapping(PACK, tmp_path, shipped.name, "facility_category", "敬老所", "elderly_care_home")
    assert shipped.path.read_text(encoding="utf-8") == before  # twinhub's own files are never edited
    assert path == tmp_path / "crosswalks" / "facility_category_common.yaml"
    assert written.version == "1.0.1" and len(written.entries) == len(shipped.entries) + 1
    assert crosswalk_files.available(PACK, tmp_path)["facility_category_common"].path == path  # the copy wins


def test_a_new_dataset_crosswalk_is_created_and_applied_to_its_field(tmp_path):
    name = crosswalk_files.dataset_crosswalk_name("civil_affairs.elderly_care", "category")
    crosswalk_files.add_mapping(PACK, tmp_path, name, "facility_category", "老年活动室", "day_care_centre")
    resolved, _ = crosswalk_files.resolve({}, VOCABULARIES, PACK, tmp_path, dataset_id="civil_affairs.elderly_care")
    assert [c.name for c in resolved["category"].crosswalks] == [name]
    other, _ = crosswalk_files.resolve({}, VOCABULARIES, PACK, tmp_path, dataset_id="emergency.shelters")
    assert "category" not in other


@pytest.mark.parametrize(
    ("value", "code", "says"),
    [
        ("老人院", "clinic", "already maps '老人院' to 'elderly_care_home'"),  # a conflict is never overwritten
        ("x", "hospitl", "not a code of vocabulary facility_category"),
        ("x", "310108", "not a code"),
    ],
)
def test_refused_mappings_write_nothing(tmp_path, value, code, says):
    body = "name: care_types\nversion: 1.0.0\nvocabulary: facility_category\nmappings:\n  - {value: 老人院, code: elderly_care_home}\n"
    _home_crosswalk(tmp_path, "care_types", body)
    with pytest.raises(StandardsError, match=says):
        crosswalk_files.add_mapping(PACK, tmp_path, "care_types", "facility_category", value, code)
    assert (tmp_path / "crosswalks" / "care_types.yaml").read_text(encoding="utf-8") == body
    assert not list((tmp_path / "crosswalks").glob("*.tmp"))


def test_accepting_the_same_mapping_twice_changes_nothing(tmp_path):
    name = "care_types"
    crosswalk_files.add_mapping(PACK, tmp_path, name, "facility_category", "老人院", "elderly_care_home")
    first = (tmp_path / "crosswalks" / f"{name}.yaml").read_text(encoding="utf-8")
    crosswalk_files.add_mapping(PACK, tmp_path, name, "facility_category", " 老人院 ", "elderly_care_home")
    assert (tmp_path / "crosswalks" / f"{name}.yaml").read_text(encoding="utf-8") == first


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda d: d.pop("version"), "needs a 'version'"),
        (lambda d: d.update(vocabulary="colours"), "unknown vocabulary 'colours'"),
        (lambda d: d["mappings"].append({"value": "x", "code": "clinic", "match": "related"}), "match 'related'"),
        (lambda d: d["mappings"].append({"value": "x"}), "needs a 'value' and a 'code'"),
    ],
)
def test_a_broken_crosswalk_file_is_named(tmp_path, edit, says):
    data = yaml.safe_load((DEFAULT_PACK / "crosswalks" / "facility_category_common.yaml").read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(StandardsError, match=says) as error:
        load_crosswalk(path, PACK.vocabularies)
    assert "broken.yaml" in str(error.value)


def test_shipped_crosswalks_are_versioned_and_typed():
    assert PACK.crosswalks, "the pack ships shared crosswalks"
    for crosswalk in PACK.crosswalks.values():
        assert crosswalk.version and crosswalk.vocabulary in PACK.vocabularies
        assert {e.match for e in crosswalk.entries} <= {"exact", "close", "broader"}
    assert {e.match for c in PACK.crosswalks.values() for e in c.entries} == {"exact", "close", "broader"}
