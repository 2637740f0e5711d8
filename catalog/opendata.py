"""The catalog in open metadata formats: DCAT-AP 3 (JSON-LD), Frictionless Data Package, STAC.

Each export writes the open datasets' data files beside the metadata (under
``data/``) so every distribution, resource and asset points at a real file.
Datasets classified ``restricted`` are never written, in data or metadata; nor are
columns classified ``sensitive`` or ``restricted`` (catalog/column_tiers.py).

* **DCAT-AP 3**: a ``dcat:Catalog`` of ``dcat:Dataset``s, each published by its
  department (``foaf:Agent``), with a GeoParquet distribution, its spatial
  extent (``dcat:bbox``), update frequency (EU frequency vocabulary, from the
  manifest's schedule) and every version as a ``dcat:Dataset`` of its own
  linked by ``dcat:hasVersion`` / ``dcat:previousVersion`` with its release
  notes as ``adms:versionNotes``.
* **Data Package**: one CSV resource per dataset (geometry as WKT) with its
  Table Schema (types, primary key), valid for ``frictionless validate``.
* **STAC**: a catalog with one collection per dataset, the projection
  extension (``proj:code``, ``proj:projjson``, ``proj:bbox``) on its GeoParquet asset.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import pathlib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import pyarrow.csv as pa_csv
import pyproj
import shapely

from twinhub.catalog import audit, layer_entries
from twinhub.catalog.cadence import FREQUENCY_BASE, cadence
from twinhub.catalog.export import NEVER_OPEN, ExportError, Table, read_table, write
from twinhub.catalog.lake import META_SCHEMA, Lake
from twinhub.catalog.notes import column_facts, release_notes
from twinhub.catalog.versions import dataset_versions
from twinhub.errors import UserError
from twinhub.standards.licences import licence_title, licence_url

FORMATS = {"dcat": "catalog.jsonld", "datapackage": "datapackage.json", "stac": "catalog.json"}
CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "adms": "http://www.w3.org/ns/adms#",
    "locn": "http://www.w3.org/ns/locn#",
    "gsp": "http://www.opengis.net/ont/geosparql#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
}
FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
ACCESS_RIGHTS = "http://publications.europa.eu/resource/authority/access-right/"
PARQUET = "application/vnd.apache.parquet"
STAC_VERSION = "1.1.0"
PROJECTION = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
FRICTIONLESS_TYPES = {"VARCHAR": "string", "BOOLEAN": "boolean", "DATE": "date", "DOUBLE": "number",
                      "FLOAT": "number", "REAL": "number"}


class CatalogExportError(UserError, ValueError):
    """The catalog export cannot be made; the message says what to do."""


def _frictionless_type(kind: str) -> str:
    if kind.startswith("TIMESTAMP"):
        return "datetime"
    if kind.startswith("DECIMAL"):
        return "number"
    if kind in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"):
        return "integer"
    return FRICTIONLESS_TYPES.get(kind, "string")


def _open_datasets(con, derived_inputs: dict[str, list[str]] | None = None) -> list[dict]:
    """The departments' datasets, city layers and derived tables open exports may carry (their entries;
    a city layer's and derived table's synthesized: catalog/layer_entries.py)."""
    cursor = con.execute(f"SELECT * FROM {META_SCHEMA}.datasets ORDER BY dataset")
    names = [d[0] for d in cursor.description]
    entries = [dict(zip(names, r)) for r in cursor.fetchall()]
    entries += [layer_entries.synthesized(con, t, derived_inputs, NEVER_OPEN) for t in layer_entries.built_tables(con)]
    return [e for e in entries if e is not None and e["classification"] not in NEVER_OPEN]


@dataclass(frozen=True)
class Publishing:
    """Who publishes the catalog and under which terms: the city (its standards pack) and the manifests."""

    publisher: str = "twinhub"  # the city: dct:publisher of the catalog, licensor in STAC
    licence: str = "CC-BY-4.0"  # the city's default licence (SPDX id)
    licences: dict[str, str] = field(default_factory=dict)  # dataset -> its manifest's own licence
    licence_urls: dict[str, str] = field(default_factory=dict)  # LicenseRef-<name> -> the city's document

    def of(self, dataset: str) -> str:
        return self.licences.get(dataset) or self.licence

    def url(self, dataset: str) -> str:
        return licence_url(self.of(dataset), self.licence_urls)


def export_catalog(lake: Lake, fmt: str, out: pathlib.Path, force: bool = False,
                   schedules: dict[str, str | None] | None = None, base_url: str | None = None,
                   title: str = "twinhub catalog", department: str | None = None,
                   publishing: Publishing | None = None,
                   derived_inputs: dict[str, list[str]] | None = None,
                   retired: Collection[str] = ()) -> pathlib.Path:
    """Write the open part of the catalog to the folder ``out`` in ``fmt``; return the metadata file.

    ``derived_inputs``: each ``derived.<name>`` -> the tables it reads (without it, derived tables count
    as restricted and are left out). ``retired``: datasets a steward retired (the registry's to say):
    their versions stay in the catalog but they are no longer published openly."""
    if fmt not in FORMATS:
        raise CatalogExportError(f"unknown catalog format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = pathlib.Path(out)
    target = out / FORMATS[fmt]
    if target.exists() and not force:
        raise CatalogExportError(f"{target} already exists: use --force to replace it, or --out to write elsewhere")
    (out / "data").mkdir(parents=True, exist_ok=True)
    base = base_url or (out.resolve().as_uri() + "/")
    base = base if base.endswith("/") else base + "/"
    entry = audit.AuditEntry(action="export-catalog", statement=f"export-catalog as {fmt}", department=department)
    with audit.audited(lake, entry, {CatalogExportError: "refused"}):
        con = lake.connect(read_only=True)
        try:
            datasets = []
            for e in _open_datasets(con, derived_inputs):
                if e["dataset"] in retired:
                    continue
                try:  # sensitive columns left out; of a city layer, the rows of inputs never exported openly
                    table = read_table(con, e["dataset"], text_geometry=fmt == "datapackage",
                                       derived_inputs=derived_inputs)
                except ExportError:  # every column is above the open audience: nothing to publish openly
                    continue
                datasets.append({"entry": e, "table": table, "columns": [c for c in column_facts(con, e["dataset"])
                                                                         if c["name"] not in table.withheld],
                                 "versions": dataset_versions(con, e["dataset"]),
                                 "notes": release_notes(con, e["dataset"])})
        finally:
            con.close()
        builder: Callable = {"dcat": _dcat, "datapackage": _datapackage, "stac": _stac}[fmt]
        document = builder(datasets, out, base, schedules or {}, title, publishing or Publishing())
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(document, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        tmp.replace(target)
        entry.tables = [d["entry"]["dataset"] for d in datasets]
        entry.rows_returned = sum(d["table"].rows for d in datasets)
    return target


def _iso(value) -> str | None:
    return value.isoformat() if isinstance(value, (dt.datetime, dt.date)) else value


def _extent(table: Table) -> list[float] | None:
    if not table.geometry or not table.wkb:
        return None
    bounds = shapely.total_bounds(shapely.from_wkb(table.wkb))
    return [float(v) for v in bounds] if all(map(math.isfinite, bounds)) else None


def _outward(bbox: list[float] | tuple[float, ...], digits: int = 7) -> list[float]:
    """Round a bounding box outward to ``digits`` decimals: the rounded box still holds every feature."""
    scale = 10 ** digits
    minx, miny, maxx, maxy = bbox
    return [math.floor(minx * scale) / scale, math.floor(miny * scale) / scale,
            math.ceil(maxx * scale) / scale, math.ceil(maxy * scale) / scale]


def _wgs84_bbox(bbox: list[float], crs: pyproj.CRS) -> list[float]:
    if crs.is_geographic:
        return _outward(bbox)
    tr = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return _outward(tr.transform_bounds(*bbox, densify_pts=21))


# --------------------------------------------------------------------------- DCAT-AP 3


def _typed(iri: str, kind: str) -> dict:
    """A reference that also states its class: DCAT-AP 3's SHACL shapes check the class of every range."""
    return {"@id": iri, "@type": kind}


def _dcat(datasets: list[dict], out: pathlib.Path, base: str, schedules: dict, title: str,
          publishing: Publishing) -> dict:
    graph: list[dict] = []
    departments = sorted({d["entry"]["department"] for d in datasets})
    catalog = {"@id": f"{base}catalog", "@type": "dcat:Catalog", "dct:title": title,
               "dct:description": "Datasets published by the city's departments through twinhub.",
               "dct:publisher": {"@id": f"{base}publisher"},
               "dct:license": _typed(licence_url(publishing.licence, publishing.licence_urls), "dct:LicenseDocument"),
               "dct:modified": {"@value": dt.datetime.now(dt.timezone.utc).isoformat(), "@type": "xsd:dateTime"},
               "dcat:dataset": [{"@id": f"{base}dataset/{d['entry']['dataset']}"} for d in datasets]}
    graph.append(catalog)
    graph.append({"@id": f"{base}publisher", "@type": "foaf:Agent", "foaf:name": publishing.publisher})
    for dep in departments:
        graph.append({"@id": f"{base}department/{dep}", "@type": "foaf:Agent", "foaf:name": dep})
    for d in datasets:
        graph.extend(_dcat_dataset(d, out, base, schedules.get(d["entry"]["dataset"]), publishing))
    return {"@context": CONTEXT, "@graph": graph}


def _dcat_dataset(d: dict, out: pathlib.Path, base: str, schedule: str | None, publishing: Publishing) -> list[dict]:
    e, table = d["entry"], d["table"]
    ident = e["dataset"]
    iri = f"{base}dataset/{ident}"
    path = out / "data" / f"{ident}.parquet"
    write(table, "geoparquet", path)
    frequency, _ = cadence(schedule)
    node = {
        "@id": iri, "@type": "dcat:Dataset", "dct:identifier": ident, "dct:title": e["title"],
        "dct:description": (e["description"] or e["title"]).strip(),
        "dct:publisher": {"@id": f"{base}department/{e['department']}"},
        "dct:accrualPeriodicity": _typed(FREQUENCY_BASE + frequency, "dct:Frequency"),
        "dct:accessRights": _typed(ACCESS_RIGHTS + ("PUBLIC" if e["classification"] == "public" else "RESTRICTED"),
                                   "dct:RightsStatement"),
        "dcat:keyword": sorted({k for k in (e["department"], e["standard"]) if k}
                               | {c["name"] for c in d["columns"] if c["is_label"]}),
        "dcat:distribution": [{"@id": f"{iri}/distribution/geoparquet"}],
    }
    if e["standard"]:  # a derived table follows no standard of the hub
        node["dct:conformsTo"] = _typed(f"{base}standard/{e['standard']}/{e['standard_version']}", "dct:Standard")
    if e["updated_at"] is not None:
        node["dct:modified"] = {"@value": _iso(e["updated_at"]), "@type": "xsd:dateTime"}
    bbox = _extent(table)
    if bbox:
        minx, miny, maxx, maxy = _wgs84_bbox(bbox, table.crs)
        wkt = f"POLYGON(({minx} {miny},{maxx} {miny},{maxx} {maxy},{minx} {maxy},{minx} {miny}))"
        node["dct:spatial"] = {"@type": "dct:Location", "dcat:bbox": {"@value": wkt, "@type": "gsp:wktLiteral"}}
    nodes = [node, {
        "@id": f"{iri}/distribution/geoparquet", "@type": "dcat:Distribution", "dct:title": f"{ident} (GeoParquet)",
        "dcat:accessURL": {"@id": f"{base}data/{ident}.parquet"},
        "dcat:downloadURL": {"@id": f"{base}data/{ident}.parquet"},
        "dcat:mediaType": _typed(f"https://www.iana.org/assignments/media-types/{PARQUET}", "dct:MediaType"),
        "dct:format": _typed(FILE_TYPE + "PARQUET", "dct:MediaTypeOrExtent"),
        "dct:license": _typed(publishing.url(ident), "dct:LicenseDocument"),
        "dcat:byteSize": {"@value": str(path.stat().st_size), "@type": "xsd:nonNegativeInteger"},
        "dct:conformsTo": _typed("https://geoparquet.org/releases/v1.1.0/", "dct:Standard"),
    }]
    versions = sorted(d["versions"], key=lambda v: v["version"])
    if versions:
        node["dcat:version"] = str(versions[-1]["version"])
        node["dcat:hasVersion"] = [{"@id": f"{iri}/version/{v['version']}"} for v in versions]
        node["dcat:hasCurrentVersion"] = {"@id": f"{iri}/version/{versions[-1]['version']}"}
    for previous, v in zip([None] + versions[:-1], versions):
        version = {"@id": f"{iri}/version/{v['version']}", "@type": "dcat:Dataset",
                   "dct:title": f"{e['title']} (version {v['version']})", "dcat:version": str(v["version"]),
                   "dct:issued": {"@value": _iso(v["published_at"]), "@type": "xsd:dateTime"},
                   "dct:isVersionOf": {"@id": iri}}
        summary = (d["notes"].get(v["run_id"]) or {}).get("summary")
        version["dct:description"] = summary or f"Version {v['version']} of {e['title']}."
        if summary:
            version["adms:versionNotes"] = summary
        if previous:
            version["dcat:previousVersion"] = {"@id": f"{iri}/version/{previous['version']}"}
        nodes.append(version)
    return nodes


# --------------------------------------------------------------------------- Data Package


def _licence_entry(publishing: Publishing, dataset: str | None = None) -> dict:
    spdx = publishing.of(dataset) if dataset else publishing.licence
    return {"name": spdx, "path": licence_url(spdx, publishing.licence_urls), "title": licence_title(spdx)}


def _datapackage(datasets: list[dict], out: pathlib.Path, base: str, schedules: dict, title: str,
                 publishing: Publishing) -> dict:
    resources = []
    for d in datasets:
        e, table = d["entry"], d["table"]
        path = out / "data" / f"{e['dataset']}.csv"
        write_csv(table, path)
        fields = []
        for c in d["columns"]:
            field = {"name": c["name"], "type": "string" if c["is_geometry"] else _frictionless_type(c["type"])}
            if c["is_geometry"]:
                field["description"] = f"geometry as WKT in {e['target_crs']}"
            if c["is_key"]:
                field["constraints"] = {"required": True}
            fields.append(field)
        schema = {"fields": fields}
        key = [c["name"] for c in d["columns"] if c["is_key"]]
        if key:
            schema["primaryKey"] = key
        resources.append({
            "name": e["dataset"], "path": f"data/{e['dataset']}.csv", "title": e["title"],
            "description": (e["description"] or "").strip(), "format": "csv", "mediatype": "text/csv",
            "encoding": "utf-8", "schema": schema, "licenses": [_licence_entry(publishing, e["dataset"])],
            "sources": [{"title": f"{e['department']} via twinhub"
                                  + (f", standard {e['standard']} {e['standard_version']}" if e["standard"] else "")}],
        })
    return {"name": "twinhub-catalog", "title": title, "created": dt.datetime.now(dt.timezone.utc).isoformat(),
            "licenses": [_licence_entry(publishing)], "resources": resources}


def write_csv(table: Table, path: pathlib.Path) -> None:
    """CSV with geometry already as WKT text (``read_table(text_geometry=True)``)."""
    tmp = path.with_name(path.name + ".tmp")
    pa_csv.write_csv(table.attributes, tmp)
    tmp.replace(path)


# --------------------------------------------------------------------------- STAC


def _stac(datasets: list[dict], out: pathlib.Path, base: str, schedules: dict, title: str,
          publishing: Publishing) -> dict:
    root = {"type": "Catalog", "stac_version": STAC_VERSION, "id": "twinhub", "title": title,
            "description": "Datasets published by the city's departments through twinhub.",
            "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"},
                      {"rel": "self", "href": f"{base}catalog.json", "type": "application/json"}]}
    for d in datasets:
        ident = d["entry"]["dataset"]
        collection = _stac_collection(d, out, base, publishing)
        folder = out / ident
        folder.mkdir(exist_ok=True)
        (folder / "collection.json").write_text(json.dumps(collection, ensure_ascii=False, indent=2, default=str),
                                                encoding="utf-8")
        root["links"].append({"rel": "child", "href": f"./{ident}/collection.json", "type": "application/json",
                              "title": d["entry"]["title"]})
    return root


