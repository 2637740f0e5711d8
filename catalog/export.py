"""Open exports of one dataset: GeoParquet 1.1, GeoPackage, GeoJSON, CSV.

GeoParquet files carry the CRS as PROJJSON, a ``bbox`` covering column and
rows sorted along a Hilbert curve over the dataset's extent, so readers that
filter by area (GDAL, DuckDB, geopandas) skip most of the file. Files are
written beside the target and moved into place, so a failed export never
leaves half a file; an existing file is replaced only with ``force``.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import geopandas
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pyproj
from sqlglot import exp

from twinhub.catalog import audit, column_tiers, layer_entries
from twinhub.catalog.access import DERIVED
from twinhub.catalog.lake import META_SCHEMA, Lake
from twinhub.catalog.notes import q
from twinhub.errors import UserError

FORMATS = {"geoparquet": ".parquet", "gpkg": ".gpkg", "geojson": ".geojson", "csv": ".csv"}
NEVER_OPEN = frozenset({"restricted"})  # classifications never exported to open formats


class ExportError(UserError, ValueError):
    """The export cannot be made; the message says what to do."""


@dataclass
class ExportResult:
    dataset: str
    path: pathlib.Path
    format: str
    rows: int
    crs: str
    classification: str = ""  # the dataset's tier
    withheld: tuple[str, ...] = ()  # columns left out (above the audience, or the consumer's grant)
    protected: tuple[str, ...] = ()  # columns written masked or pseudonymized (--as CONSUMER)


@dataclass
class Table:
    """A dataset read for export: attributes as Arrow, geometry as WKB, its CRS and entry."""

    entry: dict
    attributes: pa.Table
    geometry: str | None
    wkb: list | None
    crs: pyproj.CRS
    withheld: tuple[str, ...] = ()  # columns above the open audience, left out (catalog/column_tiers.py)
    protected: tuple[str, ...] = ()  # columns read masked or pseudonymized (a consumer's export)

    @property
    def rows(self) -> int:
        return self.attributes.num_rows

    def frame(self) -> pd.DataFrame:
        """Attributes as pandas, integers kept as integers (nullable)."""
        mapping = {t: pd.Int64Dtype() for t in (pa.int8(), pa.int16(), pa.int32(), pa.int64())}
        return self.attributes.to_pandas(types_mapper=mapping.get)

    def geodataframe(self) -> geopandas.GeoDataFrame:
        geometry = geopandas.GeoSeries.from_wkb(self.wkb, crs=self.crs) if self.geometry else None
        return geopandas.GeoDataFrame(self.frame(), geometry=geometry, crs=self.crs if self.geometry else None)


def entry_of(con, dataset: str, derived_inputs: dict[str, list[str]] | None = None) -> dict:
    """The catalog entry of ``dataset``; for a city layer or derived table (no entry of their own), one
    synthesized from its inputs (catalog/layer_entries.py)."""
    cursor = con.execute(f"SELECT * FROM {META_SCHEMA}.datasets WHERE dataset = ?", [dataset])
    row = cursor.fetchone()
    if row is not None:
        return dict(zip([d[0] for d in cursor.description], row))
    entry = layer_entries.synthesized(con, dataset, derived_inputs, NEVER_OPEN)
    if entry is None:
        known = [r[0] for r in con.execute(f"SELECT dataset FROM {META_SCHEMA}.datasets ORDER BY 1").fetchall()]
        known += layer_entries.built_tables(con)
        raise ExportError(f"{dataset!r} is not in the catalog; published datasets: {', '.join(known) or 'none'}")
    return entry


def read_table(con, dataset: str, text_geometry: bool = False, view=None,
               derived_inputs: dict[str, list[str]] | None = None) -> Table:
    """Read ``dataset`` spatially sorted (Hilbert curve over its extent); geometry as WKB (or WKT text).

    ``view`` (catalog/export_access.py): what one consumer may have; default: the open audience's columns
    and, of a city layer, the rows of its inputs that open exports may carry."""
    entry = entry_of(con, dataset, derived_inputs) if view is None else entry_of(con, dataset)
    department, name = dataset.split(".", 1)
    table = f"{q(department)}.{q(name)}"
    if view is not None:
        withheld = view.withheld
    elif "_columns" in entry:  # a city layer or derived table: its tiers come from its inputs'
        withheld = column_tiers.withheld_by(entry["_columns"])
    else:
        withheld = column_tiers.withheld_from_open(con, dataset)
    where = _where(view.inputs if view is not None else None, entry.get("_rows") if view is None else None)
    protected = view.protected if view is not None else {}
    types = [(c, t) for c, t in con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'lake' AND schema_name = ? "
        "AND table_name = ? ORDER BY column_index", [department, name]).fetchall() if c not in withheld]
    if not types:
        raise ExportError(f"{dataset}: every column is classified sensitive or restricted: nothing can be exported "
                          "to open formats (its public variant may be: docs/governance.md)")
    geometry = next((c for c, t in types if t.startswith("GEOMETRY")), None)
    select = [_protected_column(c, protected[c], dataset) if c in protected else _export_column(c, t)
              for c, t in types if c != geometry]
    order = "1"
    if geometry:
        g = q(geometry)
        box = con.execute(f"SELECT min(ST_XMin({g})), min(ST_YMin({g})), max(ST_XMax({g})), max(ST_YMax({g})) "
                          f"FROM {table}{where}").fetchone()
        if box[0] is not None:
            order = f"ST_Hilbert({g}, ST_MakeBox2D(ST_Point({box[0]!r}, {box[1]!r}), ST_Point({box[2]!r}, {box[3]!r})))"
        select.append(f"ST_AsText({g}) AS {g}" if text_geometry else f"ST_AsWKB({g}) AS {g}")
    arrow = con.execute(f"SELECT {', '.join(select)} FROM {table}{where} ORDER BY {order}, 1").fetch_arrow_table()
    if hasattr(arrow, "read_all"):
        arrow = arrow.read_all()
    wkb = None
    if geometry and not text_geometry:
        wkb = [bytes(v) if v is not None else None for v in arrow.column(geometry).to_pylist()]
        arrow = arrow.drop_columns([geometry])
    return Table(entry, arrow, geometry, wkb, pyproj.CRS.from_user_input(entry["target_crs"]), tuple(sorted(withheld)),
                 tuple(sorted(protected)))


def _where(inputs: list[str] | None, rows: exp.Expression | None) -> str:
    """`` WHERE <the city layer's rows of inputs>`` (a consumer's) or of ``rows`` (the open audience's)."""
    condition = layer_entries.rows_of(inputs) if inputs is not None else rows
    return "" if condition is None else f" WHERE {condition.sql(dialect='duckdb')}"


def _protected_column(column: str, protection: str, dataset: str) -> str:
    from twinhub.catalog.masking import protect_sql

    return f"{protect_sql(q(column), protection, dataset=dataset)} AS {q(column)}"


def _export_column(column: str, kind: str) -> str:
    c = q(column)
    if kind.startswith("TIMESTAMP"):
        return f"strftime({c}, '%Y-%m-%dT%H:%M:%S') AS {c}"
    if kind == "DATE":
        return f"CAST({c} AS VARCHAR) AS {c}"
    return c


def write(table: Table, fmt: str, path: pathlib.Path) -> None:
    """Write ``table`` to ``path`` in ``fmt`` (a temporary file moved into place)."""
    tmp = path.with_name(f".{path.name}.tmp{FORMATS[fmt]}")
    tmp.unlink(missing_ok=True)
    try:
        if fmt == "geoparquet" and not table.geometry:  # none, or withheld from open exports: plain Parquet
            pq.write_table(table.attributes, tmp, compression="zstd")
        elif fmt == "geoparquet":
            table.geodataframe().to_parquet(tmp, schema_version="1.1.0", write_covering_bbox=True,
                                            geometry_encoding="WKB", index=False, compression="zstd")
        elif fmt == "gpkg":
            layer = table.entry["dataset"].replace(".", "__")
            table.geodataframe().to_file(tmp, driver="GPKG", layer=layer, engine="pyogrio")
        elif fmt == "geojson":
            # RFC 7946: WGS 84 longitude/latitude, no "crs" member, 7 decimals (about 1 cm), right-hand
            # polygons; GDAL's GeoJSON driver reprojects from the dataset's CRS when asked for it.
            table.geodataframe().to_file(tmp, driver="GeoJSON", engine="pyogrio",
                                         layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": "7",
                                                        "WRITE_BBOX": "YES"})
        else:  # csv: geometry as WKT
            frame = table.frame()
            if table.geometry:
                frame[table.geometry] = geopandas.GeoSeries.from_wkb(table.wkb).to_wkt(rounding_precision=-1, trim=True)
            pa_csv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def export_dataset(lake: Lake, dataset: str, fmt: str, out: pathlib.Path | None = None, force: bool = False,
                   department: str | None = None, who=None,
                   derived_inputs: dict[str, list[str]] | None = None) -> ExportResult:
    """Export the served version of ``dataset``; refuse restricted datasets and existing files without force.

    ``who`` (catalog.enforce.AsConsumer): export for that consumer, as its grants allow
    (catalog/export_access.py; of a city layer, only the rows of the inputs it may read); default: the
    open audience (no sensitive or restricted column; of a city layer, no row of an input never exported
    openly). ``derived_inputs``: each ``derived.<name>`` -> the tables it reads (the hub knows them);
    without it a derived table counts as restricted."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    path = pathlib.Path(out) if out else pathlib.Path(f"{dataset}{FORMATS[fmt]}")
    if path.is_dir():
        path = path / f"{dataset}{FORMATS[fmt]}"
    if path.exists() and not force:
        raise ExportError(f"{path} already exists: use --force to replace it, or --out to write elsewhere")
    if not path.parent.is_dir():
        raise ExportError(f"{path.parent} is not a folder: create it first, or choose another --out")
    entry = audit.AuditEntry(action="export", statement=f"export {dataset} as {fmt}", tables=[dataset],
                             department=department if who is None else who.consumer.department,
                             consumer=None if who is None else who.consumer.name)
    with audit.audited(lake, entry, {ExportError: "refused"}):
        con = lake.connect(read_only=True)
        try:
            if who is not None and dataset.split(".", 1)[0] == DERIVED:
                raise ExportError(f"{dataset}: derived tables are exported for the open audience only; for "
                                  f"{who.consumer.name}'s view use `twinhub query --as` instead")
            tier = entry_of(con, dataset, derived_inputs)["classification"]
            if tier in NEVER_OPEN:  # refused before reading any row
                raise ExportError(f"{dataset} is classified {tier}: it is never exported "
                                  "to open formats; query it through `twinhub query` instead")
            view = _consumer_view(con, lake, dataset, who) if who else None
            if view is not None and view.tier:  # a city layer's: the highest of the inputs the file carries
                tier = view.tier
            table = read_table(con, dataset, view=view, derived_inputs=derived_inputs)
        finally:
            con.close()
        write(table, fmt, path)
        entry.rows_returned = table.rows
    return ExportResult(dataset, path, fmt, table.rows, table.entry["target_crs"], tier, table.withheld,
                        table.protected)


def _consumer_view(con, lake: Lake, dataset: str, who):
    """What ``who`` may have of ``dataset`` (a refusal is an ExportError, audited as refused)."""
    from twinhub.catalog.export_access import ConsumerRefused, consumer_view

    department, name = dataset.split(".", 1)
    columns = [c for c, in con.execute("SELECT column_name FROM duckdb_columns() WHERE database_name = 'lake' "
                                      "AND schema_name = ? AND table_name = ?", [department, name]).fetchall()]
    try:
        view = consumer_view(con, lake, dataset, columns, who)
    except ConsumerRefused as exc:
        raise ExportError(str(exc)) from None
    if view.protected:
        from twinhub.catalog.masking import register_functions

        register_functions(con)
    return view
