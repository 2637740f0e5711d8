"""The catalog's commands: browse versions, search, look up a spot, roll back, export, report."""

from __future__ import annotations

import json
import pathlib

import click

from twinhub.catalog import column_tiers
from twinhub.catalog.export import FORMATS as EXPORT_FORMATS
from twinhub.catalog.export import export_dataset
from twinhub.catalog.info import dataset_info
from twinhub.catalog.near import near as near_features
from twinhub.catalog.near import to_catalog_crs
from twinhub.catalog.opendata import FORMATS as CATALOG_FORMATS
from twinhub.catalog.opendata import export_catalog
from twinhub.catalog.report import build_report
from twinhub.catalog.runs import version_label
from twinhub.catalog.search import search as search_catalog
from twinhub.cli import output
from twinhub.cli.options import (
    as_option,
    as_refused,
    consumer,
    department_option,
    format_choice,
    format_option,
    open_hub,
    renamed,
)
from twinhub.hub.home import Hub

ACTING_DEPARTMENT = "--department is the department you act for"
RENDERING = "--format is how a command prints its result (table, json, csv)"


def _schedules(hub: Hub) -> dict[str, str | None]:
    from twinhub.hub.registry import registered

    return {r.id: r.manifest.schedule for r in registered(hub)}


def _retired(hub: Hub) -> set[str]:
    """The datasets a steward retired (twinhub retire): left out of open exports."""
    from twinhub.hub.registry import registered

    return {r.id for r in registered(hub, include_retired=True) if r.retired is not None}


def _synonyms(hub: Hub) -> dict[str, list[str]]:
    """Vocabulary code -> its labels in every language and its synonyms (for search)."""
    return {c.code: [*c.labels.values(), *c.synonyms] for v in hub.pack.vocabularies.values() for c in v.concepts}


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if not text:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or values[0] > values[2] or values[1] > values[3]:
        raise click.BadParameter(f"{text!r}: write minx,miny,maxx,maxy in the catalog's CRS, e.g. 121.3,31.1,121.6,31.3",
                                 param_hint="--bbox")
    return values


@click.group()
def catalog() -> None:
    """Browse the catalog: versions, search, what is at a spot."""


@catalog.command("show")
@click.argument("dataset")
@as_refused("it shows the served version's personal-data findings, which no grant check covers")
@format_choice("table", "json")
@click.pass_context
def catalog_show(ctx: click.Context, dataset: str, fmt: str) -> None:
    """Show DATASET's entry, columns, and versions with their release notes and map previews."""
    lake = open_hub(ctx).lake
    info = dataset_info(lake, dataset)
    info["column_tiers"] = column_tiers.read_lake(lake, dataset)
    if fmt == "json":
        click.echo(json.dumps(info, ensure_ascii=False, indent=2, default=str))
        return
    for key in ("dataset", "title", "description", "standard", "standard_version", "classification", "target_crs"):
        click.echo(f"{key + ':':<18}{(info.get(key) or '').strip()}")
    tiers = info.get("column_tiers") or {}
    click.echo("\ncolumns:\n" + output.table(
        ["name", "type", "classification", "protection", "personal_data"],
        [[c["name"], c["type"], *(tiers.get(c["name"], {}).get(k) for k in ("classification", "protection", "personal_data"))]
         for c in info["columns"]]))
    for line in _privacy_lines(info):
        click.echo(line)
    cols = ["version", "snapshot", "published_at", "status", "run_id", "rows_read", "rows_published",
            "rows_quarantined", "standard_version", "source_crs", "extent"]
    shown = {"version": lambda v: f"v{v['number']}" if v.get("number") else None}  # runs that published none: blank
    click.echo("\nversions (roll back with twinhub rollback DATASET vN; --as-of reads a snapshot):\n" + output.table(
        cols, [[shown[c](v) if c in shown else v.get(c) for c in cols] for v in info["versions"]]))
    click.echo("\nrelease notes:")
    for v in info["versions"]:
        if v["version"] is None:
            continue
        notes = (v.get("release_notes") or {}).get("summary") or "(none recorded)"
        click.echo(f"  {version_label(v['number'], v['version'])} ({v['status']}, run {v['run_id']}, "
                   f"source {str(v['source_fingerprint'])[:19]}):")
        click.echo(f"    {notes}")
        if v.get("preview"):
            click.echo(f"    map preview: {v['preview']}")


def _privacy_lines(info: dict) -> list[str]:
    """The served version's personal-data findings (counts and redacted examples), for the steward."""
    served = next((v for v in info["versions"] if v["status"] == "published"), None)
    privacy = (served or {}).get("details", {}).get("privacy") or {}
    found = (privacy.get("scan") or {}).get("found") or {}
    if not found:
        return []
    lines = ["\npersonal data found in the served version (values per column; * = not declared in the manifest):"]
    undeclared = privacy["scan"].get("undeclared") or {}
    for column, kinds in found.items():
        for kind, f in kinds.items():
            mark = "*" if kind in undeclared.get(column, ()) else " "
            lines.append(f"  {mark} {column}: {kind} in {f['values']} values, e.g. {', '.join(f['examples'])}")
    return lines