def _stac_collection(d: dict, out: pathlib.Path, base: str, publishing: Publishing) -> dict:
    e, table = d["entry"], d["table"]
    ident = e["dataset"]
    write(table, "geoparquet", out / "data" / f"{ident}.parquet")
    bbox = _extent(table)
    code = f"EPSG:{table.crs.to_epsg()}" if table.crs.to_epsg() else None
    versions = sorted(d["versions"], key=lambda v: v["version"])
    start = _iso(versions[0]["published_at"]) if versions else None
    asset = {"href": f"../data/{ident}.parquet", "type": PARQUET, "title": f"{e['title']} (GeoParquet)",
             "roles": ["data"], "proj:code": code, "proj:projjson": table.crs.to_json_dict()}
    if bbox:
        asset["proj:bbox"] = _outward(bbox, 7 if table.crs.is_geographic else 3)
    spdx = publishing.of(ident)
    return {
        "type": "Collection", "stac_version": STAC_VERSION, "stac_extensions": [PROJECTION], "id": ident,
        "title": e["title"], "description": (e["description"] or e["title"]).strip(), "license": spdx if not spdx.startswith("LicenseRef-") else "other",
        "keywords": [k for k in (e["department"], e["standard"]) if k],
        "providers": [{"name": e["department"], "roles": ["producer"]},
                      {"name": publishing.publisher, "roles": ["licensor"]},
                      {"name": "twinhub", "roles": ["processor", "host"]}],
        "extent": {"spatial": {"bbox": [_wgs84_bbox(bbox, table.crs) if bbox else [-180, -90, 180, 90]]},
                   "temporal": {"interval": [[start, None]]}},
        "summaries": {"proj:code": [code]},
        "version": str(versions[-1]["version"]) if versions else None,
        "assets": {"data": asset},
        "links": [{"rel": "root", "href": "../catalog.json", "type": "application/json"},
                  {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
                  {"rel": "self", "href": f"{base}{ident}/collection.json", "type": "application/json"},
                  {"rel": "license", "href": publishing.url(ident), "title": licence_title(spdx)}],
    }
