"""Sources shaped like the ones guided registration got wrong (issue 16 item 6), made here with known answers.

- ``district_shapefile``: a 2017-style district layer of Shanghai, GBK DBF without a .cpg: an ``Id`` of zeros
  (what ArcGIS writes), the district names (``adname`` or ``区县名称``), pinyin initials in a column called
  ``NAME`` (``HP``, ``JA``), ``Shape_Area`` in square degrees and ``面积`` in km².
- ``poi_csv``: points of interest as a web map exports them: no id column, names that repeat (chains), and
  three-level categories ``医疗保健服务;综合医院;三级甲等医院``, some cells holding two joined by ``|``.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd
import pyproj
import shapely

# district, pinyin initials, centre (lon, lat), half-size in degrees (boxes: their true areas are computed below)
DISTRICTS = [
    ("黄浦区", "HP", 121.484, 31.223, 0.025), ("徐汇区", "XH", 121.437, 31.170, 0.045),
    ("长宁区", "CN", 121.393, 31.215, 0.040), ("静安区", "JA", 121.449, 31.262, 0.030),
    ("普陀区", "PT", 121.395, 31.262, 0.035), ("虹口区", "HK", 121.495, 31.272, 0.022),
    ("杨浦区", "YP", 121.531, 31.290, 0.038), ("闵行区", "MH", 121.420, 31.080, 0.090),
]
GEOD = pyproj.Geod(ellps="WGS84")


def district_frame() -> tuple[list[shapely.Polygon], pd.DataFrame]:
    """The districts' boxes and their true geodesic areas (km², the oracle)."""
    boxes = [shapely.box(x - h, y - h * 0.86, x + h, y + h * 0.86) for _, _, x, y, h in DISTRICTS]
    true_km2 = np.array([abs(GEOD.geometry_area_perimeter(b)[0]) / 1e6 for b in boxes])
    frame = pd.DataFrame({"name": [d[0] for d in DISTRICTS], "initials": [d[1] for d in DISTRICTS],
                          "deg2": shapely.area(np.array(boxes)), "km2": true_km2})
    return boxes, frame


def district_shapefile(folder: pathlib.Path, name_column: str = "adname") -> tuple[pathlib.Path, pd.DataFrame]:
    """The shapefile (GBK DBF, no .cpg) and the truth frame."""
    import geopandas as gpd

    boxes, truth = district_frame()
    rng = np.random.default_rng(2017)
    frame = gpd.GeoDataFrame({
        "Id": np.zeros(len(boxes), dtype=int),
        "NAME": truth["initials"],
        name_column: truth["name"],
        "Shape_Area": truth["deg2"],
        "面积": (truth["km2"] * rng.uniform(0.99, 1.01, len(boxes))).round(3),  # measured in some projection
    }, geometry=boxes, crs="EPSG:4326")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "区县界_2017.shp"
    frame.to_file(path, encoding="GBK", engine="pyogrio")
    path.with_suffix(".cpg").unlink(missing_ok=True)  # 2017 exports carry none: the encoding is detected
    return path, truth


CATEGORIES = [  # (category, how many) -- level 2 is what facility_category knows
    ("医疗保健服务;综合医院;三级甲等医院", 6), ("医疗保健服务;综合医院;普通医院", 9), ("医疗保健服务;诊所;诊所", 12),
    ("医疗保健服务;专科医院;口腔医院", 4), ("医疗保健服务;综合医院;卫生院", 5),
    ("医疗保健服务;诊所;诊所|购物服务;便利店;便利店", 3),  # two categories joined by |
]


def poi_csv(folder: pathlib.Path) -> tuple[pathlib.Path, pd.DataFrame]:
    """POIs without ids; 名称 repeats (chains) but 名称 + 地址 is unique."""
    rng = np.random.default_rng(7)
    rows = []
    for category, n in CATEGORIES:
        for i in range(n):
            chain = ["仁爱诊所", "社区医院", "康复医院"][i % 3] if n > 4 else f"{category.split(';')[1]}{i}"
            pair = len(rows) // 2  # two POIs at each address (a clinic in a hospital's building)
            rows.append({"名称": chain, "地址": f"{['漕溪北路', '淮海中路', '长寿路', '四平路'][pair % 4]}{100 + pair}号",
                         "类型": category, "区县": ["徐汇区", "黄浦区", "普陀区", "杨浦区"][i % 4],
                         "经度": round(121.40 + rng.uniform(0, 0.12), 6), "纬度": round(31.18 + rng.uniform(0, 0.1), 6)})
    frame = pd.DataFrame(rows)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "医疗POI.csv"
    frame.to_csv(path, index=False, encoding="utf-8")
    return path, frame
