"""Registration: a manifest is checked key by key against its standard and its real source."""

from __future__ import annotations

import pathlib
import shutil

import pytest
import yaml

from twinhub import sample
from twinhub.hub.manifest import ManifestError
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup, registered

CARE = sample.CITY / "civil_affairs" / "elderly_care.yaml"


def _write(tmp_path: pathlib.Path, changes: dict, drop: tuple[str, ...] = ()) -> pathlib.Path:
    """A copy of the sample elderly-care manifest (and its CSV) with ``changes`` applied."""
    data = yaml.safe_load(CARE.read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        node, *path = dotted.split(".")
        target = data
        keys = [node, *path]
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    for key in drop:
        data.pop(key)
    shutil.copy(sample.CITY / "civil_affairs" / "elderly_care.csv", tmp_path / "elderly_care.csv")
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "changes, key, says",
    [
        ({"sourse": {}}, "sourse", "did you mean 'source'"),
        ({"source.path": "missing.csv"}, "source", "file not found"),
        ({"source.format": "dbase"}, "source.format", "unknown format"),
        ({"source.delimeter": ";"}, "source.delimeter", "not a key of csv sources"),
        ({"source.encoding": "klingon"}, "source", "unknown encoding"),
        ({"standard": "facilty"}, "standard", "did you mean 'facility'"),
        ({"source.crs": "EPSG:99999"}, "source.crs", "unknown CRS"),
        ({"source.x": "lng"}, "source.x", "not in the source"),
        ({"fields.name": "机构名"}, "fields.name", "did you mean '机构名称'"),
        ({"fields.colour": "机构名称"}, "fields.colour", "not a field of standard facility"),
        ({"labels.category": {"养老院": "old_peoples_home"}}, "labels.category.养老院", "not a code of vocabulary"),
        ({"labels.name": {"x": "y"}}, "labels.name", "not a field with a vocabulary"),
        ({"schedule": "every day"}, "schedule", "not a cron expression"),
        ({"department": "Civil Affairs"}, "department", "lower-case"),
        ({"department": "catalog"}, "department", "reserved"),
        ({"classification": "secret"}, "classification", "public"),
    ],
)
def test_a_bad_manifest_names_the_key_and_registers_nothing(hub, tmp_path, changes, key, says):
    path = _write(tmp_path, changes)
    with pytest.raises(ManifestError) as error:
        register(hub, path)
    assert key in error.value.problems, error.value.problems
    assert says in error.value.problems[key]
    assert str(path) in str(error.value)
    assert registered(hub) == []


def test_a_required_field_must_be_mapped(hub, tmp_path):
    data = yaml.safe_load(CARE.read_text(encoding="utf-8"))
    del data["fields"]["name"]
    shutil.copy(sample.CITY / "civil_affairs" / "elderly_care.csv", tmp_path / "elderly_care.csv")
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ManifestError) as error:
        register(hub, path)
    assert "required by standard facility" in error.value.problems["fields.name"]


def test_a_source_without_a_crs_must_declare_one(hub, tmp_path):
    path = _write(tmp_path, {}, drop=())
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["source"]["crs"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ManifestError) as error:
        register(hub, path)
    assert "does not declare its CRS" in error.value.problems["source.crs"]


def test_yaml_tags_are_never_executed(hub, tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("department: !!python/object/apply:os.system ['touch pwned']\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="not valid YAML"):
        register(hub, path)
    assert not (tmp_path / "pwned").exists()


def test_registering_stores_an_absolute_source_path_and_replaces_on_reregister(hub):
    entry, replaced = register(hub, CARE)
    assert not replaced
    assert pathlib.Path(entry.manifest.source["path"]).is_absolute()
    assert lookup(hub, "civil_affairs.elderly_care").manifest.title == "Elderly care facilities"
    _, replaced = register(hub, CARE)
    assert replaced
    assert [r.id for r in registered(hub)] == ["civil_affairs.elderly_care"]


def test_lookup_of_an_unknown_dataset_lists_the_registered_ones(hub):
    register(hub, CARE)
    with pytest.raises(ManifestError, match="civil_affairs.elderly_care"):
        lookup(hub, "water.nothing")
