"""SQL functions for China's web-map coordinates (GCJ-02, BD-09) in ``twinhub query``, every dialect.

A point read off Amap or Tencent Maps is in GCJ-02, one off Baidu Maps in BD-09; the catalog is in
the city's CRS (WGS 84 / CGCS2000 lon/lat, the same to a metre). These functions convert, in SQL:

    SELECT gcj02_to_wgs84(ST_Point(121.4912, 31.2416))          -- a geometry (a point) in, a point out
    SELECT gcj02_to_wgs84(121.4912, 31.2416)                    -- lon, lat in: {'lon': ..., 'lat': ...}
    SELECT name FROM water.pumping_stations
      WHERE ST_DWithin(geometry, bd09_to_wgs84(ST_Point(121.5, 31.24)), 0.005)

``wgs84_to_gcj02``, ``gcj02_to_wgs84``, ``gcj02_to_bd09``, ``bd09_to_gcj02``, ``wgs84_to_bd09`` and
``bd09_to_wgs84`` are DuckDB macros: the public formulas of standards/chinese_crs.py written in SQL
(vectorized like any DuckDB expression), its constants taken from there, its iterative inverses
unrolled (GCJ-02: 5 fixed-point steps, each shrinking the error ~100-fold; BD-09: Baidu's one-step
inverse and 3 steps), so SQL and numpy agree to well below 1e-9 degrees (tests/catalog/
test_sql_chinese_crs.py). They are created in each query's sandbox (catalog/sandbox.py) before it is
locked; the guard allows exactly the names in :data:`FUNCTIONS`, not the helper macros they call.

A lambda (``list_transform([value], v -> ...)[1]``) binds each intermediate value once: a macro
argument is pasted wherever it is used, so nested steps written without it would grow exponentially.
"""

from __future__ import annotations

import duckdb

from twinhub.standards.chinese_crs import CONSTANTS

#: The functions users may call (the guard's allow-list takes them from here).
FUNCTIONS: frozenset[str] = frozenset({
    "wgs84_to_gcj02", "gcj02_to_wgs84", "gcj02_to_bd09", "bd09_to_gcj02", "wgs84_to_bd09", "bd09_to_wgs84",
})
GCJ02_STEPS = 5  # fixed-point steps of the GCJ-02 inverse: the error shrinks >100-fold per step from ~5e-3 degrees
BD09_STEPS = 3  # refinements of Baidu's one-step inverse (its error ~1e-6 degrees, shrinking ~1000-fold)
_HELPER = "__twinhub_"  # helper macros: not on the guard's allow-list, so only the public ones can be called


def _num(value: float) -> str:
    """A constant of standards/chinese_crs.py as a SQL number (repr of a float: digits, '.', 'e', '-')."""
    text = repr(float(value))
    if not all(c in "0123456789.e-+" for c in text):
        raise ValueError(f"not a finite number: {value!r}")
    return text


def _offset_sql() -> str:
    """``__twinhub_gcj02_offset(lon, lat)``: GCJ-02's {dlon, dlat} to add to WGS 84 (0 outside China)."""
    a, ee = _num(CONSTANTS["a"]), _num(CONSTANTS["ee"])
    lon_min, lat_min, lon_max, lat_max = (_num(v) for v in CONSTANTS["china"])
    dlat = ("(-100.0 + 2.0 * v.x + 3.0 * v.y + 0.2 * v.y * v.y + 0.1 * v.x * v.y + 0.2 * sqrt(abs(v.x))"
            " + (20.0 * sin(6.0 * v.x * pi()) + 20.0 * sin(2.0 * v.x * pi())) * 2.0 / 3.0"
            " + (20.0 * sin(v.y * pi()) + 40.0 * sin(v.y / 3.0 * pi())) * 2.0 / 3.0"
            " + (160.0 * sin(v.y / 12.0 * pi()) + 320.0 * sin(v.y * pi() / 30.0)) * 2.0 / 3.0)")
    dlon = ("(300.0 + v.x + 2.0 * v.y + 0.1 * v.x * v.x + 0.1 * v.x * v.y + 0.1 * sqrt(abs(v.x))"
            " + (20.0 * sin(6.0 * v.x * pi()) + 20.0 * sin(2.0 * v.x * pi())) * 2.0 / 3.0"
            " + (20.0 * sin(v.x * pi()) + 40.0 * sin(v.x / 3.0 * pi())) * 2.0 / 3.0"
            " + (150.0 * sin(v.x / 12.0 * pi()) + 300.0 * sin(v.x / 30.0 * pi())) * 2.0 / 3.0)")
    magic = f"(1.0 - {ee} * v.s * v.s)"
    return (
        f"{_HELPER}gcj02_offset(lon, lat) AS CASE "
        f"WHEN lon < {lon_min} OR lon > {lon_max} OR lat < {lat_min} OR lat > {lat_max} "
        "THEN {'dlon': 0.0::DOUBLE, 'dlat': 0.0::DOUBLE} "
        "ELSE list_transform([{'x': lon - 105.0, 'y': lat - 35.0, 's': sin(radians(lat)), 'c': cos(radians(lat))}], "
        f"v -> {{'dlon': {dlon} * 180.0 / ({a} / sqrt({magic}) * v.c * pi()), "
        f"'dlat': {dlat} * 180.0 / (({a} * (1.0 - {ee})) / ({magic} * sqrt({magic})) * pi())}})[1] END"
    )


