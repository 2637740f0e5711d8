"""Small hotline datasets for the governance attack tests: a CSV and a manifest per dataset, registered
through the real registration (and review), run through the real ingest."""

from __future__ import annotations

import csv
import pathlib

import yaml

from twinhub.hub import review
from twinhub.hub.home import Hub
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup

FIELDS = {"request_id": "编号", "opened_at": "时间", "status": "状态", "category": "类别",
          "description": "描述", "address": "地址", "district": "区"}


def resident_id(region: str = "310104", birth: str = "19800101", seq: str = "123") -> str:
    """An 18-character resident ID number with its GB 11643 check digit."""
    body = region + birth + seq
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]


def rows(n: int, description=lambda i: "路灯不亮", district=lambda i: "310104", opened=lambda i: "2024-05-01 10:00",
         request_id=lambda i: f"R{i:04d}") -> list[dict]:
    return [{"编号": request_id(i), "时间": opened(i), "状态": "open", "类别": "street_cleaning",
             "描述": description(i), "地址": f"漕溪北路{i}号", "区": district(i),
             "lon": f"{121.40 + i * 0.0013:.6f}", "lat": f"{31.20 + i * 0.0007:.6f}"} for i in range(n)]


def write(folder: pathlib.Path, name: str, data: list[dict], **manifest) -> pathlib.Path:
    """A CSV ``name.csv`` and its manifest ``name.yaml`` (department hotline, standard service_request)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{name}.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(data[0]))
        writer.writeheader()
        writer.writerows(data)
    keys = {"department": "hotline", "dataset": name, "title": f"Hotline {name}", "standard": "service_request",
            "source": {"format": "csv", "path": f"{name}.csv", "crs": "EPSG:4490", "x": "lon", "y": "lat"},
            "fields": dict(FIELDS), **manifest}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(keys, allow_unicode=True), encoding="utf-8")
    return path


def activate(hub: Hub, path: pathlib.Path, reason: str = "test: reviewed"):
    """Register ``path``; a registration waiting for review is approved by the steward."""
    entry, _ = register(hub, path)
    if entry.review:
        review.approve(hub, entry.id, reason)
    return lookup(hub, entry.id)


def query(hub: Hub, sql: str, params: list | None = None) -> list[tuple]:
    con = hub.lake.connect(read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def tables(hub: Hub) -> set[str]:
    return {f"{s}.{t}" for s, t in query(hub, "SELECT schema_name, table_name FROM duckdb_tables() "
                                              "WHERE database_name = 'lake'")}
