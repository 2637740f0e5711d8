"""A catalog made by an older twinhub is brought up to date by Lake.ensure, keeping its rows."""

from __future__ import annotations

from twinhub.catalog import lake as lake_module
from twinhub.hub.home import Hub


def test_ensure_adds_columns_a_newer_twinhub_expects(tmp_path, monkeypatch):
    hub = Hub.open(tmp_path / "home")
    con = hub.lake.connect()
    try:
        con.execute("INSERT INTO catalog.datasets (dataset, title) VALUES ('water.wells', 'Wells')")
    finally:
        con.close()
    newer = dict(lake_module.META_TABLES)
    newer["datasets"] += ", steward VARCHAR, reviewed_at TIMESTAMPTZ"
    monkeypatch.setattr(lake_module, "META_TABLES", newer)

    hub.lake.ensure()
    hub.lake.ensure()  # a second time changes nothing

    con = hub.lake.connect(read_only=True)
    try:
        columns = [r[0] for r in con.execute("DESCRIBE catalog.datasets").fetchall()]
        rows = con.execute("SELECT dataset, title, steward, reviewed_at FROM catalog.datasets").fetchall()
    finally:
        con.close()
    assert columns[-2:] == ["steward", "reviewed_at"]
    assert rows == [("water.wells", "Wells", None, None)]


def test_ensure_adds_audit_columns_at_the_end(tmp_path, monkeypatch):
    hub = Hub.open(tmp_path / "home")
    monkeypatch.setattr(lake_module, "AUDIT_COLUMNS", (*lake_module.AUDIT_COLUMNS, ("reviewer", "VARCHAR")))
    hub.lake.ensure()
    con = hub.lake.connect(read_only=True)
    try:
        columns = [d[0] for d in con.execute(f"SELECT * FROM {hub.lake.audit_table} LIMIT 0").description]
    finally:
        con.close()
    assert columns[-3:] == ["query_id", "statement_sha256", "reviewer"]  # a new column goes last
