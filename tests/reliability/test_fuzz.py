"""Hostile input, generated: the manifest loader, the CSV/GeoJSON readers and the SQL guard.

Property-based (hypothesis, derandomized so CI sees the same cases every run). Every case
must end in the component's own clear error or a correct result, never another exception.
``TRIED`` counts the cases; the last test checks the counts and prints them (pytest -s).
"""

from __future__ import annotations

import collections
import json
import string

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twinhub import sample
from twinhub.catalog.guard import QueryRefused, prepare_query
from twinhub.connectors import ConfigProblem, SourceError, open_source
from twinhub.hub.manifest import Manifest, ManifestError, load_manifest, parse_manifest
from twinhub.hub.registry import _read as read_registry_file

from .conftest import write_source

TRIED: collections.Counter = collections.Counter()
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SHELTERS = (sample.CITY / "emergency" / "shelters.geojson").read_bytes()
ELDERLY = sample.CITY / "civil_affairs" / "elderly_care.yaml"


# --------------------------------------------------------------------------- manifests

EXECUTING_TAGS = [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/apply:subprocess.check_output [['touch', '{marker}']]",
    "!!python/object/new:os.system ['touch {marker}']",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/object:collections.OrderedDict {{}}",
    "!!python/tuple [1, 2]",
    "!<tag:yaml.org,2002:python/object/apply:os.system> ['touch {marker}']",
]


@pytest.mark.parametrize("tag", EXECUTING_TAGS)
@pytest.mark.parametrize("where", ["value", "top level"])
def test_yaml_tags_that_would_run_code_are_refused_and_nothing_runs(tmp_path, tag, where):
    marker = tmp_path / "executed"
    value = tag.format(marker=marker)
    text = ELDERLY.read_text(encoding="utf-8")
    text = text.replace("title: Elderly care facilities", f"title: {value}") if where == "value" else value + "\n"
    path = tmp_path / "manifest.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError):
        load_manifest(path)
    with pytest.raises((yaml.YAMLError, ManifestError)):  # the registry's own (C) safe loader
        parse_manifest(read_registry_file(path), str(path))
    assert not marker.exists()
    TRIED["manifest: code-running YAML tags"] += 1


def test_registering_a_manifest_with_a_code_running_tag_is_one_clear_line(tmp_path):
    from click.testing import CliRunner

    from twinhub.cli.main import main

    marker = tmp_path / "executed"
    path = tmp_path / "evil.yaml"
    path.write_text(f"!!python/object/apply:os.system ['touch {marker}']\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["--home", str(tmp_path / "home"), "register", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output and str(path) in result.output
    assert not marker.exists()
    TRIED["manifest: code-running YAML tags"] += 1


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                         st.text(max_size=20), st.sampled_from(["csv", "facility", "public", "EPSG:4490", "x", ""]))
yaml_values = st.recursive(yaml_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(string.ascii_lowercase + "_", max_size=12), inner, max_size=5)),
    max_leaves=12)
MANIFEST_KEYS = ["department", "dataset", "title", "description", "standard", "source", "fields", "labels",
                 "classification", "schedule", "steward", "quality", "columns"]


@FUZZ
@given(st.dictionaries(st.sampled_from(MANIFEST_KEYS), yaml_values, max_size=10))
def test_generated_manifest_mappings_give_a_manifest_or_a_manifest_error(data):
    base = yaml.safe_load(ELDERLY.read_text(encoding="utf-8"))
    _manifest_or_error(lambda: parse_manifest({**base, **data}, "fuzz.yaml"))
    TRIED["manifest: generated mappings"] += 1


@FUZZ
@given(st.text(max_size=300))
def test_generated_yaml_text_gives_a_manifest_or_a_manifest_error(tmp_path, text):
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    _manifest_or_error(lambda: load_manifest(path))
    TRIED["manifest: generated YAML text"] += 1