def _macros() -> list[str]:
    """The helper and public lon/lat macros, as ``name(args) AS body`` (each created on its own)."""
    x_pi = _num(CONSTANTS["x_pi"])
    bd_dlon, bd_dlat = _num(CONSTANTS["bd_dlon"]), _num(CONSTANTS["bd_dlat"])
    h = _HELPER
    point = "{'lon': lon::DOUBLE, 'lat': lat::DOUBLE}"
    gcj_inverse = f"{h}gcj02_step(t, t)"
    for _ in range(GCJ02_STEPS - 1):
        gcj_inverse = f"list_transform([{gcj_inverse}], p -> {h}gcj02_step(p, t))[1]"
    bd_inverse = f"list_transform([{h}bd09_approx(t.lon, t.lat)], p -> {h}bd09_step(p, t))[1]"
    for _ in range(BD09_STEPS - 1):
        bd_inverse = f"list_transform([{bd_inverse}], p -> {h}bd09_step(p, t))[1]"
    return [
        _offset_sql(),
        # one fixed-point step towards the WGS 84 point whose GCJ-02 is t: t - offset(p)
        f"{h}gcj02_step(p, t) AS list_transform([{h}gcj02_offset(p.lon, p.lat)], "
        "d -> {'lon': t.lon - d.dlon, 'lat': t.lat - d.dlat})[1]",
        f"{h}bd09_forward(lon, lat) AS list_transform([{{'x': lon, 'y': lat}}], v -> list_transform("
        f"[{{'z': sqrt(v.x * v.x + v.y * v.y) + 0.00002 * sin(v.y * {x_pi}), "
        f"'t': atan2(v.y, v.x) + 0.000003 * cos(v.x * {x_pi})}}], "
        f"w -> {{'lon': w.z * cos(w.t) + {bd_dlon}, 'lat': w.z * sin(w.t) + {bd_dlat}}})[1])[1]",
        f"{h}bd09_approx(lon, lat) AS list_transform([{{'x': lon - {bd_dlon}, 'y': lat - {bd_dlat}}}], v -> "
        f"list_transform([{{'z': sqrt(v.x * v.x + v.y * v.y) - 0.00002 * sin(v.y * {x_pi}), "
        f"'t': atan2(v.y, v.x) - 0.000003 * cos(v.x * {x_pi})}}], "
        "w -> {'lon': w.z * cos(w.t), 'lat': w.z * sin(w.t)})[1])[1]",
        # p - (forward(p) - t)
        f"{h}bd09_step(p, t) AS list_transform([{h}bd09_forward(p.lon, p.lat)], "
        "f -> {'lon': p.lon - (f.lon - t.lon), 'lat': p.lat - (f.lat - t.lat)})[1]",
        f"{h}wgs84_to_gcj02(lon, lat) AS list_transform([{point}], "
        f"p -> list_transform([{h}gcj02_offset(p.lon, p.lat)], d -> {{'lon': p.lon + d.dlon, 'lat': p.lat + d.dlat}})[1])[1]",
        f"{h}gcj02_to_wgs84(lon, lat) AS list_transform([{point}], t -> {gcj_inverse})[1]",
        f"{h}gcj02_to_bd09(lon, lat) AS {h}bd09_forward(lon::DOUBLE, lat::DOUBLE)",
        f"{h}bd09_to_gcj02(lon, lat) AS list_transform([{point}], t -> {bd_inverse})[1]",
        f"{h}wgs84_to_bd09(lon, lat) AS list_transform([{h}wgs84_to_gcj02(lon, lat)], "
        f"p -> {h}bd09_forward(p.lon, p.lat))[1]",
        f"{h}bd09_to_wgs84(lon, lat) AS list_transform([{h}bd09_to_gcj02(lon, lat)], "
        f"p -> {h}gcj02_to_wgs84(p.lon, p.lat))[1]",
    ]


def _public(name: str, geometry: bool) -> str:
    """``name(lon, lat)`` (a {lon, lat} struct; NULL when either is NULL) and, with spatial, ``name(point)``.

    Each argument is used once (bound by a lambda): nested calls stay linear in size, not exponential."""
    pair = (f"(lon, lat) AS list_transform([{{'lon': lon, 'lat': lat}}], a -> CASE WHEN a.lon IS NULL OR a.lat "
            f"IS NULL THEN NULL ELSE {_HELPER}{name}(a.lon, a.lat) END)[1]")
    if not geometry:
        return f"{name}{pair}"
    refusal = f"{name}(geometry) converts points only: pass ST_Centroid(geometry) or ST_PointOnSurface(geometry)"
    point = (f"(geom) AS list_transform([geom], g -> CASE WHEN g IS NULL THEN NULL "
             f"WHEN ST_GeometryType(g)::VARCHAR <> 'POINT' THEN error('{refusal}') "
             f"ELSE list_transform([{_HELPER}{name}(ST_X(g), ST_Y(g))], p -> ST_Point(p.lon, p.lat))[1] END)[1]")
    return f"{name}{point}, {pair}"


def install(con: duckdb.DuckDBPyConnection, geometry: bool = True) -> None:
    """Create the functions as temporary macros on ``con`` (``geometry``: also the point forms, which
    need the spatial extension loaded)."""
    for macro in _macros():
        con.execute(f"CREATE OR REPLACE TEMP MACRO {macro}")
    for name in sorted(FUNCTIONS):
        con.execute(f"CREATE OR REPLACE TEMP MACRO {_public(name, geometry)}")
