"""Queries as a consumer on a real catalog: column-level access through every query shape, protected values,
expiry with a fixed clock, city layers and derived datasets, and the audit of each query and refusal."""

from __future__ import annotations

import datetime as dt

import pytest

from twinhub.catalog.enforce import AsConsumer
from twinhub.catalog.grants import Consumer, Grant, save_grant
from twinhub.catalog.query import QueryRefused, run_query
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.layers import build_city_layer
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup, registered

from .access_hub import CONTACTS, KEY, build_hub, sample_copy

TODAY = dt.date(2027, 3, 1)
CARE = "civil_affairs.elderly_care"


pytestmark = pytest.mark.usefixtures("pseudonym_key")  # tests/governance/conftest.py


@pytest.fixture(scope="module")
def hub(tmp_path_factory, pseudonym_key):
    hub = build_hub(tmp_path_factory.mktemp("enforce"))
    build_city_layer(hub, "facility", registered(hub))
    for consumer, dataset, level in [("civil_affairs", CONTACTS, "internal"), ("water", CONTACTS, "sensitive"),
                                     ("user:carol", CONTACTS, "restricted"), ("water", "city.facility", "internal")]:
        save_grant(hub.lake, Grant(consumer, dataset, level, dt.date(2027, 6, 30), "steward", "2027-01-01"))
    return hub


def query(hub, consumer: str, sql: str, today: dt.date = TODAY, derived: dict | None = None):
    return run_query(hub.lake, sql, consumer=AsConsumer(Consumer(consumer), today, derived or {}))


def refused(hub, consumer: str, sql: str, **kwargs) -> str:
    with pytest.raises(QueryRefused) as info:
        query(hub, consumer, sql, **kwargs)
    return str(info.value)


# Every shape in which capacity (restricted, no protected form) can be used: each is refused, by name.
CAPACITY_SHAPES = {
    "select list": "SELECT capacity FROM health.care_contacts",
    "alias": "SELECT c.capacity AS beds FROM health.care_contacts AS c",
    "where only": "SELECT name FROM health.care_contacts WHERE capacity > 100",
    "group by": "SELECT count(*) FROM health.care_contacts GROUP BY capacity",
    "order by": "SELECT name FROM health.care_contacts ORDER BY capacity DESC LIMIT 1",
    "subquery in FROM": "SELECT beds FROM (SELECT capacity AS beds FROM health.care_contacts) AS s",
    "subquery in WHERE": "SELECT name FROM civil_affairs.elderly_care WHERE facility_id IN "
                         "(SELECT facility_id FROM health.care_contacts WHERE capacity > 100)",
    "cte": "WITH big AS (SELECT name, capacity FROM health.care_contacts) SELECT name FROM big WHERE capacity > 1",
    "join on": "SELECT e.name FROM civil_affairs.elderly_care e JOIN health.care_contacts h ON h.capacity = e.capacity",
    "join, other side": "SELECT e.name, h.capacity FROM civil_affairs.elderly_care e, health.care_contacts h "
                        "WHERE e.facility_id = h.facility_id",
    "union": "SELECT name FROM water.pumping_stations "
             "UNION ALL SELECT CAST(capacity AS VARCHAR) FROM health.care_contacts",
    "select star": "SELECT * FROM health.care_contacts",
    "star in a cte": "WITH c AS (SELECT * FROM health.care_contacts) SELECT name FROM c",
    "window": "SELECT name, rank() OVER (ORDER BY capacity) FROM health.care_contacts",
    "catalog prefix": "SELECT lake.health.care_contacts.capacity FROM lake.health.care_contacts",
    "quoted upper case": 'SELECT "CAPACITY" FROM HEALTH.CARE_CONTACTS',
    "join using": "SELECT e.name FROM civil_affairs.elderly_care e JOIN health.care_contacts h USING (capacity)",
    "natural join": "SELECT e.name FROM civil_affairs.elderly_care e NATURAL JOIN health.care_contacts h",
    "lateral": "SELECT x.c FROM health.care_contacts h, LATERAL (SELECT h.capacity AS c) x",
    "scalar subquery": "SELECT (SELECT max(capacity) FROM health.care_contacts) AS m",
    "correlated exists": "SELECT name FROM health.care_contacts h WHERE EXISTS "
                         "(SELECT 1 FROM civil_affairs.elderly_care e WHERE e.capacity = h.capacity)",
    "having": "SELECT district FROM health.care_contacts GROUP BY district HAVING max(capacity) > 0",
    "qualify": "SELECT name FROM health.care_contacts QUALIFY row_number() OVER (PARTITION BY capacity) = 1",
    "cast": "SELECT h.capacity::text FROM health.care_contacts AS h",
}