def _manifest_or_error(action) -> None:
    try:
        result = action()
    except ManifestError as exc:
        assert str(exc).strip() and "Traceback" not in str(exc)
        return
    assert isinstance(result, Manifest)


# --------------------------------------------------------------------------- CSV and GeoJSON readers

def _read(spec: dict) -> list | None:
    """The rows a connector reads, or None if it refused with a SourceError/ConfigProblem."""
    try:
        connector = open_source(spec)
        connector.check()
        frames = [chunk.frame for chunk in connector.chunks(25)]
    except (SourceError, ConfigProblem) as exc:
        assert str(exc).strip() and "Traceback" not in str(exc)
        return None
    return [row for f in frames for row in f.to_dict("records")]


@pytest.fixture(scope="module")
def drill_csv(tmp_path_factory) -> bytes:
    return write_source(tmp_path_factory.mktemp("fuzz") / "drill.csv", 40).read_bytes()


@FUZZ
@given(cut=st.integers(min_value=0, max_value=4000))
def test_a_truncated_csv_reads_a_prefix_of_its_rows_or_is_refused(tmp_path, drill_csv, cut):
    path = tmp_path / "cut.csv"
    path.write_bytes(drill_csv[:cut])
    rows = _read({"format": "csv", "path": str(path), "x": "lon", "y": "lat", "crs": "EPSG:4490"})
    TRIED["csv: truncations"] += 1
    if rows is None:
        return
    full = [line.split(",") for line in drill_csv.decode().splitlines()[1:]]
    assert len(rows) <= len(full)
    for got, want in zip(rows, full):
        assert want[0].startswith(str(got["id"]))  # the rows read are the file's first rows, in order


@FUZZ
@given(st.binary(max_size=400), st.sampled_from(["csv", "geojson"]), st.booleans())
def test_random_bytes_are_read_or_refused_never_a_crash(tmp_path, blob, fmt, header):
    path = tmp_path / f"random.{fmt}"
    prefix = {"csv": b"id,name,type,capacity,lon,lat\n", "geojson": b'{"type": "FeatureCollection", "features": ['}
    path.write_bytes((prefix[fmt] if header else b"") + blob)
    spec = {"format": fmt, "path": str(path), "crs": "EPSG:4490"}
    if fmt == "csv":
        spec.update(x="lon", y="lat")
    _read(spec)
    TRIED[f"{fmt}: random bytes"] += 1


@FUZZ
@given(cut=st.integers(min_value=0, max_value=len(SHELTERS)), flip=st.integers(min_value=0, max_value=255))
def test_a_truncated_or_corrupted_geojson_reads_whole_or_is_refused(tmp_path, cut, flip):
    path = tmp_path / "cut.geojson"
    body = bytearray(SHELTERS[:cut])
    if body and flip:
        body[flip * 7919 % len(body)] = flip
    path.write_bytes(bytes(body))
    rows = _read({"format": "geojson", "path": str(path)})
    TRIED["geojson: truncations and flipped bytes"] += 1
    if rows is not None and not flip:
        assert len(rows) == len(json.loads(SHELTERS)["features"])  # a read is whole, never part of the file


# --------------------------------------------------------------------------- the SQL guard

