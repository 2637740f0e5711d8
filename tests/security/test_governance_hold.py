"""Attack (issue 15, finding 6's second half): a department declares ``personal_data: none`` on a column of
phones to silence the scan. The version is held for a steward, not published as if it were clean."""

from __future__ import annotations

import pytest

from twinhub.hub import review
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.protection import VersionHeld

from .governance_city import activate, query, rows, tables, write

SILENCED = {"classification": "public", "columns": {"description": {"personal_data": "none"}}}


def test_personal_data_none_over_phones_holds_the_version(hub: Hub, tmp_path):
    phones = rows(10, description=lambda i: f"联系人电话138.1234.{i:04d}")
    entry = activate(hub, write(tmp_path, "codes", phones, **SILENCED))
    with pytest.raises(VersionHeld, match="columns declared personal_data: none hold personal data"):
        ingest(hub, entry, run_id="one")
    assert "hotline.codes" not in tables(hub)  # nothing published
    assert query(hub, "SELECT status FROM catalog.runs WHERE dataset = 'hotline.codes'") == [("failed",)]
    held = review.raised(hub, "hotline.codes")
    assert held is not None and held.held and "column description mobile in 10 values" in held.why

    ingest_again = pytest.raises(VersionHeld)
    with ingest_again:
        ingest(hub, entry, run_id="two")  # still held: nobody decided

    review.acknowledge(hub, "hotline.codes", "checked: these are pump serial numbers")
    ingest(hub, entry, run_id="three")
    assert query(hub, "SELECT count(*) FROM hotline.codes") == [(10,)]
    assert review.raised(hub, "hotline.codes") is None


def test_a_new_kind_in_a_confirmed_column_is_held_again(hub: Hub, tmp_path):
    entry = activate(hub, write(tmp_path / "a", "codes", rows(6, description=lambda i: f"1381234{i:04d}"),
                                **SILENCED))
    with pytest.raises(VersionHeld):
        ingest(hub, entry, run_id="one")
    review.acknowledge(hub, "hotline.codes", "serial numbers")
    ingest(hub, entry, run_id="two")
    with_emails = rows(6, description=lambda i: f"1381234{i:04d} owner{i}@example.cn")
    entry = activate(hub, write(tmp_path / "b", "codes", with_emails, **SILENCED))
    with pytest.raises(VersionHeld, match="email"):
        ingest(hub, entry, run_id="three")
    assert query(hub, "SELECT count(*) FROM hotline.codes WHERE description LIKE '%@%'") == [(0,)]
