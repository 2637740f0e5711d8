"""twinhub.yaml as a typed model: every key known, a misspelt one refused with the closest valid key."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
import yaml

from twinhub.hub.config import ConfigError, HubConfig, parse_config
from twinhub.hub.home import DEFAULT_CONFIG, Hub, HubConfigError, HubError


def _home(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    home = tmp_path / "home"
    home.mkdir(parents=True)
    (home / "twinhub.yaml").write_text(text, encoding="utf-8")
    return home


@pytest.mark.parametrize("data, message", [
    ({"standard": "/srv/pack"}, "unknown key 'standard' (did you mean 'standards'?)"),
    ({"target_cr": "EPSG:4490"}, "unknown key 'target_cr' (did you mean 'target_crs'?)"),
    ({"chunk_row": 10}, "unknown key 'chunk_row' (did you mean 'chunk_rows'?)"),
    ({"http": {"allow_host": ["gis.city.internal"]}}, "unknown key 'http.allow_host' (did you mean 'http.allow_hosts'?)"),
    ({"catalog": {"metdata": "postgres:dbname=x"}}, "unknown key 'catalog.metdata' (did you mean 'catalog.metadata'?)"),
    ({"catalog": {"schema_": "twinhub"}}, "unknown key 'catalog.schema_' (did you mean 'catalog.schema'?)"),
    ({"secrets": {"allow_prefix": {"water": ["WATER_"]}}},
     "unknown key 'secrets.allow_prefix' (did you mean 'secrets.allow_prefixes'?)"),
    ({"landings": {"water": ["/srv/landing/water"]}}, "unknown key 'landings' (did you mean 'landing'?)"),
    ({"xyz": 1}, "unknown key 'xyz' (valid keys: standards, target_crs, chunk_rows, catalog, http, landing, secrets"),
    ({"http": {"allow_private": "yes"}}, "http.allow_private: Input should be a valid boolean"),
    ({"chunk_rows": 0}, "chunk_rows: Input should be greater than 0"),
    ({"catalog": "postgres:dbname=x"}, "catalog: expected a mapping with keys metadata, schema, data, previews"),
    ({"landing": {"water": "/srv/landing"}}, "landing.water: Input should be a valid list"),
    (["standards"], "expected a mapping"),
    ({"query": {"memroy": "1GB"}}, "unknown key 'query.memroy' (did you mean 'query.memory'?)"),
    ({"query": {"memory": "lots"}}, "query.memory: String should match pattern"),
    ({"query": {"threads": 0}}, "query.threads: Input should be greater than or equal to 1"),
])
def test_a_bad_key_is_named_with_the_fix(data, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert message in caught.value.problems[0]


def test_every_problem_is_named_at_once():
    with pytest.raises(ConfigError) as caught:
        parse_config({"standard": "x", "http": {"allow_host": []}})
    assert {p.split(" (")[0] for p in caught.value.problems} == {"unknown key 'standard'", "unknown key 'http.allow_host'"}


def test_the_default_file_is_the_default_model():
    """The file `twinhub init` writes names every section and means the model's defaults."""
    data = yaml.safe_load(DEFAULT_CONFIG)
    assert set(data) == set(HubConfig.model_fields)
    assert parse_config(data) == HubConfig()
    assert HubConfig().chunk_rows == 50_000


def test_every_key_the_docs_show_is_accepted():
    config = parse_config({
        "standards": "pack", "target_crs": "EPSG:4490", "chunk_rows": 1000,
        "catalog": {"metadata": "postgres:dbname=twinhub host=db.example user=twinhub", "schema": "twinhub",
                    "data": "/mnt/shared/twinhub/data", "previews": "/mnt/shared/twinhub/previews"},
        "http": {"allow_hosts": ["gis.city.internal", "10.20.0.0/16"], "allow_private": True},
        "landing": {"water": ["/srv/landing/water", "landing/water"]},
        "secrets": {"allow_prefixes": {"water": ["WATER_", "SCADA_"]}},
    })
    assert config.catalog.as_dict()["schema"] == "twinhub" and config.http.allow_private is True
    assert config.landing_roots("water", pathlib.Path("/srv/twinhub")) == (
        pathlib.Path("/srv/landing/water"), pathlib.Path("/srv/twinhub/landing/water"))
    assert config.landing_roots("health", pathlib.Path("/srv/twinhub")) == ()
    assert config.secrets.prefixes("water") == ("WATER_", "SCADA_")
    assert config.secrets.prefixes("civil_affairs") == ("CIVIL_AFFAIRS_",)


def test_blank_sections_mean_their_defaults():
    assert parse_config({"catalog": None, "http": None, "chunk_rows": None, "landing": None, "secrets": None}) == HubConfig()
    assert parse_config(None) == HubConfig()


def test_the_hub_reads_its_settings_from_the_model(tmp_path):
    home = _home(tmp_path, "chunk_rows: 7\nhttp: {allow_hosts: [127.0.0.1]}\ncatalog: {data: shared/data}\n")
    hub = Hub.open(home)
    assert hub.chunk_rows == 7
    assert hub.network_policy.allow_hosts == ("127.0.0.1",)
    assert hub.lake.data == home / "shared" / "data"


def test_opening_a_hub_refuses_a_misspelt_key_naming_the_file(tmp_path):
    home = _home(tmp_path, "standards:\nchunk_row: 10\n")
    with pytest.raises(HubConfigError, match=r"twinhub.yaml: unknown key 'chunk_row' \(did you mean 'chunk_rows'\?\)"):
        Hub.open(home)
    assert issubclass(HubConfigError, HubError)


def test_the_cli_exits_2_on_a_misspelt_key(tmp_path):
    home = _home(tmp_path, "standard: pack\n")
    env = {**os.environ, "TWINHUB_HOME": str(home)}
    result = subprocess.run([sys.executable, "-m", "twinhub", "datasets"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "twinhub.yaml: unknown key 'standard' (did you mean 'standards'?)" in result.stderr + result.stdout


def test_the_query_caps_reach_the_sandbox(tmp_path):
    """query: {memory, threads, temp} in twinhub.yaml are the limits every query's sandbox gets."""
    from twinhub.catalog.sandbox import Limits, open_sandbox

    hub = Hub.open(_home(tmp_path, "query: {memory: 300MB, threads: 1, temp: 1GB}\n"))
    limits = Limits.from_config(hub.config.query.model_dump())
    con = open_sandbox(limits, str(tmp_path))
    try:
        settings = dict(con.execute("SELECT name, value FROM duckdb_settings() WHERE name IN "
                                    "('memory_limit', 'threads', 'max_temp_directory_size')").fetchall())
    finally:
        con.close()
    assert settings["threads"] == "1"
    assert settings["memory_limit"].startswith(("286", "300"))  # DuckDB shows MiB
    assert Limits.from_config(Hub.open(_home(tmp_path / "b", "")).config.query.model_dump()) == Limits()