@catalog.command("search")
@click.argument("text", required=False)
@click.option("--published-by", "published_by", metavar="DEPARTMENT", help="Only datasets of this department.")
@click.option("--standard", help="Only datasets following this standard.")
@click.option("--bbox", help="Only datasets whose extent meets minx,miny,maxx,maxy (catalog CRS).")
@renamed("--department", "--published-by", ACTING_DEPARTMENT)
@as_refused("it searches every dataset's catalog entry, which no grant check covers")
@format_option
@click.pass_context
def catalog_search(ctx: click.Context, text: str | None, published_by: str | None, standard: str | None,
                   bbox: str | None, fmt: str) -> None:
    """Find datasets by title, description, columns and labels (Chinese or English), best first."""
    hub = open_hub(ctx)
    hits = search_catalog(hub.lake, text, department=published_by, standard=standard, bbox=_bbox(bbox),
                          synonyms=_synonyms(hub))
    cols = ["dataset", "title", "department", "standard", "classification", "score", "matched"]
    rows = [[h.dataset, h.title, h.department, h.standard, h.classification, h.score, " ".join(h.matched[:6])]
            for h in hits]
    click.echo(output.render(cols, rows, fmt))
    if not hits and fmt == "table":
        click.echo("\nno dataset matched: try fewer words, or `twinhub catalog search` to list them all", err=True)


@catalog.command("near")
@click.argument("x", type=float)
@click.argument("y", type=float)
@click.option("--radius", type=float, required=True, help="Metres (true distance on the ellipsoid).")
@click.option("--crs", metavar="CRS", help="The CRS X Y are in, converted before searching: gcj02 (a point off "
                                           "Amap/Tencent), bd09 (Baidu), wgs84 or EPSG:xxxx. Default: the catalog's.")
@department_option()
@as_option("Show only what CONSUMER (a department, or user:NAME) may read")
@format_option
@click.pass_context
def catalog_near(ctx: click.Context, x: float, y: float, radius: float, crs: str | None, department: str | None,
                 as_consumer: str | None, fmt: str) -> None:
    """Features of every department within --radius metres of X Y (X=lon/easting, Y=lat/northing, catalog CRS
    unless --crs names another)."""
    hub = open_hub(ctx)
    who = consumer(hub, as_consumer, f"near {x} {y} radius {radius:g} m", action="near")
    features = near_features(hub.lake, x, y, radius, hub.target_crs, department=department, who=who, crs=crs)
    if crs is not None and fmt == "table":
        cx, cy = to_catalog_crs(x, y, crs, hub.target_crs)
        click.echo(f"{x} {y} ({crs}) is {cx:.7f} {cy:.7f} in {hub.target_crs}", err=True)
    if fmt == "json":
        click.echo(json.dumps([{"dataset": f.dataset, "department": f.department, "distance_m": f.distance_m,
                                **f.attributes, "geometry": f.wkt} for f in features],
                              ensure_ascii=False, indent=2, default=str))
        return
    rows = [[f.dataset, f.distance_m, f.attributes.get("facility_id") or next(iter(f.attributes.values()), None),
             f.attributes.get("name"), f.attributes.get("category"), f.wkt] for f in features]
    click.echo(output.render(["dataset", "distance_m", "id", "name", "category", "geometry"], rows, fmt))


@click.command("rollback")
@click.argument("dataset")
@click.argument("version", required=False)
@click.option("--to", "to", metavar="VERSION", help="The same as VERSION (as older scripts wrote it).")
@click.option("--snapshot", type=int, help="Name the version by its catalog snapshot instead (the `snapshot` "
                                           "column of `catalog show`; what a bare --to N meant before).")
@click.option("--reason", default="", help="Why, for the record.")
@click.pass_context
def rollback(ctx: click.Context, dataset: str, version: str | None, to: str | None, snapshot: int | None,
             reason: str) -> None:
    """Serve DATASET as it was at VERSION (v3: its versions are listed by `twinhub catalog show DATASET`)
    again, as a new version (history is kept); the city layer and derived tables reading it are rebuilt."""
    from twinhub.hub.rollback import rollback as rollback_dataset

    given = [v for v in (version, to) if v is not None]
    if len(given) + (snapshot is not None) != 1:
        raise click.UsageError("name one version: twinhub rollback DATASET v3 (or --snapshot N for a catalog snapshot)")
    done = rollback_dataset(open_hub(ctx), dataset, given[0] if given else None, snapshot, reason=reason)
    result = done.result
    click.echo(f"{dataset}: {result.label} serves the rows of {result.restored_label} "
               f"({result.rows_published} published, {result.rows_quarantined} quarantined)\n  {result.summary}")
    for table in done.rebuilt:
        click.echo(f"rebuilt {table} from the rows served now")


