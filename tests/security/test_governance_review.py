"""Attacks on review (issue 15, finding 3): an approved restricted dataset changes what it reads or what it
publishes openly. Every reviewed key goes back to the steward and the approved version keeps serving."""

from __future__ import annotations

import pytest

from twinhub.hub import review
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup

from .governance_city import activate, query, rows, tables, write

RESTRICTED = {"classification": "restricted", "columns": {"district": {"classification": "internal"}}}


@pytest.fixture
def approved(hub: Hub, tmp_path):
    """hotline.cases: restricted, approved by the steward, 12 rows published."""
    entry = activate(hub, write(tmp_path / "v1", "cases", rows(12), **RESTRICTED))
    ingest(hub, entry, run_id="approved")
    return hub


def test_adding_a_public_variant_goes_to_review_and_publishes_nothing_meanwhile(approved: Hub, tmp_path):
    entry, replaced = register(approved, write(tmp_path / "v1", "cases", rows(12), **RESTRICTED,
                                               public_variant={"aggregate": "district", "min_count": 5}))
    assert replaced and entry.review == ["its public_variant changes: aggregate None -> 'district', columns None -> "
                                         "[], min_count None -> 5"]
    assert lookup(approved, "hotline.cases").manifest.public_variant is None  # the approved manifest still runs
    ingest(approved, lookup(approved, "hotline.cases"), run_id="meanwhile", force=True)
    assert "hotline.cases_public" not in tables(approved)

    review.approve(approved, "hotline.cases", "district counts are fine")
    ingest(approved, lookup(approved, "hotline.cases"), run_id="approved-variant")
    assert query(approved, 'SELECT district, "count" FROM hotline.cases_public') == [("310104", 12)]


def test_changing_the_source_goes_to_review_and_the_old_rows_keep_serving(approved: Hub, tmp_path):
    other = write(tmp_path / "elsewhere", "cases", rows(30, description=lambda i: "another department's file"),
                  **RESTRICTED)
    entry, _ = register(approved, other)
    assert any(r.startswith("its source changes: path") for r in entry.review)
    ingest(approved, lookup(approved, "hotline.cases"), run_id="meanwhile", force=True)
    assert query(approved, "SELECT count(*) FROM hotline.cases") == [(12,)]
    assert query(approved, "SELECT count(*) FROM hotline.cases WHERE description LIKE 'another%'") == [(0,)]


@pytest.mark.parametrize("change, reason", [
    ({"classification": "sensitive"}, "its classification changes: classification 'restricted' -> 'sensitive'"),
    ({"columns": {"district": {"classification": "public"}}}, "its column policies (columns:) change"),
])
def test_other_reviewed_keys(approved: Hub, tmp_path, change, reason):
    entry, _ = register(approved, write(tmp_path / "v2", "cases", rows(12), **{**RESTRICTED, **change}))
    assert reason in entry.review


def test_a_dataset_the_scan_raised_is_reviewed_like_a_sensitive_one(hub: Hub, tmp_path):
    """Declared internal, served sensitive (undeclared phones): a new public variant is reviewed too."""
    phones = rows(12, description=lambda i: f"来电1391234{i:04d}")
    ingest(hub, activate(hub, write(tmp_path / "v1", "calls", phones)), run_id="one")
    assert review.served_tier(hub, "hotline.calls") == "sensitive"
    entry, _ = register(hub, write(tmp_path / "v1", "calls", phones, public_variant={"grid_m": 500}))
    assert entry.review == ["its public_variant changes: columns None -> [], grid_m None -> 500.0, min_count None -> 5"]
    assert lookup(hub, "hotline.calls").manifest.public_variant is None
