"""Consumers and grants: add, list, renew, revoke; expiry on a fixed clock; refusals of unknown datasets and
consumers, past dates, renewals of nothing; every change and refusal audited; `twinhub query --as` end to end."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
import yaml
from click.testing import CliRunner

from twinhub import sample
from twinhub.catalog.audit import current_actor
from twinhub.catalog.enforce import AsConsumer
from twinhub.catalog.extensions import connect
from twinhub.catalog.grants import AccessError, Consumer, Grant, delete_grant, list_grants, parse_consumer, save_grant
from twinhub.catalog.query import run_query
from twinhub.cli.main import main
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup

from .access_hub import CONTACTS, build_hub

ACTOR = current_actor()  # the OS user: TWINHUB_USER=stella, set by cli(), is not an identity

CARE = "civil_affairs.elderly_care"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    return build_hub(tmp_path_factory.mktemp("grants"))


def cli(hub, *args: str, user: str = "stella"):
    return CliRunner().invoke(main, ["--home", str(hub.home), *args], env={"TWINHUB_USER": user})


def audit_rows(hub, marker: str) -> list[tuple]:
    return run_query(hub.lake, "SELECT action, status, actor, department, statement, message FROM catalog.audit "
                               f"WHERE statement LIKE '%{marker}%' OR message LIKE '%{marker}%' "
                               "ORDER BY happened_at").rows


@pytest.mark.parametrize(("today", "active"), [
    (dt.date(2027, 6, 29), True), (dt.date(2027, 6, 30), True), (dt.date(2027, 7, 1), False),
])
def test_a_grant_is_valid_through_its_last_day(today, active):
    grant = Grant("water", CARE, "internal", dt.date(2027, 6, 30), "stella", "2027-01-01T00:00:00+00:00")
    assert grant.active(today) is active


@pytest.mark.parametrize(("text", "problem"), [
    ("watr", "unknown consumer 'watr' (did you mean 'water'?)"),
    ("finance", "a consumer is a registered department (health, water) or a named user written user:NAME"),
    ("user:", "a user name is letters, digits"),
    ("user:bad name", "a user name is letters, digits"),
])
def test_unknown_consumers_are_refused(text, problem):
    with pytest.raises(AccessError) as info:
        parse_consumer(text, {"water", "health"})
    assert problem in str(info.value)


def test_add_list_renew_revoke(hub):
    added = cli(hub, "grants", "add", "water", CARE, "--until", "2099-06-30", "--reason", "flood planning")
    assert added.exit_code == 0, added.output
    assert f"granted: water reads {CARE} up to internal until 2099-06-30" in added.output
    listed = json.loads(cli(hub, "grants", "list", "--consumer", "water", "--format", "json").output)
    assert [(g["dataset"], g["level"], g["until"], g["state"], g["granted_by"], g["reason"]) for g in listed] == \
        [(CARE, "internal", "2099-06-30", "active", ACTOR, "flood planning")]

    renewed = cli(hub, "grants", "renew", "water", CARE, "--until", "2100-01-31")
    assert renewed.exit_code == 0 and "until 2100-01-31" in renewed.output
    assert list_grants(hub.lake, "water", CARE)[0].until == dt.date(2100, 1, 31)

    revoked = cli(hub, "grants", "revoke", "water", CARE)
    assert revoked.exit_code == 0 and list_grants(hub.lake, "water", CARE) == []
    actions = [(a, s, who, dep) for a, s, who, dep, *_ in audit_rows(hub, f"water {CARE}")]
    assert actions == [("grant-add", "ok", ACTOR, "water"), ("grant-renew", "ok", ACTOR, "water"),
                       ("grant-revoke", "ok", ACTOR, "water")]


def test_a_grant_to_a_named_user(hub):
    result = cli(hub, "grants", "add", "user:alice", CONTACTS, "--until", "2099-01-01", "--level", "sensitive")
    assert result.exit_code == 0, result.output
    assert list_grants(hub.lake, "user:alice")[0].level == "sensitive"


@pytest.mark.parametrize(("args", "message"), [
    (["add", "water", "health.care_contact", "--until", "2099-01-01"],
     "unknown dataset 'health.care_contact' (did you mean 'health.care_contacts'?)"),
    (["add", "waterworks", CARE, "--until", "2099-01-01"], "unknown consumer 'waterworks' (did you mean 'water'?)"),
    (["add", "water", CARE, "--until", "2001-01-01"], "--until 2001-01-01 is already past"),
    (["add", "water", CARE, "--until", "30/06/2099"], "write the last valid day as YYYY-MM-DD"),
    (["renew", "user:nobody", CARE, "--until", "2099-01-01"], f"user:nobody has no grant on {CARE} to renew"),
    (["revoke", "user:nobody", CARE], f"user:nobody has no grant on {CARE}"),
])
def test_bad_grant_commands_are_refused_and_audited(hub, args, message):
    result = cli(hub, "grants", *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output
    assert any(s == "refused" and message in (m or "") for _, s, _, _, _, m in audit_rows(hub, args[2]))


def test_query_as_a_consumer_end_to_end(hub):
    save_grant(hub.lake, Grant("user:bob", CONTACTS, "internal", dt.date(2099, 1, 1), "stella", "now"))
    ok = cli(hub, "query", "--as", "user:bob", f"SELECT name FROM {CONTACTS} WHERE 'cli-ok' <> '' LIMIT 1")
    assert ok.exit_code == 0 and len(ok.output.splitlines()) >= 3, ok.output
    refused = cli(hub, "query", "--as", "user:bob", f"SELECT n FROM (SELECT capacity AS n FROM {CONTACTS}) s "
                                                    "WHERE 'cli-refused' <> ''")
    assert refused.exit_code == 2
    assert f"user:bob may not read {CONTACTS}.capacity (restricted)" in refused.output
    unknown = cli(hub, "query", "--as", "helth", "SELECT 1 AS x FROM water.pumping_stations WHERE 'cli-who' <> ''")
    assert unknown.exit_code == 2 and "did you mean 'health'?" in unknown.output
    consumers = dict(run_query(hub.lake, "SELECT statement, consumer FROM catalog.audit "
                                         "WHERE statement LIKE '%cli-%'").rows)
    rows = {stmt.split("'")[1]: (actor, consumers.get(stmt), status)
            for _, status, actor, _, stmt, _ in audit_rows(hub, "cli-") if "catalog.audit" not in stmt}
    assert rows == {"cli-ok": (ACTOR, "user:bob", "ok"), "cli-refused": (ACTOR, "user:bob", "refused"),
                    "cli-who": (ACTOR, None, "refused")}


def test_without_as_the_cli_is_the_local_steward(hub):
    result = cli(hub, "query", f"SELECT sum(capacity) FROM {CONTACTS}")
    assert result.exit_code == 0 and "sum" in result.output


def test_grants_live_beside_the_audit_log_in_a_postgresql_catalog(tmp_path):
    """A hub serving several machines keeps its metadata in PostgreSQL: its grants are there too."""
    pg, schema = "dbname=test host=127.0.0.1 port=5432 user=postgres", f"twinhub_grants_{uuid.uuid4().hex[:10]}"
    home = tmp_path / "home"
    home.mkdir()
    config = {"catalog": {"metadata": f"postgres:{pg}", "schema": schema, "data": str(tmp_path / "data")}}
    (home / "twinhub.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    hub = Hub.open(home)
    hub.init()  # the configuration exists already: create the catalog in PostgreSQL
    try:
        entry, _ = register(hub, sample.CITY / "civil_affairs/elderly_care.yaml")
        ingest(hub, lookup(hub, entry.id), run_id="pg-1")
        first = Grant("water", CARE, "internal", dt.date(2027, 6, 30), "stella", "2027-01-01")
        assert save_grant(hub.lake, first) is None
        assert save_grant(hub.lake, Grant(**{**first.__dict__, "until": dt.date(2028, 6, 30)})) == first
        who = AsConsumer(Consumer("water"), dt.date(2028, 1, 1))
        assert run_query(hub.lake, f"SELECT count(name) FROM {CARE}", consumer=who).rows[0][0] > 0
        delete_grant(hub.lake, "water", CARE)
        assert list_grants(hub.lake) == []
    finally:
        con = connect(extensions=("postgres_scanner",))
        con.execute(f"ATTACH '{pg}' AS pg (TYPE postgres)")
        con.execute(f"CALL postgres_execute('pg', 'DROP SCHEMA IF EXISTS {schema} CASCADE')")
        con.close()