ALLOWED = {"civil_affairs.elderly_care", "emergency.shelters"}
SAFE_SELECTS = [
    "SELECT name, capacity FROM civil_affairs.elderly_care WHERE capacity > {n}",
    "SELECT category, count(*) FROM emergency.shelters GROUP BY category ORDER BY 2 DESC LIMIT {n}",
    "WITH big AS (SELECT * FROM emergency.shelters WHERE capacity > {n}) SELECT name FROM big",
    "SELECT s.name FROM emergency.shelters s JOIN civil_affairs.elderly_care e ON s.district = e.district",
    "SELECT upper(name), round(capacity / {n}.0, 2) FROM lake.civil_affairs.elderly_care",
    "SELECT name FROM emergency.shelters UNION ALL SELECT name FROM civil_affairs.elderly_care",
]
HOSTILE = [  # each is refused however it is dressed up
    "DROP TABLE emergency.shelters", "DELETE FROM emergency.shelters WHERE capacity > {n}",
    "UPDATE civil_affairs.elderly_care SET capacity = {n}", "INSERT INTO emergency.shelters SELECT * FROM emergency.shelters",
    "CREATE TABLE x AS SELECT * FROM emergency.shelters", "ALTER TABLE emergency.shelters ADD COLUMN x INT",
    "ATTACH '/tmp/x.db' AS x", "COPY emergency.shelters TO '/tmp/out.csv'", "INSTALL httpfs", "LOAD httpfs",
    "PRAGMA database_list", "SET enable_external_access = true", "CALL ducklake_expire_snapshots('lake')",
    "SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM '/etc/passwd'", "SELECT * FROM glob('/*')",
    "SELECT * FROM read_parquet('x.parquet')", "SELECT getenv('PGPASSWORD')", "SELECT * FROM duckdb_settings()",
    "SELECT * FROM information_schema.tables", "SELECT * FROM catalog.runs", "SELECT * FROM water.pumping_stations",
    "SELECT * FROM __ducklake_metadata_lake.ducklake_table", "SELECT * FROM emergency.shelters AT (VERSION => {n})",
    "SELECT name INTO newtable FROM emergency.shelters", "SELECT * FROM st_read('/tmp/x.shp')",
    "SELECT {n}; DROP TABLE emergency.shelters", "SELECT * FROM sqlite_scan('x.db', 't')",
    "WITH x AS (DELETE FROM emergency.shelters RETURNING *) SELECT * FROM x",
    "SELECT * FROM emergency.shelters WHERE name IN (SELECT name FROM catalog.quarantine)",
    "EXPORT DATABASE '/tmp/dump'", "DETACH lake", "USE lake", "CHECKPOINT", "VACUUM",
]
DRESSING = [lambda s: s, lambda s: s.lower(), lambda s: "  " + s + " ;", lambda s: "/* hi */ " + s,
            lambda s: s.replace(" ", "\n  "), lambda s: s + " -- comment"]


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(st.sampled_from(SAFE_SELECTS + HOSTILE), st.integers(min_value=0, max_value=10_000), st.sampled_from(DRESSING),
       st.sampled_from(["duckdb", "postgres"]))
def test_the_guard_accepts_exactly_the_plain_selects_over_allowed_tables(template, n, dress, dialect):
    sql = dress(template.format(n=n))
    safe = template in SAFE_SELECTS
    try:
        prepared = prepare_query(sql, dialect=dialect, tables=ALLOWED)
    except QueryRefused as exc:
        assert not safe, f"refused a plain SELECT: {sql!r}: {exc}"
        assert str(exc).strip()
        TRIED["sql: refused"] += 1
        return
    assert safe, f"accepted: {sql!r} -> {prepared.sql!r}"
    assert set(prepared.tables) <= ALLOWED
    TRIED["sql: accepted plain SELECTs"] += 1


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(st.text(alphabet=st.sampled_from(list(string.printable) + ["é", "中", "\u212a", "\x00"]), max_size=120))
def test_generated_text_is_refused_or_a_select_over_allowed_tables(text):
    try:
        prepared = prepare_query(text, tables=ALLOWED)
    except QueryRefused:
        TRIED["sql: random text refused"] += 1
        return
    assert set(prepared.tables) <= ALLOWED and prepared.sql.lstrip("( ").upper().startswith(("SELECT", "WITH", "VALUES", "FROM"))
    TRIED["sql: random text accepted"] += 1


def test_zz_every_fuzzer_ran(capsys):
    """The counts of hostile inputs tried (printed for the report)."""
    with capsys.disabled():
        print("\nhostile inputs tried:", dict(sorted(TRIED.items())), "total", sum(TRIED.values()))
    assert TRIED["sql: refused"] > 300 and TRIED["csv: random bytes"] > 10 and TRIED["manifest: generated YAML text"] > 10
