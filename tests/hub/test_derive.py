"""Derived fields, row filters and label levels (issue 16 item 1) through real registrations and runs.

A synthetic POI export as map providers deliver them: no id column, the same name at several
addresses, three-level categories (``医疗保健服务;综合医院;三级甲等医院``), some cells holding several
(``A;B;C|D;E;F``), pet clinics filed as hospitals. It goes in with no workaround: a key from name and
address, a constant district, the level-2 category mapped, the pet clinics filtered with their reason,
and every row accounted for: read = published + quarantined + filtered.
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import pytest
import yaml
from click.testing import CliRunner

from twinhub.cli.main import main
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup

DATASET = "health.poi"
HOSPITAL = "医疗保健服务;综合医院;三级甲等医院"
SPECIALIST = "医疗保健服务;专科医院;口腔医院"
CLINIC = "医疗保健服务;诊所;诊所"
PET = "医疗保健服务;宠物医院;宠物医院"
SHOP = "购物服务;便利店;便利店"
PET_REASON = "pet clinics are filed as hospitals"

# name, address, category cell, beds: the truth the assertions are computed from
ROWS = [
    ("社区卫生服务站", "浦东大道1号", CLINIC, "5"),
    ("社区卫生服务站", "浦东大道2号", CLINIC, ""),  # the same name at other addresses: other facilities
    ("社区卫生服务站", "张杨路3号", CLINIC, "x"),
    ("仁济医院", "东方路1630号", HOSPITAL, "1200"),
    ("口腔医院", "延安东路1号", SPECIALIST, "80"),
    ("安心宠物医院", "世纪大道8号", PET, ""),
    ("爱宠动物医院", "世纪大道9号", PET, "3"),
    ("东方医院", "即墨路150号", f"{HOSPITAL}|{CLINIC}", "600"),  # two values, two codes: the first wins
    ("便利药房诊所", "崂山路5号", f"{SHOP}|{CLINIC}", ""),  # the first value maps to nothing: the clinic
    ("急救站", "源深路2号", "医疗保健服务;急救中心;急救中心", ""),  # a level no label maps: quarantined
    ("重复诊所", "潍坊路7号", CLINIC, ""),
    ("重复诊所", "潍坊路7号", CLINIC, ""),  # the same facility twice: both held back (duplicate key)
    ("无地址诊所", None, CLINIC, "2"),  # no address: a CSV's blank cell is empty text, still a key
]


def _key(name: str, address: str | None) -> str:
    """The oracle: md5 over the marked values joined by the unit separator, 16 hex digits written as letters a-p."""
    parts = ["n" if v is None else "v" + v for v in (name, address)]
    return hashlib.md5("\x1f".join(parts).encode()).hexdigest()[:16].translate(str.maketrans("0123456789", "ghijklmnop"))


def _csv(folder: pathlib.Path) -> pathlib.Path:
    lines = ["名称,地址,类型,床位,经度,纬度"]
    for i, (name, address, category, beds) in enumerate(ROWS):
        lines.append(f"{name},{'' if address is None else address},{category},{beds},{121.50 + i / 1000:.4f},31.22")
    path = folder / "poi.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


MANIFEST = {
    "department": "health", "dataset": "poi", "title": "Medical POIs (map provider export)",
    "standard": "facility",
    "source": {"format": "csv", "path": "poi.csv", "crs": "EPSG:4490", "x": "经度", "y": "纬度"},
    "fields": {
        "facility_id": {"key": ["名称", "地址"]},
        "name": "名称",
        "district": {"constant": "浦东新区"},
        "address": "地址",
        "category": {"column": "类型", "split": "|", "separator": ";", "level": 2},
        "capacity": {"expression": "TRY_CAST(床位 AS INTEGER)"},
    },
    "labels": {"category": {"综合医院": "hospital", "专科医院": "hospital", "诊所": "clinic"}},
    "filter": [{"keep": "类型 NOT LIKE '%宠物%'", "reason": PET_REASON}],
}


def _write(folder: pathlib.Path, manifest: dict, name: str = "poi.yaml") -> pathlib.Path:
    path = folder / name
    path.write_text(yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    root = tmp_path_factory.mktemp("derive")
    hub = Hub.open(root / "home")
    folder = root / "health"
    folder.mkdir()
    _csv(folder)
    register(hub, _write(folder, MANIFEST))
    ingest(hub, lookup(hub, DATASET), run_id="poi-1")
    return hub


def _fetch(hub: Hub, sql: str, params: list | None = None) -> list[tuple]:
    con = hub.lake.connect(read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _cli(hub: Hub, *args: str):
    return CliRunner().invoke(main, [*args, "--home", str(hub.home)])


def test_key_constant_expression_and_level_publish_every_distinct_facility(hub):
    published = {r[0]: r[1:] for r in _fetch(
        hub, "SELECT facility_id, name, district, category, capacity FROM health.poi")}
    pets = {i for i, r in enumerate(ROWS) if r[2] == PET}
    duplicated = {10, 11}
    unmapped = {9}
    expected = {i for i in range(len(ROWS))} - pets - duplicated - unmapped
    assert set(published) == {_key(ROWS[i][0], ROWS[i][1] or "") for i in expected}
    assert len(published) == len(expected)  # three 社区卫生服务站 at three addresses: three facilities
    assert {r[1] for r in published.values()} == {"浦东新区"}
    by_name = {(r[0], k): r for k, r in published.items()}
    codes = {name: r[2] for (name, _), r in by_name.items()}
    assert codes["仁济医院"] == "hospital" and codes["口腔医院"] == "hospital"
    assert codes["东方医院"] == "hospital"  # 综合医院|诊所: the first value's code
    assert codes["便利药房诊所"] == "clinic"  # 便利店 maps to nothing; the next value does
    assert codes["社区卫生服务站"] == "clinic"
    capacity = {r[0]: r[3] for r in published.values() if r[0] != "社区卫生服务站"}
    assert capacity["仁济医院"] == 1200 and capacity["便利药房诊所"] is None


def test_filtered_rows_are_counted_with_their_reason_and_every_row_is_accounted_for(hub):
    (read, published, quarantined, filtered, details), = _fetch(
        hub, "SELECT rows_read, rows_published, rows_quarantined, rows_filtered, details FROM catalog.runs "
             "WHERE dataset = ? AND status = 'published'", [DATASET])
    pets = [i + 1 for i, r in enumerate(ROWS) if r[2] == PET]
    assert read == len(ROWS) and filtered == len(pets) and quarantined == 3
    assert read == published + quarantined + filtered
    record = json.loads(details)
    assert record["filter"]["by_reason"] == {PET_REASON: len(pets)}
    assert record["filter"]["source_rows"] == {PET_REASON: [[pets[0], pets[-1]]]}
    levels = record["labels"]["category"]["levels"]
    assert levels["multi_valued"] == 2 and levels["conflicting"] == 1
    assert list(levels["conflicting_examples"].values()) == [["hospital", "clinic"]]
    checks = dict(_fetch(hub, "SELECT source_row, checks FROM catalog.quarantine WHERE dataset = ?", [DATASET]))
    assert checks == {10: "label_unmapped", 11: "duplicate_key", 12: "duplicate_key"}
    record = json.loads(_fetch(hub, "SELECT record FROM catalog.quarantine WHERE dataset = ? AND source_row = 10",
                               [DATASET])[0][0])
    assert record["类型"] == "医疗保健服务;急救中心;急救中心"  # the source's own value, as the department wrote it


def test_ledger_and_trace_show_filtered_rows(hub):
    result = _cli(hub, "ledger", DATASET, "--format", "json")
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.output)
    assert (run["rows_read"], run["rows_filtered"], run["balanced"]) == (len(ROWS), 2, True)
    pet_row = next(i + 1 for i, r in enumerate(ROWS) if r[2] == PET)
    traced = _cli(hub, "trace", DATASET, "--row", str(pet_row))
    assert traced.exit_code == 0, traced.output
    assert f"source row {pet_row} of {DATASET}" in traced.output and f"filtered: {PET_REASON}" in traced.output
    published = _cli(hub, "trace", DATASET, "--row", "4")
    assert "published under key facility_id=" + repr(_key("仁济医院", "东方路1630号")) in published.output


def test_keys_are_the_same_in_the_next_run(hub):
    before = dict(_fetch(hub, "SELECT name || address, facility_id FROM health.poi WHERE address IS NOT NULL"))
    result = ingest(hub, lookup(hub, DATASET), run_id="poi-2", force=True)
    assert result.changes == {"added": 0, "updated": 0, "unchanged": result.rows_published, "deleted": 0}
    assert dict(_fetch(hub, "SELECT name || address, facility_id FROM health.poi WHERE address IS NOT NULL")) == before


@pytest.mark.slow
def test_the_run_summary_shows_the_filtered_rows(hub):
    """`twinhub run` (through Dagster) prints read, published, quarantined and filtered, which add up."""
    result = _cli(hub, "run", DATASET, "--force")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if line.lstrip().startswith("dataset"))
    row = next(line for line in result.output.splitlines() if line.startswith(DATASET + " "))  # the table's row
    figures = dict(zip(header.split(), row.split()))
    read, published, quarantined, filtered = (int(figures[k]) for k in ("read", "published", "quarantined", "filtered"))
    assert (read, quarantined, filtered) == (len(ROWS), 3, 2) and read == published + quarantined + filtered


def test_keys_hold_no_digits_so_the_privacy_scan_sees_no_phone_numbers():
    """As hex, ~3 in 1,000 keys hold a run of digits the scan reads as a phone number, which would raise every
    keyed dataset to sensitive; written as letters a-p they hold none (and stay the md5 of their values)."""
    import numpy as np
    import pandas as pd

    from twinhub.hub.derive import Derivation
    from twinhub.hub.manifest import parse_manifest
    from twinhub.standards.privacy import PrivacyScan

    n = 50_000
    frame = pd.DataFrame({"名称": [f"名称{i}" for i in range(n)], "地址": [f"地址{i % 977}号" for i in range(n)],
                          "类型": [CLINIC] * n, "床位": [""] * n}, dtype="str")
    derivation = Derivation(parse_manifest(MANIFEST, "poi.yaml"), list(frame.columns))
    try:
        keys = derivation.apply(frame, None, np.arange(1, n + 1)).frame["_twinhub_facility_id"]
    finally:
        derivation.close()
    assert keys.str.fullmatch("[a-p]{16}").all() and keys.nunique() == n
    assert keys[7] == _key("名称7", "地址7号")
    hex_keys = pd.Series([hashlib.md5(k.encode()).hexdigest()[:16] for k in keys], dtype="str")
    scan = PrivacyScan()
    scan.feed(pd.DataFrame({"hex": hex_keys}))
    assert scan.found() == {"hex": ["landline", "mobile"]}  # the oracle that the scan would have fired
    scan = PrivacyScan()
    scan.feed(pd.DataFrame({"facility_id": keys}))
    assert scan.found() == {}
