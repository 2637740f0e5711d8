"""What is here? The features of every department within a distance of a point.

Distances are true metres on the ellipsoid, for points, lines and polygons
alike: each candidate geometry is projected to an azimuthal equidistant
projection centred on the point (where the distance from the centre is the
geodesic distance), and measured there. Candidates are first cut to the
circle's bounding box in the catalog's CRS, so large tables stay fast.

A point given in another CRS (``crs``: e.g. GCJ-02 read off Amap or Tencent
Maps, BD-09 off Baidu Maps, or any EPSG code) is converted to the catalog's
CRS first (:func:`to_catalog_crs`): searched as it is, a GCJ-02 point is
300-600 m from what it names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyproj

from twinhub.catalog import audit
from twinhub.catalog.lake import META_SCHEMA, Lake
from twinhub.catalog.notes import column_facts, q
from twinhub.catalog.query import locked_connection
from twinhub.errors import UserError
from twinhub.standards.crs import UnknownCRS, resolve_crs, transform_xy

MAX_PER_DATASET = 1000


class NearRefused(UserError, ValueError):
    """The point or the radius cannot be searched around; the message says which and why."""


@dataclass
class Feature:
    dataset: str
    department: str
    distance_m: float
    attributes: dict
    wkt: str


def _centre(x: float, y: float, crs: pyproj.CRS) -> tuple[float, float, str]:
    """Lon/lat of the point and the PROJ string of the equidistant projection around it."""
    geodetic = crs.geodetic_crs
    lon, lat = pyproj.Transformer.from_crs(crs, geodetic, always_xy=True).transform(x, y)
    if not (math.isfinite(lon) and math.isfinite(lat)) or abs(lat) > 90:
        raise NearRefused(f"({x}, {y}) is not a position in {crs.name}: X is longitude/easting, Y latitude/northing")
    ellipsoid = geodetic.ellipsoid
    proj = (f"+proj=aeqd +lat_0={lat!r} +lon_0={lon!r} +a={ellipsoid.semi_major_metre!r} "
            f"+rf={ellipsoid.inverse_flattening!r} +units=m +no_defs")
    return lon, lat, proj


def _search_box(proj: str, crs: pyproj.CRS, radius: float) -> tuple[float, float, float, float]:
    """The circle's bounding box in the catalog CRS (sampled around the circle, with a margin)."""
    back = pyproj.Transformer.from_crs(pyproj.CRS.from_proj4(proj), crs, always_xy=True)
    r = radius * 1.02 + 1
    ring = [(r * math.cos(a), r * math.sin(a)) for a in (i * math.pi / 32 for i in range(64))]
    xs, ys = back.transform([p[0] for p in ring], [p[1] for p in ring])
    return min(xs), min(ys), max(xs), max(ys)


def _features(con, source: str, proj: str, box: tuple[float, float, float, float], radius_m: float,
              entry: audit.AuditEntry, access=None) -> list[Feature]:
    features: list[Feature] = []
    owners = con.execute(f"SELECT dataset, department FROM {META_SCHEMA}.datasets ORDER BY 1").fetchall()
    layers = [(dataset, owner, c["name"], [f["name"] for f in column_facts(con, dataset)])
              for dataset, owner in owners for c in column_facts(con, dataset) if c["is_geometry"]]
    for dataset, owner, column, names in layers:
        g = q(column)
        shown = f"* EXCLUDE ({g}, _metres)"
        if access is not None:  # `--as CONSUMER`: the query rule, dataset by dataset (catalog/export_access.py)
            shown = _consumer_columns(con, access, dataset, column, names)
            if shown is None:
                continue
        cursor = con.execute(
            f"""SELECT {shown}, ST_AsText({g}) AS _wkt, _metres FROM (
                    SELECT *, ST_Distance(ST_Transform({g}, ?, ?, always_xy := true), ST_Point(0, 0)) AS _metres
                    FROM {dataset} WHERE ST_Intersects_Extent({g}, ST_MakeEnvelope(?, ?, ?, ?)))
                WHERE _metres <= ? ORDER BY _metres LIMIT {MAX_PER_DATASET}""",
            [source, proj, *box, radius_m],
        )
        names = [d[0] for d in cursor.description]
        for row in cursor.fetchall():
            record = dict(zip(names, row))
            features.append(Feature(dataset, owner, round(record.pop("_metres"), 2), record, record.pop("_wkt")))
        entry.tables.append(dataset)
    entry.rows_returned = len(features)
    return features


