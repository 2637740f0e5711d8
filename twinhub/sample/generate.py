"""Generate the sample city's departmental sources from known true positions.

    python -m twinhub.sample.generate

Four departments, each the way real ones publish: a GBK CSV with Chinese
headers in GCJ-02 (civil affairs), a zipped GBK Shapefile in CGCS2000 /
3-degree Gauss-Kruger CM 120E, EPSG:4549 (water), a WGS 84 GeoJSON with English
labels (emergency), and an Excel sheet with BD-09 coordinates under a title
row (health). Each carries planted defects. ``truth.csv`` records, for every
source row, its true position in EPSG:4490 and what the hub should do with
it (``published`` or the quarantine check), so tests can check both.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import pathlib
import tempfile
import zipfile

import geopandas as gpd
import numpy as np
import openpyxl
import shapely

from twinhub.standards.chinese_crs import wgs84_to_bd09, wgs84_to_gcj02
from twinhub.standards.crs import transform_xy

ROOT = pathlib.Path(__file__).parent
CITY = ROOT / "city"
SEED = 2026
CENTRE_BOX = (121.35, 31.12, 121.60, 31.32)  # central Shanghai, lon/lat
DISTRICTS = ["黄浦区", "徐汇区", "长宁区", "静安区", "普陀区", "虹口区", "杨浦区", "浦东新区"]
STREETS = ["南京西路", "淮海中路", "四川北路", "长寿路", "控江路", "世纪大道", "天山路", "漕溪北路"]
BEIJING = (116.404, 39.915)
HANGZHOU = (120.16, 30.27)


def _positions(rng: np.random.Generator, n: int) -> np.ndarray:
    minx, miny, maxx, maxy = CENTRE_BOX
    return np.column_stack([rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)])


def _truth_row(dataset, source_row, ident, pos, expected):
    lon, lat = (None, None) if pos is None else (f"{pos[0]:.9f}", f"{pos[1]:.9f}")
    return {"dataset": dataset, "source_row": source_row, "id": ident, "lon": lon, "lat": lat, "expected": expected}


def elderly_care(rng: np.random.Generator) -> list[dict]:
    """civil_affairs: GBK CSV, Chinese headers, GCJ-02 lng/lat."""
    n = 24
    pos = _positions(rng, n)
    defects = {5: "label_unmapped", 9: "outside_city", 13: "duplicate_key", 17: "required", 21: "type"}
    rows, truth = [], []
    for i in range(1, n + 1):
        kind = ["养老院", "日间照料中心", "敬老院", "养老院 "][i % 4]
        ident = f"MZ-{i:04d}"
        beds = str(int(rng.integers(20, 300))) if kind.strip() != "日间照料中心" else ""
        lon, lat = pos[i - 1]
        expected = defects.get(i, "published")
        if i == 5:
            kind = "老年活动室"
        if i == 9:
            lon, lat = BEIJING
        if i == 13:
            ident = "MZ-0003"
        if i == 21:
            beds = "约50"
        glon, glat = wgs84_to_gcj02(lon, lat)
        x, y = (f"{glon:.9f}", f"{glat:.9f}") if i != 17 else ("", "")
        district = DISTRICTS[i % len(DISTRICTS)]
        rows.append([ident, f"{district}{STREETS[i % len(STREETS)]}第{i}{kind.strip()}", kind, district,
                     f"{district}{STREETS[i % len(STREETS)]}{i * 7}号", beds, x, y])
        truth.append(_truth_row("civil_affairs.elderly_care", i, ident, None if i == 17 else (lon, lat), expected))
    truth[2]["expected"] = "duplicate_key"  # MZ-0003 appears twice: both rows are held back
    path = CITY / "civil_affairs" / "elderly_care.csv"
    with path.open("w", encoding="gbk", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["机构编号", "机构名称", "机构类型", "所属区", "地址", "床位数", "经度", "纬度"])
        writer.writerows(rows)
    return truth


def pumping_stations(rng: np.random.Generator) -> list[dict]:
    """water: zipped GBK Shapefile in EPSG:4549 (northing-first authority order)."""
    n = 18
    pos = _positions(rng, n)
    defects = {4: "label_unmapped", 8: "outside_city", 11: "duplicate_key", 15: "required"}
    records, geoms, truth = [], [], []
    for i in range(1, n + 1):
        lon, lat = pos[i - 1]
        ident = f"PS{i:03d}" if i != 11 else "PS002"
        kind = "雨水泵站" if i % 2 else "污水泵站"
        if i == 4:
            kind = "排涝闸站"
        if i == 8:
            lon, lat = HANGZHOU
        x, y = transform_xy(lon, lat, "EPSG:4490", "EPSG:4549")
        geoms.append(None if i == 15 else shapely.Point(x, y))
        records.append({"STN_CODE": ident, "STN_NAME": f"{STREETS[i % len(STREETS)]}{kind}{i}号", "STN_TYPE": kind,
                        "CAP_M3S": round(float(rng.uniform(1, 30)), 2)})
        truth.append(_truth_row("water.pumping_stations", i, ident, None if i == 15 else (lon, lat),
                                defects.get(i, "published")))
    truth[1]["expected"] = "duplicate_key"  # PS002 appears twice
    frame = gpd.GeoDataFrame(records, geometry=geoms, crs="EPSG:4549")
    target = CITY / "water" / "pumping_stations.zip"
    with tempfile.TemporaryDirectory() as tmp:
        shp = pathlib.Path(tmp) / "pumping_stations.shp"
        frame.to_file(shp, driver="ESRI Shapefile", encoding="GBK")
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
            for part in sorted(pathlib.Path(tmp).iterdir()):
                info = zipfile.ZipInfo(part.name, date_time=(2026, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, part.read_bytes())
    return truth


def shelters(rng: np.random.Generator, near: np.ndarray) -> list[dict]:
    """emergency: WGS 84 GeoJSON with English labels; half lie within ~300 m of a care home."""
    n = 20
    pos = _positions(rng, n)
    for i in range(0, n, 2):  # offset 150-350 m from a care home, in a random direction
        base = near[i % len(near)]
        d, a = rng.uniform(150, 350), rng.uniform(0, 2 * np.pi)
        pos[i] = base + [d * np.cos(a) / (111_320 * np.cos(np.radians(base[1]))), d * np.sin(a) / 110_574]
    defects = {3: "label_unmapped", 7: "outside_city", 10: "duplicate_key", 14: "required"}
    features, truth = [], []
    for i in range(1, n + 1):
        lon, lat = pos[i - 1]
        ident = f"EM-{i:03d}" if i != 10 else "EM-001"
        kind = ["Emergency Shelter", "EVACUATION POINT", "shelter", "Evacuation shelter"][i % 4]
        if i == 3:
            kind = "Sports hall"
        if i == 7:
            lon, lat = 0.0, 0.0
        geometry = None if i == 14 else {"type": "Point", "coordinates": [round(lon, 9), round(lat, 9)]}
        features.append({
            "type": "Feature",
            "properties": {"shelter_id": ident, "name": f"Shelter {i} {STREETS[i % len(STREETS)]}", "type": kind,
                           "capacity": int(rng.integers(100, 5000)), "address": f"{i * 11} {STREETS[i % len(STREETS)]}"},
            "geometry": geometry,
        })
        truth.append(_truth_row("emergency.shelters", i, ident, None if i == 14 else (lon, lat),
                                defects.get(i, "published")))
    truth[0]["expected"] = "duplicate_key"  # EM-001 appears twice
    path = CITY / "emergency" / "shelters.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False, indent=1),
                    encoding="utf-8")
    return truth


def health_centres(rng: np.random.Generator) -> list[dict]:
    """health: Excel, title row then header row, BD-09 coordinates."""
    n = 16
    pos = _positions(rng, n)
    defects = {4: "label_unmapped", 8: "outside_city", 11: "duplicate_key", 13: "required"}
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "社区卫生服务中心"
    ws.append(["2026年社区卫生服务机构名录（坐标：百度BD-09）"])
    ws.append(["编号", "名称", "类别", "地址", "经度", "纬度", "服务人口"])
    truth = []
    for i in range(1, n + 1):
        lon, lat = pos[i - 1]
        ident = f"WJ{i:03d}" if i != 11 else "WJ005"
        kind = ["社区卫生服务中心", "卫生站", "医院", "社区卫生服务中心"][i % 4]
        if i == 4:
            kind = "药店"
        blon, blat = wgs84_to_bd09(lon, lat)
        x, y = (round(blon, 9), round(blat, 9))
        if i == 8:
            x, y = y, x  # lat/lon swapped by hand
        if i == 13:
            x = y = None
        ws.append([ident, f"{DISTRICTS[i % 8]}{STREETS[i % 8]}{kind}", kind, f"{STREETS[i % 8]}{i * 3}号", x, y,
                   int(rng.integers(20_000, 90_000))])
        # the hub reports spreadsheet row numbers: title row 1, header row 2, data from row 3
        truth.append(_truth_row("health.health_centres", i + 2, ident, None if i == 13 else (lon, lat),
                                defects.get(i, "published")))
    truth[4]["expected"] = "duplicate_key"  # WJ005 appears twice
    wb.properties.created = wb.properties.modified = dt.datetime(2026, 1, 1)
    wb.save(CITY / "health" / "health_centres.xlsx")
    return truth


def generate() -> pathlib.Path:
    rng = np.random.default_rng(SEED)
    for department in ("civil_affairs", "water", "emergency", "health"):
        (CITY / department).mkdir(parents=True, exist_ok=True)
    truth = elderly_care(rng)
    care_homes = np.array([[float(t["lon"]), float(t["lat"])] for t in truth if t["expected"] == "published"])
    truth += pumping_stations(rng) + shelters(rng, care_homes) + health_centres(rng)
    path = ROOT / "truth.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(truth[0]))
        writer.writeheader()
        writer.writerows(truth)
    return path


if __name__ == "__main__":
    print(f"wrote {generate()}")