@pytest.mark.parametrize("shape", sorted(CAPACITY_SHAPES))
def test_a_restricted_column_is_refused_in_every_shape(hub, shape):
    message = refused(hub, "civil_affairs", CAPACITY_SHAPES[shape])
    assert f"{CONTACTS}.capacity (restricted)" in message
    assert "allows up to internal" in message and "--level restricted" in message  # the grant that would allow it


def test_select_star_refusal_says_to_name_the_columns(hub):
    assert "name the columns you need" in refused(hub, "civil_affairs", CAPACITY_SHAPES["select star"])


def test_columns_within_the_grant_are_read_in_clear(hub):
    mine = run_query(hub.lake, f"SELECT name, district FROM {CONTACTS} ORDER BY 1").rows
    assert query(hub, "civil_affairs", f"SELECT name, district FROM {CONTACTS} ORDER BY 1").rows == mine
    joined = query(hub, "civil_affairs", f"SELECT e.name FROM {CARE} e JOIN {CONTACTS} h ON h.name = e.name "
                                         "ORDER BY 1").rows
    assert joined and len(joined) == len(mine)


def test_protected_columns_read_masked_or_pseudonymized_below_their_tier(hub):
    clear = run_query(hub.lake, f"SELECT facility_id, address FROM {CONTACTS} ORDER BY name").rows
    seen = query(hub, "civil_affairs", f"SELECT facility_id, address FROM {CONTACTS} ORDER BY name").rows
    assert len(seen) == len(clear)
    for (fid, address), (fid_seen, address_seen) in zip(clear, seen):
        if fid is not None:
            assert fid_seen.startswith("p_") and fid not in fid_seen  # HMAC pseudonym
        if address:
            assert address_seen != address and "*" in address_seen  # masked
    # pseudonyms are stable: joins and counts on them still work
    distinct = query(hub, "civil_affairs", f"SELECT count(DISTINCT facility_id) FROM {CONTACTS}").rows
    assert distinct == run_query(hub.lake, f"SELECT count(DISTINCT facility_id) FROM {CONTACTS}").rows
    # a protected column in WHERE compares the protected value, never the clear one
    some_id = next(fid for fid, _ in clear if fid)
    assert query(hub, "civil_affairs", f"SELECT name FROM {CONTACTS} WHERE facility_id = '{some_id}'").rows == []


@pytest.mark.parametrize("table", ["HEALTH.CARE_CONTACTS", '"Health"."Care_Contacts"', "LAKE.health.care_contacts"])
def test_protection_holds_whatever_the_case_of_the_table_name(hub, table):
    clear = {a for (a,) in run_query(hub.lake, f"SELECT address FROM {CONTACTS}").rows if a}
    seen = {a for (a,) in query(hub, "civil_affairs", f"SELECT Address FROM {table}").rows if a}
    assert seen and not seen & clear


def test_a_higher_grant_reads_more_in_clear(hub):
    clear = run_query(hub.lake, f"SELECT address FROM {CONTACTS} ORDER BY name").rows
    assert query(hub, "water", f"SELECT address FROM {CONTACTS} ORDER BY name").rows == clear  # sensitive grant
    assert "allows up to sensitive" in refused(hub, "water", f"SELECT capacity FROM {CONTACTS}")
    assert query(hub, "user:carol", f"SELECT sum(capacity) FROM {CONTACTS}").rows == \
        run_query(hub.lake, f"SELECT sum(capacity) FROM {CONTACTS}").rows  # restricted grant


def test_a_department_reads_its_own_datasets_fully(hub):
    assert query(hub, "health", f"SELECT count(capacity) FROM {CONTACTS}").rows[0][0] > 0


def test_without_a_grant_only_public_data_is_readable(hub):
    assert query(hub, "user:dave", "SELECT count(*) FROM water.pumping_stations").rows[0][0] > 0
    message = refused(hub, "user:dave", f"SELECT name FROM {CARE}")
    assert f"user:dave has no grant on {CARE}" in message and f"twinhub grants add user:dave {CARE}" in message
    assert "no grant" in refused(hub, "user:dave", f"SELECT count(*) FROM {CARE}")  # not even its row count


def test_a_row_as_a_struct_or_columns_star_only_reaches_what_the_consumer_may_see(hub):
    rows = query(hub, "civil_affairs", f"SELECT t FROM {CONTACTS} t LIMIT 1").rows
    record = rows[0][0]
    assert "capacity" not in record and "*" in record["address"] and record["facility_id"].startswith("p_")
    columns = query(hub, "civil_affairs", f"SELECT COLUMNS('.*') FROM {CONTACTS} LIMIT 1").columns
    assert "capacity" not in columns and "name" in columns


def test_grant_expiry_with_a_fixed_clock(hub):
    sql = f"SELECT name FROM {CONTACTS} LIMIT 1"
    assert query(hub, "civil_affairs", sql, today=dt.date(2027, 6, 30)).rows  # the last valid day
    message = refused(hub, "civil_affairs", sql, today=dt.date(2027, 7, 1))
    assert "expired on 2027-06-30" in message and f"twinhub grants renew civil_affairs {CONTACTS}" in message


