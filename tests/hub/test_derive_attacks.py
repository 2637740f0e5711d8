"""Manifest expressions are SQL a department writes: each attack is performed for real and refused at
registration, and again at run time when the registered manifest was edited afterwards.

The oracle of each refusal: the manifest key it names, and that nothing was read, registered or
published (no file written by COPY, no /etc/passwd line in the catalog, the served version unchanged).
"""

from __future__ import annotations

import pathlib

import duckdb
import pytest
import yaml

from twinhub.hub.derive import Derivation, DerivationRefused
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.manifest import ManifestError, parse_manifest
from twinhub.hub.registration import register
from twinhub.hub.registry import entry_path, lookup

from .test_derive import MANIFEST, _csv, _fetch, _write

DATASET = "health.poi"
COPY_TARGET = "/tmp/twinhub-derive-attack-copy.csv"
LONG = "名称 || " + " || ".join(["'x'"] * 20_000)  # ~100 kB

# (where in the manifest, the attack, the key the refusal names, what it says)
ATTACKS = [
    ("capacity", "read_csv('/etc/passwd')", "fields.capacity.expression", "reading files is not allowed"),
    ("capacity", "getenv('HOME')", "fields.capacity.expression", "function getenv is not allowed"),
    ("capacity", "(SELECT count(*) FROM catalog.runs)", "fields.capacity.expression", "subqueries are not allowed"),
    ("capacity", "current_setting('enable_external_access')", "fields.capacity.expression",
     "function current_setting is not allowed"),
    ("filter", f"COPY (SELECT 1) TO '{COPY_TARGET}'", "filter[0].keep", "COPY"),
    ("filter", "1 = 1; COPY (SELECT 1) TO '/tmp/x.csv'", "filter[0].keep", "only one statement"),
    ("capacity", "TRY_CAST(面积 AS DOUBLE)", "fields.capacity.expression", "column '面积' is not in the source"),
    ("capacity", LONG, "fields.capacity.expression", "too long"),
    ("capacity", "count(*) OVER ()", "fields.capacity.expression", "window functions are not allowed"),
    ("key", ["名称", "_twinhub_filter"], "fields.facility_id.key", "reserves"),
]


def _attacked(where: str, attack) -> dict:
    manifest = yaml.safe_load(yaml.safe_dump(MANIFEST, allow_unicode=True))
    if where == "capacity":
        manifest["fields"]["capacity"] = {"expression": attack}
    elif where == "filter":
        manifest["filter"] = [{"keep": attack, "reason": "attack"}]
    else:
        manifest["fields"]["facility_id"] = {"key": attack}
    return manifest


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("attacks") / "health"
    folder.mkdir()
    _csv(folder)
    return folder


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, folder: pathlib.Path) -> Hub:
    """The POI dataset registered and published once; the attacks then edit its registry entry."""
    hub = Hub.open(tmp_path_factory.mktemp("attacks-home") / "home")
    register(hub, _write(folder, MANIFEST))
    ingest(hub, lookup(hub, DATASET), run_id="clean")
    return hub


@pytest.mark.parametrize(("where", "attack", "key", "says"), ATTACKS, ids=[a[2] + ":" + str(a[1])[:30] for a in ATTACKS])
def test_refused_at_registration(tmp_path, folder, where, attack, key, says):
    hub = Hub.open(tmp_path / "home")
    with pytest.raises(ManifestError) as refused:
        register(hub, _write(folder, _attacked(where, attack), name="attack.yaml"))
    assert says in refused.value.problems.get(key, ""), refused.value.problems
    assert not entry_path(hub, DATASET).exists()  # nothing registered
    assert not pathlib.Path(COPY_TARGET).exists()


