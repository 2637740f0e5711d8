"""What stewards see beyond registrations: pending ones in `twinhub datasets`, datasets the privacy scan
raised (listed by `review list` until acknowledged), one-line refusals for pending datasets, and grant
commands audited with their consumer and dataset."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from twinhub import sample
from twinhub.catalog.audit import current_actor
from twinhub.catalog.query import run_query
from twinhub.cli.main import main
from twinhub.hub import review
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup

from .access_hub import CONTACTS, contacts_manifest, sample_copy
from .test_tiers import _rows, _write

ACTOR = current_actor()  # the OS user: TWINHUB_USER=stella, set by cli(), is not an identity

REQUESTS = "hotline.requests"


def cli(hub: Hub, *args: str):
    return CliRunner().invoke(main, ["--home", str(hub.home), *args], env={"TWINHUB_USER": "stella"})


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> Hub:
    """hotline.requests: internal, with mobile numbers in its undeclared description column; published once;
    and health.care_contacts (restricted) waiting for review."""
    root = tmp_path_factory.mktemp("scanned")
    hub = Hub.open(root / "home")
    path = _write(root / "src", "requests", _rows(12, lambda i: f"市民来电1381234{i:04d}反映" if i % 3 == 0 else "路灯不亮"),
                  {"classification": "internal"})
    entry, _ = register(hub, path)
    assert entry.review is None  # internal: approved at once
    ingest(hub, lookup(hub, REQUESTS), run_id="first-requests")
    register(hub, contacts_manifest(root / "contacts"))
    return hub


def test_datasets_shows_registrations_pending_review(scanned):
    result = cli(scanned, "datasets", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["dataset"]: r for r in json.loads(result.output)}
    assert rows[CONTACTS]["last_run"] == "pending review" and rows[CONTACTS]["classification"] == "restricted"
    assert rows[REQUESTS]["last_run"] == "published"


def test_a_change_pending_review_is_shown_beside_the_running_version(tmp_path):
    hub = Hub.open(tmp_path / "home")
    register(hub, sample.CITY / "water/pumping_stations.yaml")
    register(hub, sample_copy(tmp_path / "m", "water/pumping_stations.yaml", classification="sensitive"))
    rows = {r["dataset"]: r for r in json.loads(cli(hub, "datasets", "--format", "json").output)}
    assert rows["water.pumping_stations"]["last_run"] == "change pending review"
    assert rows["water.pumping_stations"]["classification"] == "public"  # the approved version's, until decided


def test_running_a_pending_dataset_is_one_line(scanned):
    result = cli(scanned, "run", CONTACTS)
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: {CONTACTS} waits for a steward's review and does not run yet: "
                                     f"twinhub review show {CONTACTS}")


def test_review_lists_a_dataset_the_scan_raised_until_acknowledged(scanned):
    listed = {r["dataset"]: r for r in json.loads(cli(scanned, "review", "list", "--format", "json").output)}
    assert set(listed) == {CONTACTS, REQUESTS}
    assert listed[REQUESTS]["kind"] == "scan" and listed[REQUESTS]["tier"] == "sensitive"
    assert listed[REQUESTS]["why"] == "tier raised by scan: column description mobile in 4 values"
    shown = cli(scanned, "review", "show", REQUESTS)
    assert shown.exit_code == 0 and "sensitive (declared internal)" in shown.output
    rejected = cli(scanned, "review", "reject", REQUESTS, "--reason", "no")
    assert rejected.exit_code == 2 and "nothing to reject" in rejected.output
    typo = cli(scanned, "review", "approve", "hotline.request", "--reason", "seen")
    assert typo.exit_code == 2 and f"did you mean '{REQUESTS}'? raised by the scan: {REQUESTS}" in typo.output

    done = cli(scanned, "review", "approve", REQUESTS, "--reason", "seen; hotline will declare it")
    assert done.exit_code == 0 and done.output.startswith(f"acknowledged: {REQUESTS} stays sensitive")
    assert [p.id for p in review.raised_by_scan(scanned)] == []
    assert [p.id for p in review.pending(scanned)] == [CONTACTS]  # the registration still waits
    audited = run_query(scanned.lake, "SELECT actor, statement FROM catalog.audit "
                                      "WHERE action = 'review-acknowledged'").rows
    assert audited == [(ACTOR, f"acknowledged {REQUESTS}: seen; hotline will declare it")]
    # queries keep the raised tier: a consumer without a grant cannot read the column
    refused = cli(scanned, "query", "--as", "health", f"SELECT description FROM {REQUESTS}")
    assert refused.exit_code == 2 and "description (sensitive)" in refused.output


def test_a_raise_on_other_columns_is_listed_again(tmp_path):
    hub = Hub.open(tmp_path / "home")
    rows = _rows(6, lambda i: f"来电1381234{i:04d}")
    path = _write(tmp_path / "src", "requests", rows, {"classification": "internal"})
    register(hub, path)
    ingest(hub, lookup(hub, REQUESTS), run_id="one")
    review.acknowledge(hub, REQUESTS, "seen")
    assert review.raised_by_scan(hub) == []
    for row in rows:
        row["地址"] = f"{row['地址']} lin@example.cn"
    _write(tmp_path / "src", "requests", rows, {"classification": "internal"})
    ingest(hub, lookup(hub, REQUESTS), run_id="two")
    [again] = review.raised_by_scan(hub)
    assert "column address email in 6 values" in again.why


def test_declaring_the_column_ends_the_listing(tmp_path):
    hub = Hub.open(tmp_path / "home")
    path = _write(tmp_path / "src", "requests", _rows(6, lambda i: f"来电1381234{i:04d}"), {"classification": "internal"})
    register(hub, path)
    ingest(hub, lookup(hub, REQUESTS), run_id="one")
    assert [r.id for r in review.raised_by_scan(hub)] == [REQUESTS]
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["columns"] = {"description": {"personal_data": "none"}}  # the steward: these are not personal data
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    entry, _ = register(hub, path)
    # served sensitive (raised by the scan): the new column policy is the steward's to approve
    assert entry.review == ["its column policies (columns:) change"]
    assert [r.id for r in review.raised_by_scan(hub)] == [REQUESTS]
    review.approve(hub, REQUESTS, "equipment codes, not phones")
    assert review.raised_by_scan(hub) == []


def test_refused_grant_commands_are_audited_as_typed_with_consumer_and_dataset(scanned):
    result = cli(scanned, "grants", "add", "sewer", REQUESTS, "--until", "2099-01-01", "--reason", "flood maps")
    assert result.exit_code == 2 and "unknown consumer 'sewer'" in result.output
    [(statement, consumer, tables)] = run_query(
        scanned.lake, "SELECT statement, consumer, tables FROM catalog.audit WHERE action = 'grant-add'").rows
    assert statement.endswith(f" grants add sewer {REQUESTS} --until 2099-01-01 --level internal --reason flood maps")
    assert (consumer, json.loads(tables)) == ("sewer", [REQUESTS])
    assert cli(scanned, "grants", "add", "user:alice", REQUESTS, "--until", "2099-01-01").exit_code == 0
    assert run_query(scanned.lake, "SELECT consumer FROM catalog.audit WHERE action = 'grant-add' "
                                   "AND status = 'ok'").rows == [("user:alice",)]


def test_a_refused_manifest_is_audited(tmp_path):
    from twinhub.hub.manifest import ManifestError

    hub = Hub.open(tmp_path / "home")
    path = contacts_manifest(tmp_path / "m", columns={"adress": {"classification": "restricted"}})
    with pytest.raises(ManifestError, match="columns.adress: not a field of standard facility"):
        register(hub, path)
    [(status, statement, message)] = run_query(hub.lake, "SELECT status, statement, message FROM catalog.audit "
                                                         "WHERE action = 'register'").rows
    assert status == "refused" and statement == f"register {path}" and "did you mean 'address'" in message


def test_grants_list_of_a_misspelt_consumer_or_dataset_says_so(scanned):
    result = cli(scanned, "grants", "list", "--consumer", "hotlin")
    assert result.exit_code == 2 and "unknown consumer 'hotlin' (did you mean 'hotline'?)" in result.output
    result = cli(scanned, "grants", "list", "--dataset", "hotline.request")
    assert result.exit_code == 2 and "unknown dataset 'hotline.request' (did you mean 'hotline.requests'?)" in result.output
    assert cli(scanned, "grants", "list", "--consumer", "health").exit_code == 0  # known, no grants: an empty list
    assert run_query(scanned.lake, "SELECT count(*) FROM catalog.audit WHERE action = 'grant-list' "
                                   "AND status = 'refused'").rows == [(2,)]


def test_twinhub_run_says_what_the_scan_raised(tmp_path):
    hub = Hub.open(tmp_path / "home")
    register(hub, _write(tmp_path / "src", "requests", _rows(6, lambda i: f"来电1381234{i:04d}"),
                         {"classification": "internal"}))
    result = cli(hub, "run", REQUESTS)
    assert result.exit_code == 0, result.output
    assert (f"{REQUESTS}: tier raised by scan: column description mobile in 6 values; published sensitive; "
            "the steward sees it in twinhub review list") in result.output
    review.acknowledge(hub, REQUESTS, "seen")
    again = cli(hub, "run", REQUESTS, "--force")
    assert again.exit_code == 0 and "tier raised by scan" not in again.output  # acknowledged: not repeated