def test_city_layers_carry_their_inputs_highest_tier_and_have_their_own_grants(hub):
    # health owns care_contacts but not the city layer built from it
    assert "health has no grant on city.facility" in refused(hub, "health", "SELECT name FROM city.facility")
    assert query(hub, "water", "SELECT count(name) FROM city.facility").rows[0][0] > 0
    by_department = dict(query(hub, "water", "SELECT department, count(*) FROM city.facility GROUP BY 1").rows)
    assert set(by_department) == {"water", "civil_affairs", "health"}
    assert "city.facility.capacity (restricted)" in refused(hub, "water", "SELECT max(capacity) FROM city.facility")


def test_derived_datasets_carry_their_inputs_highest_tier(hub):
    derived = {"derived.beds": [CONTACTS, "water.pumping_stations"]}
    con = hub.lake.connect()
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS derived")
        con.execute(f"CREATE OR REPLACE TABLE derived.beds AS SELECT name FROM {CONTACTS}")
    finally:
        con.close()
    message = refused(hub, "civil_affairs", "SELECT name FROM derived.beds", derived=derived)
    assert "derived.beds.name (restricted)" in message and "has no grant on derived.beds" in message


def test_the_hubs_own_records_are_for_stewards(hub):
    assert query(hub, "civil_affairs", "SELECT count(*) FROM catalog.datasets").rows[0][0] == 3
    for table in ("catalog.audit", "catalog.quarantine", "catalog.runs", "catalog.release_notes"):
        assert "for the hub's stewards" in refused(hub, "civil_affairs", f"SELECT * FROM {table}")


def test_every_query_and_refusal_is_audited_with_the_consumer(hub):
    query(hub, "water", "SELECT count(*) FROM water.pumping_stations WHERE 'audit-me' = 'audit-me'")
    refused(hub, "user:erin", f"SELECT name FROM {CARE} WHERE 'audit-me' = 'audit-me'")
    rows = run_query(hub.lake, "SELECT consumer, department, status, message FROM catalog.audit "
                               "WHERE statement LIKE '%audit-me%' AND action = 'query' ORDER BY happened_at").rows
    assert [tuple(r[:3]) for r in rows[:1]] == [("water", "water", "ok")]
    assert rows[1][0] == "user:erin" and rows[1][2] == "refused" and f"{CARE}.name" in rows[1][3]


def test_the_pseudonym_key_never_reaches_the_audit_log(hub):
    query(hub, "civil_affairs", f"SELECT facility_id FROM {CONTACTS}")
    statements = run_query(hub.lake, "SELECT statement || coalesce(message, '') FROM catalog.audit").rows
    assert statements and not any(KEY in s for (s,) in statements)


def test_without_the_pseudonym_key_only_queries_using_pseudonymized_columns_are_refused(hub, monkeypatch):
    monkeypatch.delenv("TWINHUB_PSEUDONYM_KEY")
    assert query(hub, "civil_affairs", f"SELECT name, address FROM {CONTACTS} LIMIT 1").rows
    message = refused(hub, "civil_affairs", f"SELECT count(DISTINCT facility_id) FROM {CONTACTS}")
    assert f"{CONTACTS}.facility_id can only be read pseudonymized" in message and "TWINHUB_PSEUDONYM_KEY" in message


def test_reading_an_earlier_version_uses_the_stricter_of_its_tiers_then_and_now(tmp_path):
    """Shelters published public, then graded internal: their public past is internal for consumers too."""
    hub = Hub.open(tmp_path / "home")
    public = sample_copy(tmp_path / "m", "emergency/shelters.yaml", classification="public")
    ingest(hub, lookup(hub, register(hub, public)[0].id), run_id="v1")
    versions = "SELECT max(version) FROM catalog.versions WHERE dataset = 'emergency.shelters'"
    then = run_query(hub.lake, versions).rows[0][0]
    who = AsConsumer(Consumer("user:dave"), TODAY)
    assert run_query(hub.lake, "SELECT count(name) FROM emergency.shelters", consumer=who).rows[0][0] > 0

    internal = sample_copy(tmp_path / "m", "emergency/shelters.yaml", classification="internal")
    ingest(hub, lookup(hub, register(hub, internal)[0].id), run_id="v2", force=True)
    with pytest.raises(QueryRefused, match=r"emergency.shelters.name \(internal\)"):
        run_query(hub.lake, "SELECT count(name) FROM emergency.shelters", consumer=who, as_of=then)
    assert run_query(hub.lake, "SELECT count(name) FROM emergency.shelters", as_of=then).rows[0][0] > 0  # steward
