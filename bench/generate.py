"""Synthetic departmental sources for the benchmarks, generated fast and in chunks.

- ``facilities.csv``: GBK, GCJ-02 lng/lat (经度, 纬度) and ten attribute columns,
  as a district's civil-affairs bureau exports it: a hierarchical label column (类型,
  ``社会福利;养老院``); ``facilities.yaml`` is its manifest (standard ``facility``), with
  the manifest's derived fields (docs/registering.md): the key made from 名称 and 地址,
  the district a constant, the category the hierarchy's last level, and a filter that
  leaves out the closed facilities (备注 ``已停业``).
- ``buildings.gpkg``: building footprints (5-vertex polygons) in EPSG:4549 with ten
  attribute columns, a label column (用途) among them; ``buildings.yaml`` registers
  it (standard ``building``).

About 1 % of the facilities carry a label the manifest does not map, so the
quarantine path is exercised too, and about 0.5 % are closed, so the filter path
is: ``Sources`` says how many rows each source should hold back and leave out.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely

from twinhub.standards.chinese_crs import wgs84_to_gcj02

CHUNK = 250_000
KINDS = np.array(["社会福利;养老院", "社会福利;日间照料中心", "社会福利;敬老院", "医疗卫生;社区卫生服务中心",
                  "社会福利;老年活动室"])  # hierarchical: the manifest takes the last level
KIND_P = [0.4, 0.3, 0.19, 0.1, 0.01]  # 老年活动室 is unmapped: about 1 % quarantined
UNMAPPED_KIND = 4
USES = np.array(["住宅", "商业", "办公", "厂房", "学校", "医院", "综合楼", "其他"])
DISTRICTS = np.array(["黄浦区", "徐汇区", "长宁区", "静安区", "普陀区", "虹口区", "杨浦区", "浦东新区"])
STREETS = np.array(["陆家嘴街道", "潍坊新村街道", "洋泾街道", "塘桥街道", "花木街道", "张江镇", "川沙新镇", "金桥镇"])
CLOSED_P = 0.005  # 备注 已停业: left out by the manifest's filter
CLOSED = "已停业"
BOX = (121.35, 31.12, 121.6, 31.32)  # central Shanghai, WGS 84

FACILITY_MANIFEST = """\
department: bench
dataset: facilities_{rows}
title: Synthetic care facilities ({rows} rows)
standard: facility
source: {{format: csv, path: facilities.csv, encoding: gbk, crs: GCJ-02, x: 经度, y: 纬度}}
fields:
  facility_id: {{key: [名称, 地址]}}
  name: 名称
  category: {{column: 类型, separator: ";", level: -1}}
  district: {{constant: 浦东新区}}
  address: 地址
  capacity: 床位
labels: {{category: {{养老院: elderly_care_home, 敬老院: elderly_care_home, 日间照料中心: day_care_centre,
                     社区卫生服务中心: clinic}}}}
filter:
  - {{keep: "备注 IS DISTINCT FROM '已停业'", reason: closed facilities are not published}}
"""

BUILDING_MANIFEST = """\
department: bench
dataset: buildings_{rows}
title: Synthetic building footprints ({rows} rows)
standard: building
source: {{format: gpkg, path: buildings.gpkg}}
fields: {{building_id: 编号, name: 名称, use: 用途, floors_above: 地上层数, floors_below: 地下层数, height_m: 高度,
         floor_area_m2: 建筑面积, year_built: 建成年份, address: 地址}}
labels: {{use: {{住宅: residential, 商业: commercial, 办公: office, 厂房: industrial, 学校: education, 医院: health,
                综合楼: mixed_use, 其他: other}}}}
