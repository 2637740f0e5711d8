"""What a change to a standard does to the datasets published with the old one."""

from __future__ import annotations

import copy
import dataclasses
import pathlib

import frictionless
import pytest

from twinhub.standards import compat
from twinhub.standards.pack import Concept, Standard, load_pack

PACK = load_pack()
FACILITY = PACK.standard("facility")
OLD = compat.snapshot(FACILITY, PACK)


def _changed(edit, version: str = "2.0.0") -> Standard:
    descriptor = copy.deepcopy(FACILITY.schema.to_descriptor())
    edit(descriptor)
    return Standard("facility", version, "", "", frictionless.Schema.from_descriptor(descriptor), pathlib.Path("x"))


def _field(d: dict, name: str) -> dict:
    return next(f for f in d["fields"] if f["name"] == name)


def _constraints(d: dict, name: str) -> dict:
    return _field(d, name).setdefault("constraints", {})


@pytest.mark.parametrize(
    ("edit", "kind", "breaking"),
    [
        (lambda d: d["fields"].remove(_field(d, "address")), "field_removed", True),
        (lambda d: _constraints(d, "capacity").update(required=True), "required_added", True),
        (lambda d: _constraints(d, "capacity").update(maximum=500), "range_narrowed", True),
        (lambda d: _constraints(d, "capacity").update(maximum=1_000_000), "range_widened", False),
        (lambda d: _constraints(d, "capacity").update(minimum=1), "range_narrowed", True),
        (lambda d: _constraints(d, "name").update(maxLength=20), "range_narrowed", True),
        (lambda d: _constraints(d, "district").update(enum=["徐汇区"]), "enum_added", True),
        (lambda d: _constraints(d, "facility_id").update(pattern="^MZ-[0-9]{4}$"), "pattern_changed", True),
        (lambda d: _constraints(d, "address").update(unique=True), "unique_added", True),
        (lambda d: _field(d, "capacity").update(type="number"), "type_widened", False),
        (lambda d: _field(d, "district").update(type="integer"), "type_narrowed", True),
        (lambda d: _field(d, "geometry").update(geometryType="Polygon"), "geometry_type_changed", True),
        (lambda d: _field(d, "district").update(vocabulary="admin_division"), "vocabulary_changed", True),
        (lambda d: d["fields"].append({"name": "phone", "type": "string"}), "field_added", False),
        (lambda d: d["fields"].append({"name": "opened", "type": "date", "constraints": {"required": True}}),
         "field_added", True),
        (lambda d: d.update(primaryKey=["name"]), "key_changed", True),
        (lambda d: _constraints(d, "name").pop("maxLength"), "range_widened", False),
    ],
)
def test_each_kind_of_change(edit, kind, breaking):
    changes = compat.compare(OLD, _changed(edit), PACK)
    assert [(c.kind, c.breaking) for c in changes] == [(kind, breaking)], changes


def test_a_renamed_field_is_named_as_such():
    def rename(d):
        _field(d, "address")["name"] = "street_address"

    changes = compat.compare(OLD, _changed(rename), PACK)
    assert changes[0].kind == "field_removed" and "renamed to 'street_address'?" in changes[0].message


@pytest.mark.parametrize(
    ("concepts", "kind", "breaking"),
    [
        (lambda cs: [c for c in cs if c.code != "clinic"], "code_removed", True),
        (lambda cs: [dataclasses.replace(c, replaced_by="hospital") if c.code == "clinic" else c for c in cs],
         "code_replaced", False),
        (lambda cs: [*cs, Concept("library", {"en": "Library"})], "code_added", False),
    ],
    ids=["removed", "replaced", "added"],
)
def test_vocabulary_codes(concepts, kind, breaking):
    vocabulary = PACK.vocabulary("facility_category")
    changed = dataclasses.replace(vocabulary, concepts=tuple(concepts(list(vocabulary.concepts))))
    pack = dataclasses.replace(PACK, vocabularies={**PACK.vocabularies, "facility_category": changed})
    changes = compat.compare(OLD, FACILITY, pack)
    assert [(c.kind, c.breaking) for c in changes] == [(kind, breaking)]


def test_an_unchanged_standard_has_no_changes_and_no_version_problem():
    assert compat.compare(OLD, FACILITY, PACK) == []
    assert compat.versioning_problem(OLD, FACILITY, []) is None


@pytest.mark.parametrize(
    ("version", "says"),
    [
        ("1.0.0", "kept version 1.0.0"),  # changed, same version
        ("1.1.0", "give it a new major version (e.g. 2.0.0)"),  # breaking, same major
        ("2.0.0", None),
    ],
)
def test_the_version_must_tell_the_truth(version, says):
    new = _changed(lambda d: _constraints(d, "capacity").update(maximum=500), version)
    problem = compat.versioning_problem(OLD, new, compat.compare(OLD, new, PACK))
    assert (says in problem) if says else problem is None


def test_snapshots_are_kept_once_per_content(tmp_path):
    key = compat.remember(tmp_path, FACILITY, PACK)
    assert key.startswith("facility@1.0.0-") and compat.remember(tmp_path, FACILITY, PACK) == key
    assert len(list(tmp_path.iterdir())) == 1
    assert compat.recall(tmp_path, key) == OLD
    assert compat.recall(tmp_path, "facility@0.0.0-missing") is None