@pytest.mark.parametrize(("where", "attack", "key", "says"), ATTACKS, ids=[a[2] + ":" + str(a[1])[:30] for a in ATTACKS])
def test_refused_at_run_time_after_the_registry_entry_was_edited(hub, where, attack, key, says):
    path = entry_path(hub, DATASET)
    clean = path.read_text(encoding="utf-8")
    data = yaml.safe_load(clean)
    attacked = _attacked(where, attack)
    data["fields"], data["filter"] = attacked["fields"], attacked["filter"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    try:
        run_id = f"attack-{abs(hash((where, str(attack)))) % 10**8}"
        with pytest.raises(DerivationRefused) as refused:
            ingest(hub, lookup(hub, DATASET), run_id=run_id)
        assert says in refused.value.problems.get(key, ""), refused.value.problems
    finally:
        path.write_text(clean, encoding="utf-8")
    (status, error), = _fetch(hub, "SELECT status, error FROM catalog.runs WHERE run_id = ?", [run_id])
    assert status == "failed" and key in error
    served = _fetch(hub, "SELECT run_id FROM catalog.quality WHERE dataset = ?", [DATASET])
    assert served == [("clean",)]  # the version served before the attack is still served
    assert not _fetch(hub, "SELECT count(*) FROM catalog.quarantine WHERE record LIKE '%root:%'")[0][0]
    assert not pathlib.Path(COPY_TARGET).exists()


def test_a_filter_must_be_a_condition_and_a_type_error_names_its_key(tmp_path, folder):
    hub = Hub.open(tmp_path / "home")
    manifest = _attacked("filter", "名称")
    with pytest.raises(ManifestError) as refused:
        register(hub, _write(folder, manifest, name="cond.yaml"))
    assert "gives VARCHAR, not true/false" in refused.value.problems["filter[0].keep"]
    manifest = _attacked("capacity", "床位 * 2")  # text times a number: DuckDB refuses, named by its key
    with pytest.raises(ManifestError) as refused:
        register(hub, _write(folder, manifest, name="types.yaml"))
    assert "DuckDB cannot evaluate it" in refused.value.problems["fields.capacity.expression"]


def test_a_plain_column_mapping_is_checked_against_the_source(tmp_path, folder):
    manifest = {**MANIFEST, "fields": {**MANIFEST["fields"], "name": {"column": "名字"}}}
    with pytest.raises(ManifestError) as refused:
        register(Hub.open(tmp_path / "home"), _write(folder, manifest, name="plain.yaml"))
    assert refused.value.problems == {"fields.name.column": "column '名字' is not in the source (did you mean '名称'?)"}


def test_a_source_column_with_a_reserved_name_is_refused(tmp_path):
    folder = tmp_path / "health"
    folder.mkdir()
    (folder / "poi.csv").write_text("名称,地址,类型,_twinhub_category,经度,纬度\nA,B,医疗保健服务;诊所,x,121.5,31.2\n",
                                    encoding="utf-8")
    manifest = {**MANIFEST, "fields": {**MANIFEST["fields"]}}
    manifest["fields"].pop("capacity")
    with pytest.raises(ManifestError) as refused:
        register(Hub.open(tmp_path / "home"), _write(folder, manifest))
    assert "'_twinhub_category' has a name the hub reserves" in refused.value.problems["source"]


def test_the_evaluating_duckdb_reads_no_files_and_its_settings_are_locked():
    """The second line: were the allow-list passed, the chunk's DuckDB still reads nothing else."""
    manifest = parse_manifest({**MANIFEST}, "poi.yaml")
    derivation = Derivation(manifest, ["名称", "地址", "类型", "床位", "经度", "纬度"])
    con = derivation._connection()
    try:
        with pytest.raises(duckdb.PermissionException):
            con.execute("SELECT * FROM read_csv('/etc/passwd')")
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("SET enable_external_access = true")
    finally:
        derivation.close()


@pytest.mark.parametrize(("fields", "key", "says"), [
    ({"category": {"column": "类型", "level": 2}}, "fields.category.level", "separator"),
    ({"category": {"column": "类型", "separator": ";", "level": 0}}, "fields.category.level", "count from 1"),
    ({"category": {"column": "类型", "separator": ";", "levle": 2}}, "fields.category.levle", "did you mean 'level'"),
    ({"district": {"constant": "浦东新区", "column": "区"}}, "fields.district", "exactly one of"),
    ({"facility_id": {"key": []}}, "fields.facility_id.key", "list the source columns"),
    ({"facility_id": {"key": ["名称", "名称"]}}, "fields.facility_id.key", "listed twice"),
    ({"district": ["a", "b"]}, "fields.district", "map the field to a source column"),
    ({"district": {"constant": [1, 2]}}, "fields.district.constant", "give one value"),
])
def test_manifest_errors_name_the_key(fields, key, says):
    with pytest.raises(ManifestError) as refused:
        parse_manifest({**MANIFEST, "fields": {**MANIFEST["fields"], **fields}}, "poi.yaml")
    assert says in refused.value.problems.get(key, ""), refused.value.problems


def test_a_filter_without_a_reason_names_its_key():
    with pytest.raises(ManifestError) as refused:
        parse_manifest({**MANIFEST, "filter": [{"keep": "true"}]}, "poi.yaml")
    assert refused.value.problems == {"filter[0].reason": "required key is missing"}


def test_a_derived_field_refused_at_run_time_is_a_user_error():
    refused = DerivationRefused("health.poi", {"fields.capacity.expression": "no"})
    assert "fields.capacity.expression: no" in str(refused)
    with pytest.raises(DerivationRefused):
        Derivation(parse_manifest({**MANIFEST}, "poi.yaml"), ["名称"])


def test_a_date_constant_is_kept_as_its_text():
    manifest = parse_manifest(yaml.safe_load("department: health\ndataset: poi\ntitle: t\nstandard: facility\n"
                                             "source: {format: csv, path: poi.csv}\n"
                                             "fields: {district: {constant: 2024-01-01}}\n"), "poi.yaml")
    assert manifest.fields["district"].constant == "2024-01-01"


@pytest.mark.slow
def test_through_the_cli_register_refuses_and_run_fails_naming_the_key(tmp_path):
    from click.testing import CliRunner

    from twinhub.cli.main import main

    folder = tmp_path / "health"
    folder.mkdir()
    _csv(folder)
    home = ["--home", str(tmp_path / "home")]
    refused = CliRunner().invoke(main, ["register", str(_write(folder, _attacked("capacity", "read_csv('/etc/passwd')"))),
                                        *home])
    assert refused.exit_code == 2
    assert "fields.capacity.expression: function read_csv is not allowed" in refused.output
    assert CliRunner().invoke(main, ["register", str(_write(folder, MANIFEST)), *home]).exit_code == 0
    path = entry_path(Hub.open(tmp_path / "home"), DATASET)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["filter"] = [{"keep": "getenv('HOME') = '/root'", "reason": "attack"}]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    failed = CliRunner().invoke(main, ["run", DATASET, *home])
    assert failed.exit_code == 1 and "filter[0].keep: function getenv is not allowed" in failed.output