def _consumer_columns(con, access, dataset: str, geometry: str, names: list[str]) -> str | None:
    """The select list of what the consumer sees of ``dataset`` (None: leave the dataset out)."""
    from twinhub.catalog.export_access import near_view

    view = near_view(access, dataset, names, geometry)
    if view is None:
        return None
    from twinhub.catalog.masking import protect_sql

    shown = []
    for name in names:
        if name == geometry or name in view.withheld:
            continue
        shown.append(f"{protect_sql(q(name), view.protected[name], dataset=dataset)} AS {q(name)}" if name in view.protected
                     else q(name))
    return ", ".join(shown) or "NULL AS _nothing_readable"


def to_catalog_crs(x: float, y: float, crs: str | None, target_crs: str) -> tuple[float, float]:
    """(x, y) given in ``crs`` (None: already the catalog's) as a position in ``target_crs``.

        >>> [round(v, 6) for v in to_catalog_crs(121.4912, 31.2416, "gcj02", "EPSG:4326")]
        [121.48672, 31.243573]
    """
    if crs is None:
        return x, y
    try:
        source = resolve_crs(crs)
    except UnknownCRS:
        raise NearRefused(f"--crs {crs!r} is not a CRS: use gcj02 (Amap, Tencent), bd09 (Baidu), wgs84 "
                          "or an EPSG code such as EPSG:4549") from None
    tx, ty = transform_xy(x, y, source, target_crs)
    if not (math.isfinite(tx) and math.isfinite(ty)):
        raise NearRefused(f"({x}, {y}) in {source.name} has no position in {target_crs}: X is longitude/easting, "
                          "Y latitude/northing")
    return tx, ty


def near(lake: Lake, x: float, y: float, radius_m: float, target_crs: str,
         department: str | None = None, who=None, crs: str | None = None) -> list[Feature]:
    """Features of every dataset within ``radius_m`` metres of (x, y), nearest first.

    (x, y) is in ``crs`` (GCJ-02, BD-09, an EPSG code, ...), by default the catalog's CRS ``target_crs``.
    ``who`` (catalog.enforce.AsConsumer): only the datasets and columns that consumer may read."""
    if not (0 < radius_m <= 100_000):
        raise NearRefused(f"--radius must be between 0 and 100000 metres, got {radius_m:g}")
    given = f" ({crs})" if crs is not None else ""
    x0, y0 = x, y
    x, y = to_catalog_crs(x, y, crs, target_crs)
    crs = pyproj.CRS.from_user_input(target_crs)
    _, _, proj = _centre(x, y, crs)
    minx, miny, maxx, maxy = _search_box(proj, crs, radius_m)
    source = crs.to_string() if crs.to_epsg() is None else f"EPSG:{crs.to_epsg()}"
    entry = audit.AuditEntry(action="near", statement=f"near {x0} {y0}{given} radius {radius_m:g} m",
                             department=department if who is None else who.consumer.department,
                             consumer=None if who is None else who.consumer.name)
    with audit.audited(lake, entry):
        con = locked_connection(lake)
        try:
            access = None
            if who is not None:
                from twinhub.catalog.masking import register_functions

                access = who.access(con, lake)
                register_functions(con)  # for pseudonymized columns (when the key is set)
            features = _features(con, source, proj, (minx, miny, maxx, maxy), radius_m, entry, access)
        finally:
            con.close()
    return sorted(features, key=lambda f: (f.distance_m, f.dataset))
