"""`twinhub export city.<standard> --as CONSUMER`: a city layer's file carries only the rows of the datasets the
consumer may read, its protected columns masked or pseudonymized as `twinhub query --as` shows them, in every
format; a consumer who may read none of its datasets gets no file, and every export is audited."""

from __future__ import annotations

import datetime as dt

import geopandas
import pandas as pd
import pytest
from click.testing import CliRunner

from twinhub.catalog.enforce import AsConsumer
from twinhub.catalog.export import FORMATS
from twinhub.catalog.grants import Consumer, Grant, save_grant
from twinhub.catalog.query import run_query
from twinhub.cli.main import main
from twinhub.hub import review
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.layers import build_city_layer
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup, registered

from .access_hub import contacts_manifest

LAYER = "city.facility"
CONTACTS, HOMES, SECRET = "health.care_contacts", "civil_affairs.care_homes", "health.secret_homes"
COLUMNS = {  # sensitive, protected alike in both inputs, so the layer's columns are protected too
    "address": {"classification": "sensitive", "protect": "mask"},
    "facility_id": {"classification": "sensitive", "protect": "pseudonymize"},
    "capacity": {"classification": "sensitive", "protect": "none"},
}
UNTIL = dt.date(2099, 12, 31)

pytestmark = pytest.mark.usefixtures("pseudonym_key")  # tests/governance/conftest.py


@pytest.fixture(scope="module")
def hub(tmp_path_factory, pseudonym_key) -> Hub:
    """Three care home datasets of one standard (one city layer), one restricted; alice may read health's
    care contacts, not civil affairs' care homes."""
    root = tmp_path_factory.mktemp("export_layers")
    hub = Hub.open(root / "home")
    restricted = {**COLUMNS, "capacity": {"classification": "restricted", "protect": "none"}}
    for folder, keys in (("contacts", {}), ("homes", dict(department="civil_affairs", dataset="care_homes",
                                                          title="Care homes (civil affairs)")),
                         ("secret", dict(dataset="secret_homes", title="Secret homes", columns=restricted))):
        entry, _ = register(hub, contacts_manifest(root / folder, **{"columns": COLUMNS, **keys}))
        review.approve(hub, entry.id, "test")
        ingest(hub, lookup(hub, entry.id), run_id=f"first-{folder}")
    build_city_layer(hub, "facility", registered(hub))
    for consumer, dataset, level in (("user:alice", LAYER, "internal"), ("user:alice", CONTACTS, "internal"),
                                     ("civil_affairs", LAYER, "internal"), ("user:root", LAYER, "restricted"),
                                     ("user:root", SECRET, "restricted")):
        save_grant(hub.lake, Grant(consumer, dataset, level, UNTIL, "steward", "2027-01-01"))
    return hub


def export(hub: Hub, tmp_path, consumer: str, fmt: str = "csv"):
    out = tmp_path / f"{consumer.replace(':', '_')}{FORMATS[fmt]}"
    result = CliRunner().invoke(main, ["--home", str(hub.home), "export", LAYER, "--file-format", fmt,
                                       "--out", str(out), "--as", consumer], env={"TWINHUB_USER": "stella"})
    return result, (_read_back(out, fmt) if out.exists() else None)


def _read_back(path, fmt: str) -> pd.DataFrame:
    if fmt == "csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    if fmt == "geoparquet":
        return geopandas.read_parquet(path)
    return geopandas.read_file(path, engine="pyogrio")  # GDAL: GeoPackage, GeoJSON


def as_query(hub: Hub, consumer: str, sql: str) -> list[tuple]:
    return run_query(hub.lake, sql, consumer=AsConsumer(Consumer(consumer), dt.date.today())).rows


def last_export(hub: Hub) -> tuple:
    return run_query(hub.lake, "SELECT status, consumer, rows_returned, message FROM catalog.audit "
                               "WHERE action = 'export' ORDER BY happened_at DESC LIMIT 1").rows[0]


def test_the_layer_holds_both_departments_rows(hub):
    """The precondition: civil affairs' rows really are in the layer alice exports."""
    counts = dict(run_query(hub.lake, f"SELECT dataset, count(*) FROM {LAYER} GROUP BY 1").rows)
    assert counts.keys() == {"care_contacts", "care_homes", "secret_homes"} and min(counts.values()) > 0


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_only_the_readable_inputs_rows_leave_with_protected_columns_as_query_shows_them(hub, tmp_path, fmt):
    result, frame = export(hub, tmp_path, "user:alice", fmt)
    assert result.exit_code == 0, result.output
    assert set(frame["dataset"]) == {"care_contacts"}  # no grant on civil affairs' care homes: none of its rows
    expected = as_query(hub, "user:alice", f"SELECT name, address, facility_id FROM {LAYER} ORDER BY name")
    assert len(expected) == len(frame) == run_query(hub.lake, f"SELECT count(*) FROM {CONTACTS}").rows[0][0]
    assert "capacity" not in frame.columns  # sensitive without a protected form: left out
    got = sorted(zip(frame["name"], frame["address"], frame["facility_id"]))
    assert got == sorted(expected)  # masked and pseudonymized exactly as the query shows them
    clear = {a for a, in run_query(hub.lake, f"SELECT address FROM {CONTACTS}").rows}
    assert all("*" in a for _, a, _ in got if a) and not clear & {a for _, a, _ in got}
    assert all(f.startswith("p_") for _, _, f in got)
    assert "left out: capacity; masked or pseudonymized: address, facility_id" in result.output
    assert last_export(hub)[:3] == ("ok", "user:alice", len(frame))


def test_the_owner_of_one_input_gets_its_own_rows_only(hub, tmp_path):
    result, frame = export(hub, tmp_path, "civil_affairs")
    assert result.exit_code == 0, result.output
    assert set(frame["department"]) == {"civil_affairs"} and set(frame["dataset"]) == {"care_homes"}
    assert len(frame) == run_query(hub.lake, f"SELECT count(*) FROM {HOMES}").rows[0][0]
    assert all("*" in a for a in frame["address"] if a)  # its layer grant is internal: address stays masked


def test_a_consumer_who_may_read_none_of_its_datasets_gets_no_file_and_the_refusal_is_audited(hub, tmp_path):
    result, frame = export(hub, tmp_path, "user:carol")
    assert result.exit_code == 2 and frame is None
    assert f"user:carol may read none of {LAYER}'s datasets" in result.output
    assert f"twinhub grants add user:carol {LAYER}" in result.output
    status, consumer, _, message = last_export(hub)
    assert (status, consumer) == ("refused", "user:carol") and "none of" in message


def test_an_expired_grant_on_the_input_closes_its_rows(hub, tmp_path):
    save_grant(hub.lake, Grant("user:bob", LAYER, "internal", UNTIL, "steward", "2027-01-01"))
    save_grant(hub.lake, Grant("user:bob", CONTACTS, "internal", dt.date(2020, 1, 1), "steward", "2019-01-01"))
    result, frame = export(hub, tmp_path, "user:bob")
    assert result.exit_code == 2 and frame is None, result.output


def test_a_restricted_inputs_rows_never_leave_even_with_every_grant(hub, tmp_path):
    assert as_query(hub, "user:root", f"SELECT count(*) FROM {LAYER} WHERE dataset = 'secret_homes'")[0][0] > 0
    result, frame = export(hub, tmp_path, "user:root")
    assert result.exit_code == 0, result.output
    assert set(frame["dataset"]) == {"care_contacts", "care_homes"}  # a restricted grant opens them to queries only
    assert "classified sensitive" in result.output and "capacity" in frame.columns  # sensitive in what it carries
