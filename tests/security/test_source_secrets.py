"""Finding 4 (secrets): a manifest names only the variables its steward allows, and nothing is sent
to a source still awaiting review.

``password_env``, ``headers_env`` and ``params_env`` could name any variable of the hub (the
pseudonym key, PGPASSWORD) and send it to any host at ``register``, before any review; and a
PostgreSQL source without ``password_env`` sent the hub's own PGPASSWORD (libpq reads it).
"""

from __future__ import annotations

import pytest

from twinhub.connectors import ConfigProblem, NetworkPolicy, SourceError, SourcePolicy, open_source
from twinhub.hub import review
from twinhub.hub.manifest import ManifestError
from twinhub.hub.registration import register
from twinhub.hub.registry import registered

from .source_support import SHELTERS, FakePostgres, LoopbackServer, Reply, hub_with, write_manifest

SECRET = "Zq-9!distinctive-secret-value"
LOOPBACK = {"http": {"allow_hosts": ["127.0.0.1"]}}


def http_source(url: str, kind: str, variable: str) -> dict:
    if kind == "params_env":
        return {"format": "arcgis", "url": f"{url}/arcgis/FeatureServer/0", "params_env": {"token": variable}}
    return {"format": "http", "url": f"{url}/shelters.geojson", "data_format": "geojson",
            "headers_env": {"Authorization": variable}}


# (kind, variable): the hub's own variables, whatever the department's prefixes
HUB_OWN = [
    ("headers_env", "TWINHUB_PSEUDONYM_KEY"), ("headers_env", "PGPASSWORD"), ("params_env", "AWS_SECRET_ACCESS_KEY"),
    ("params_env", "DAGSTER_PG_PASSWORD"), ("headers_env", "MYSQL_PWD"), ("params_env", "PGSERVICE"),
]


@pytest.mark.parametrize(("kind", "variable"), HUB_OWN, ids=[v for _, v in HUB_OWN])
def test_a_hub_variable_is_refused_at_register_and_never_sent(tmp_path, monkeypatch, kind, variable):
    monkeypatch.setenv(variable, SECRET)
    hub = hub_with(tmp_path / "home", secrets={"allow_prefixes": {"emergency": ["PG", "TWINHUB_", "AWS_", "DAGSTER_", "MYSQL_"]}},
                   **LOOPBACK)
    with LoopbackServer({"/shelters.geojson": Reply(body=SHELTERS.read_bytes())}) as server:
        with pytest.raises(ManifestError) as info:
            register(hub, write_manifest(tmp_path / "m", "leak", http_source(server.url, kind, variable)))
        assert server.requests == []
    key = f"source.{kind}.{'token' if kind == 'params_env' else 'Authorization'}"
    assert "one of the hub's own variables" in info.value.problems.get(key, ""), info.value.problems
    assert SECRET not in str(info.value)


def test_a_database_password_may_not_name_a_hub_variable():
    with pytest.raises(ConfigProblem) as info:
        open_source({"format": "postgres", "host": "db.example.org", "database": "d", "user": "u", "table": "t",
                     "password_env": "PGPASSWORD"})
    assert "one of the hub's own variables" in info.value.problems["source.password_env"]


# (configured prefixes of emergency, variable, allowed)
PREFIXES = [
    (None, "EMERGENCY_API_TOKEN", True),  # default: the department's name in capitals
    (None, "WATER_API_TOKEN", False),  # another department's
    (["SHELTER_API_"], "SHELTER_API_TOKEN", True),
    (["SHELTER_API_"], "EMERGENCY_API_TOKEN", False),  # the steward's list replaces the default
]


@pytest.mark.parametrize(("prefixes", "variable", "allowed"), PREFIXES)
def test_a_department_names_only_its_stewards_prefixes(tmp_path, monkeypatch, prefixes, variable, allowed):
    monkeypatch.setenv(variable, "Bearer " + SECRET)
    config = {"secrets": {"allow_prefixes": {"emergency": prefixes}}} if prefixes else {}
    hub = hub_with(tmp_path / "home", **config, **LOOPBACK)
    with LoopbackServer({"/shelters.geojson": Reply(body=SHELTERS.read_bytes())}) as server:
        manifest = write_manifest(tmp_path / "m", "api", http_source(server.url, "headers_env", variable))
        if allowed:
            register(hub, manifest)
            assert [h.get("Authorization") for _, h in server.requests] == ["Bearer " + SECRET]
        else:
            with pytest.raises(ManifestError) as info:
                register(hub, manifest)
            assert "secrets.allow_prefixes.emergency" in info.value.problems["source.headers_env.Authorization"]
            assert server.requests == []


def test_a_registration_awaiting_review_is_not_contacted_with_its_credentials(tmp_path, monkeypatch):
    """Restricted: checked without a connection, left for the steward; the same source at internal is read."""
    monkeypatch.setenv("EMERGENCY_API_TOKEN", "Bearer " + SECRET)
    hub = hub_with(tmp_path / "home", **LOOPBACK)
    with LoopbackServer({"/shelters.geojson": Reply(body=SHELTERS.read_bytes())}) as server:
        source = http_source(server.url, "headers_env", "EMERGENCY_API_TOKEN")
        entry, _ = register(hub, write_manifest(tmp_path / "m", "residents", source, classification="restricted"))
        assert entry.review and [p.id for p in review.pending(hub)] == ["emergency.residents"]
        assert server.requests == []
        register(hub, write_manifest(tmp_path / "m", "shelters", source, classification="internal"))
        assert len(server.requests) == 1 and [r.id for r in registered(hub)] == ["emergency.shelters"]


def test_a_review_registration_still_refuses_what_needs_no_connection(tmp_path, monkeypatch):
    """Deferring the connection defers nothing else: a loopback host not allowed is refused at once."""
    monkeypatch.setenv("EMERGENCY_DB_PASSWORD", SECRET)
    hub = hub_with(tmp_path / "home")
    source = {"format": "postgres", "host": "127.0.0.1", "database": "test", "user": "reader", "table": "t",
              "geometry": "geom", "password_env": "EMERGENCY_DB_PASSWORD"}
    with pytest.raises(ManifestError) as info:
        register(hub, write_manifest(tmp_path / "m", "residents", source, classification="restricted"))
    assert "127.0.0.1 is a loopback address" in info.value.problems["source"]


@pytest.mark.parametrize("password_env", [None, "EMERGENCY_DB_PASSWORD"])
def test_a_postgres_source_sends_only_its_own_password_never_the_hubs(tmp_path, monkeypatch, password_env):
    """libpq fills a missing password from PGPASSWORD or ~/.pgpass (PGPASSFILE): the server asks, and gets
    nothing without password_env, exactly the named variable's value with it."""
    passfile = tmp_path / "pgpass"
    passfile.write_text("*:*:*:*:from-the-hubs-pgpass\n", encoding="utf-8")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSWORD", "the-hubs-own-PGPASSWORD")
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    monkeypatch.setenv("EMERGENCY_DB_PASSWORD", SECRET)
    rules = SourcePolicy(network=NetworkPolicy(allow_hosts=("127.0.0.1",)), secret_prefixes=("EMERGENCY_",))
    with FakePostgres() as server:
        source = {"format": "postgres", "host": "127.0.0.1", "port": server.port, "database": "test", "user": "reader",
                  "table": "t", "geometry": "geom", "connect_timeout": 5} | ({"password_env": password_env} if password_env else {})
        with pytest.raises(SourceError):
            open_source(source, policy=rules).check()
        assert len(server.startups) >= 1  # the client did reach the server and was asked
        assert server.passwords == ([SECRET] if password_env else [])
