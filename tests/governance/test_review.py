"""Steward review: sensitive and restricted registrations wait, are listed, shown, approved or rejected with a
reason; a pending registration never runs; changes to an approved one go back to review; all of it audited."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from twinhub import sample
from twinhub.catalog.audit import current_actor
from twinhub.catalog.query import run_query
from twinhub.cli.main import main
from twinhub.hub import review
from twinhub.hub.home import Hub
from twinhub.hub.manifest import ManifestError
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup, registered

from .access_hub import CONTACTS, contacts_manifest, sample_copy

ACTOR = current_actor()  # the OS user: TWINHUB_USER=stella, set by cli(), is not an identity


@pytest.fixture
def home(tmp_path):
    return Hub.open(tmp_path / "home")


def cli(hub: Hub, *args: str):
    return CliRunner().invoke(main, ["--home", str(hub.home), *args], env={"TWINHUB_USER": "stella"})


def audit_rows(hub: Hub, action_like: str) -> list[tuple]:
    return run_query(hub.lake, "SELECT action, status, actor, statement, message FROM catalog.audit "
                               f"WHERE action LIKE '{action_like}' ORDER BY happened_at").rows


def test_public_and_internal_registrations_are_approved_at_once(home):
    for manifest in ("water/pumping_stations.yaml", "civil_affairs/elderly_care.yaml"):
        entry, _ = register(home, sample.CITY / manifest)
        assert entry.review is None
    assert [r.id for r in registered(home)] == ["civil_affairs.elderly_care", "water.pumping_stations"]
    assert review.pending(home) == []


def test_a_restricted_registration_waits_and_does_not_run(home, tmp_path):
    entry, _ = register(home, contacts_manifest(tmp_path / "m"))
    assert entry.review == ["classified restricted (columns capacity)"]
    assert [p.id for p in review.pending(home)] == [CONTACTS]
    assert registered(home) == []  # neither `twinhub run --all` nor the Dagster definitions see it
    with pytest.raises(ManifestError, match="waits for a steward's review"):
        lookup(home, CONTACTS)  # `twinhub run health.care_contacts` is refused


def test_pending_datasets_are_not_in_the_dagster_definitions(home, tmp_path):
    from twinhub.pipelines.factory import build_definitions

    register(home, sample.CITY / "water/pumping_stations.yaml")
    register(home, contacts_manifest(tmp_path / "m", schedule="0 4 * * *"))
    defs = build_definitions(home)
    keys = {"/".join(k.path) for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "water/pumping_stations" in keys and not any("care_contacts" in k for k in keys)
    assert all("care_contacts" not in str(s.job_name) for s in defs.schedules or [])


def test_a_declared_sensitive_dataset_waits_too(home, tmp_path):
    entry, _ = register(home, sample_copy(tmp_path / "m", "emergency/shelters.yaml", classification="sensitive"))
    assert entry.review == ["classified sensitive"]


def test_register_command_says_it_waits_for_review(home, tmp_path):
    result = cli(home, "register", str(contacts_manifest(tmp_path / "m")))
    assert result.exit_code == 0, result.output
    assert f"{CONTACTS} waits for a steward's review (classified restricted (columns capacity))" in result.output
    assert f"twinhub review show {CONTACTS}" in result.output


def test_review_list_show_approve(home, tmp_path):
    register(home, contacts_manifest(tmp_path / "m"))
    listed = cli(home, "review", "list", "--format", "json")
    assert json.loads(listed.output)[0]["dataset"] == CONTACTS
    shown = cli(home, "review", "show", CONTACTS)
    assert shown.exit_code == 0 and "needs review: classified restricted" in shown.output
    assert "capacity:" in shown.output and "protect: none" in shown.output  # the manifest as submitted

    refused = cli(home, "review", "approve", CONTACTS, "--reason", "  ")
    assert refused.exit_code == 2 and "give the reason" in refused.output
    approved = cli(home, "review", "approve", CONTACTS, "--reason", "health needs it for home visits")
    assert approved.exit_code == 0, approved.output
    assert lookup(home, CONTACTS).manifest.title == "Care home contacts"
    assert review.pending(home) == []
    decision = review.decisions(home, CONTACTS)[-1]
    assert (decision["decision"], decision["by"], decision["reason"]) == \
        ("approved", ACTOR, "health needs it for home visits")
    actions = [(a, s, who) for a, s, who, *_ in audit_rows(home, "review%")]
    assert ("review-approved", "ok", ACTOR) in actions and ("review", "refused", ACTOR) in actions


def test_reject_discards_the_registration(home, tmp_path):
    register(home, contacts_manifest(tmp_path / "m"))
    result = cli(home, "review", "reject", CONTACTS, "--reason", "capacity is not ours to share")
    assert result.exit_code == 0 and f"rejected {CONTACTS}" in result.output
    assert review.pending(home) == [] and registered(home) == []
    assert review.decisions(home, CONTACTS)[-1]["decision"] == "rejected"


def test_unknown_review_id_is_refused_with_a_suggestion_and_audited(home, tmp_path):
    register(home, contacts_manifest(tmp_path / "m"))
    result = cli(home, "review", "approve", "health.care_contact", "--reason", "ok")
    assert result.exit_code == 2
    assert f"did you mean '{CONTACTS}'?" in result.output
    assert any(s == "refused" and "health.care_contact" in stmt for _, s, _, stmt, _ in audit_rows(home, "review"))


def test_changing_an_approved_registration_goes_back_to_review(home, tmp_path):
    register(home, contacts_manifest(tmp_path / "m"))
    review.approve(home, CONTACTS, "first version")
    same, _ = register(home, contacts_manifest(tmp_path / "m", description="reworded"))
    assert same.review is None  # same tier, fields and columns: no review needed

    changed = dict(facility_id="机构编号", name="机构名称", category="机构类型", district="所属区", address="地址")
    entry, replaced = register(home, contacts_manifest(tmp_path / "m", fields=changed))  # capacity dropped
    assert replaced and entry.review == ["its fields change: capacity '床位数' -> None"]
    assert "capacity" in lookup(home, CONTACTS).manifest.fields  # the approved version keeps running
    assert review.pending(home)[0].replaces

    lowered, _ = register(home, contacts_manifest(tmp_path / "m", columns={}))
    assert lowered.review == ["tier changes from restricted to internal", "its column policies (columns:) change"]


def test_registering_again_without_need_for_review_withdraws_the_pending_one(home, tmp_path):
    register(home, sample_copy(tmp_path / "m", "emergency/shelters.yaml", classification="restricted"))
    entry, _ = register(home, sample_copy(tmp_path / "m", "emergency/shelters.yaml", classification="public"))
    assert entry.review is None and review.pending(home) == []
    assert review.decisions(home, "emergency.shelters")[-1]["decision"] == "superseded"