"""


@dataclass(frozen=True)
class Sources:
    folder: pathlib.Path
    rows: int
    csv: pathlib.Path
    csv_manifest: pathlib.Path
    gpkg: pathlib.Path
    gpkg_manifest: pathlib.Path
    csv_quarantined: int  # rows of the CSV with the unmapped label (and open)
    csv_filtered: int = 0  # rows of the CSV the manifest's filter leaves out (closed)

    @property
    def csv_dataset(self) -> str:
        return f"bench.facilities_{self.rows}"

    @property
    def gpkg_dataset(self) -> str:
        return f"bench.buildings_{self.rows}"


def _text(prefix: str, numbers: np.ndarray) -> np.ndarray:
    return np.char.add(prefix, numbers.astype(str)).astype(object)


def facility_chunk(rng: np.random.Generator, start: int, n: int) -> tuple[pd.DataFrame, int, int]:
    """``n`` facility rows from ``start``; how many are open with the unmapped label, and how many closed."""
    ids = np.arange(start, start + n)
    lon, lat = rng.uniform(BOX[0], BOX[2], n), rng.uniform(BOX[1], BOX[3], n)
    glon, glat = wgs84_to_gcj02(lon, lat)
    kind = rng.choice(len(KINDS), n, p=KIND_P)
    closed = rng.random(n) < CLOSED_P
    frame = pd.DataFrame({
        "编号": np.char.add("F", np.char.zfill(ids.astype(str), 9)),
        "名称": _text("机构", ids),
        "类型": KINDS[kind],
        "街道": STREETS[rng.integers(0, len(STREETS), n)],
        "地址": _text("某路", rng.integers(1, 2000, n)),
        "床位": rng.integers(10, 400, n),
        "电话": _text("021-6", rng.integers(1_000_000, 9_999_999, n)),
        "开放时间": np.where(rng.random(n) < 0.5, "08:00-17:00", "全天"),
        "负责人": _text("负责人", rng.integers(1, 5000, n)),
        "备注": np.where(closed, CLOSED, np.where(rng.random(n) < 0.9, "", "需预约")),
        "经度": np.round(glon, 7),
        "纬度": np.round(glat, 7),
    })
    return frame, int(((kind == UNMAPPED_KIND) & ~closed).sum()), int(closed.sum())


def write_csv(path: pathlib.Path, rows: int, seed: int = 1) -> tuple[int, int]:
    """The GBK CSV in chunks; returns how many rows should be quarantined (open, unmapped label) and
    how many filtered (closed)."""
    rng = np.random.default_rng(seed)
    unmapped = closed = 0
    with path.open("w", encoding="gbk", newline="") as fh:
        for start in range(0, rows, CHUNK):
            frame, bad, shut = facility_chunk(rng, start, min(CHUNK, rows - start))
            frame.to_csv(fh, index=False, header=start == 0)
            unmapped, closed = unmapped + bad, closed + shut
    return unmapped, closed


def building_chunk(rng: np.random.Generator, start: int, n: int, to_4549: pyproj.Transformer) -> tuple[np.ndarray, dict]:
    """``n`` footprints (WKB, EPSG:4549) from ``start`` and their attribute columns."""
    ids = np.arange(start, start + n)
    x, y = to_4549.transform(rng.uniform(BOX[0], BOX[2], n), rng.uniform(BOX[1], BOX[3], n))
    w, h = rng.uniform(8, 40, n), rng.uniform(8, 40, n)
    ring = np.stack([np.stack([x, y], 1), np.stack([x + w, y], 1), np.stack([x + w, y + h], 1),
                     np.stack([x, y + h], 1), np.stack([x, y], 1)], 1)  # (n, 5, 2), counter-clockwise
    polygons = shapely.polygons(ring)
    floors = rng.integers(1, 40, n)
    fields = {
        "编号": np.char.add("B", np.char.zfill(ids.astype(str), 9)).astype(object),
        "名称": _text("楼", ids),
        "用途": USES[rng.integers(0, len(USES), n)].astype(object),
        "地上层数": floors.astype("int32"),
        "地下层数": rng.integers(0, 4, n).astype("int32"),
        "高度": np.round(floors * 3.1, 1),
        "建筑面积": np.round(w * h * floors, 1),
        "建成年份": rng.integers(1950, 2025, n).astype("int32"),
        "地址": _text("某路", rng.integers(1, 2000, n)),
        "区": DISTRICTS[rng.integers(0, len(DISTRICTS), n)].astype(object),
    }
    return shapely.to_wkb(polygons), fields


def write_gpkg(path: pathlib.Path, rows: int, seed: int = 2) -> None:
    """The EPSG:4549 GeoPackage, appended in chunks (no spatial index: GDAL would build it at the end)."""
    rng = np.random.default_rng(seed)
    to_4549 = pyproj.Transformer.from_crs("EPSG:4490", "EPSG:4549", always_xy=True)
    path.unlink(missing_ok=True)
    for start in range(0, rows, CHUNK):
        wkb, fields = building_chunk(rng, start, min(CHUNK, rows - start), to_4549)
        pyogrio.raw.write(
            str(path), wkb, list(fields.values()), list(fields), driver="GPKG", layer="buildings",
            geometry_type="Polygon", crs="EPSG:4549", encoding="UTF-8", append=start > 0,
            layer_options={"SPATIAL_INDEX": "NO"},
        )


def generate(folder: pathlib.Path, rows: int) -> Sources:
    """Both sources of ``rows`` rows and their manifests in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, gpkg_path = folder / "facilities.csv", folder / "buildings.gpkg"
    unmapped, closed = write_csv(csv_path, rows)
    write_gpkg(gpkg_path, rows)
    (folder / "facilities.yaml").write_text(FACILITY_MANIFEST.format(rows=rows), encoding="utf-8")
    (folder / "buildings.yaml").write_text(BUILDING_MANIFEST.format(rows=rows), encoding="utf-8")
    return Sources(folder, rows, csv_path, folder / "facilities.yaml", gpkg_path, folder / "buildings.yaml", unmapped,
                   closed)