@click.command("export")
@click.argument("dataset")
@click.option("--file-format", "file_format", type=click.Choice(list(EXPORT_FORMATS)), default="geoparquet",
              show_default=True, help="The format of the file to write.")
@click.option("--out", type=click.Path(path_type=pathlib.Path), help="File or folder (default: DATASET.<ext> here).")
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
@renamed("--format", "--file-format", RENDERING)
@department_option()
@as_option("Export for CONSUMER (a department, or user:NAME) as its grants allow", default="the open audience")
@click.pass_context
def export(ctx: click.Context, dataset: str, file_format: str, out: pathlib.Path | None, force: bool,
           department: str | None, as_consumer: str | None) -> None:
    """Export DATASET's served version as GeoParquet 1.1, GeoPackage, GeoJSON or CSV."""
    hub = open_hub(ctx)
    who = consumer(hub, as_consumer, f"export {dataset} as {file_format}", action="export")
    result = export_dataset(hub.lake, dataset, file_format, out, force=force, department=department, who=who,
                            derived_inputs=_derived_inputs(hub))
    click.echo(f"wrote {result.rows} rows of {dataset} ({result.crs}) to {result.path}")
    notes = [f"classified {result.classification}"] if result.classification else []
    notes += [f"left out: {', '.join(result.withheld)}"] if result.withheld else []
    notes += [f"masked or pseudonymized: {', '.join(result.protected)}"] if result.protected else []
    if notes:
        click.echo("  " + "; ".join(notes))


@click.command("export-catalog")
@click.option("--metadata-format", "metadata_format", type=click.Choice(list(CATALOG_FORMATS)), required=True,
              help="The metadata standard to write: DCAT-AP 3 (JSON-LD), a Frictionless Data Package or STAC.")
@click.option("--out", type=click.Path(file_okay=False, path_type=pathlib.Path), default=pathlib.Path("open-catalog"),
              show_default=True, help="Folder for the metadata and data files.")
@click.option("--base-url", help="Where the folder will be served (default: its file:// URL).")
@click.option("--force", is_flag=True, help="Replace an existing export in --out.")
@renamed("--format", "--metadata-format", RENDERING)
@department_option()
@as_refused("it exports the open datasets, for everyone")
@click.pass_context
def export_catalog_command(ctx: click.Context, metadata_format: str, out: pathlib.Path, base_url: str | None,
                           force: bool, department: str | None) -> None:
    """Export the catalog's open datasets as DCAT-AP 3 JSON-LD, a Frictionless Data Package or STAC."""
    hub = open_hub(ctx)
    path = export_catalog(hub.lake, metadata_format, out, force=force, schedules=_schedules(hub), base_url=base_url,
                          title=f"{hub.city.name}: twinhub catalog", department=department,
                          derived_inputs=_derived_inputs(hub), retired=_retired(hub))
    click.echo(f"wrote {path} (restricted datasets are never exported)")


def _derived_inputs(hub) -> dict[str, list[str]]:
    """Each derived table's inputs (its tier is theirs: catalog/access.py)."""
    from twinhub.catalog.features import tables
    from twinhub.hub.consumers import derived_inputs

    con = hub.lake.connect(read_only=True)
    try:
        return derived_inputs(hub, tables(con))
    finally:
        con.close()


@click.command("report")
@click.option("--no-save", is_flag=True, help="Do not store the figures as catalog.report_* tables.")
@format_option
@click.pass_context
def report(ctx: click.Context, no_save: bool, fmt: str) -> None:
    """Is the data used? Reuse across departments, latency, freshness and quarantine, per dataset and department."""
    hub = open_hub(ctx)
    figures = build_report(hub.lake, _schedules(hub), save=not no_save)
    datasets = figures.datasets[["dataset", "department", "versions", "queries_other_departments",
                                 "exports_other_departments", "consuming_departments", "change_to_publish_hours",
                                 "hours_since_confirmed", "expected_interval_hours", "freshness", "quarantined_share"]]
    if fmt == "json":
        click.echo(json.dumps({"generated_at": figures.generated_at.isoformat(),
                               "datasets": json.loads(figures.datasets.to_json(orient="records", date_format="iso")),
                               "departments": json.loads(figures.departments.to_json(orient="records"))},
                              ensure_ascii=False, indent=2))
        return
    rows = [[None if v != v else v for v in r] for r in datasets.itertuples(index=False)]  # NaN -> empty
    click.echo("per dataset:\n" + output.render(list(datasets.columns), rows, fmt))
    deps = figures.departments
    rows = [[None if v != v else v for v in r] for r in deps.itertuples(index=False)]
    click.echo("\nper department:\n" + output.render(list(deps.columns), rows, fmt))
    if not no_save and fmt == "table":
        click.echo("\nsaved as catalog.report_datasets and catalog.report_departments", err=True)


COMMANDS = (catalog, rollback, export, export_catalog_command, report)


def register(main: click.Group) -> None:
    for command in COMMANDS:
        main.add_command(command)
