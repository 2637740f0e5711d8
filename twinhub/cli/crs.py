"""`twinhub crs evidence FILE_OR_MANIFEST`: which CRS a file's coordinates are in, with the hub's evidence.

WGS 84, GCJ-02 and BD-09 all put a Chinese POI file inside the city; the command ranks them (and the city's
usual CRSs) by what the hub already publishes: same-named features, the district polygons of the file's
district column, the city pack's landmarks (twinhub/hub/crs_evidence.py). Nothing is changed: the steward
reads the numbers and sets source.crs.
"""

from __future__ import annotations

import json
import pathlib

import click

from twinhub.cli import output
from twinhub.cli.options import format_choice, open_hub


@click.group("crs")
def crs_group() -> None:
    """Which CRS coordinates are in, with evidence from the hub."""


@crs_group.command("evidence")
@click.argument("source")
@click.option("--name-column", help="The column of feature names (default: the manifest's fields.name).")
@click.option("--district-column", help="The column of district names (default: the manifest's fields.district).")
@format_choice("table", "json")
@click.pass_context
def evidence_command(ctx: click.Context, source: str, name_column: str | None, district_column: str | None,
                     fmt: str) -> None:
    """Rank the CRSs SOURCE's coordinates could be in (a file, or a manifest and its source), with the numbers
    of each piece of evidence and which of them decided."""
    from twinhub.hub.crs_evidence import rank_with_evidence

    hub = open_hub(ctx)
    read = _read(hub, source, name_column, district_column)
    found = rank_with_evidence(hub, read["x"], read["y"], read["names"], read["districts"], read["exclude"])
    if fmt == "json":
        click.echo(json.dumps({"source": read["describe"], "declared": read["declared"], **found.as_dict()},
                              ensure_ascii=False, indent=2))
        return
    click.echo(f"{read['describe']}: {found.sampled} positions sampled")
    kinds = [e.kind for e in found.evidence]
    rows = []
    for c in found.ranked:
        label = c.crs + (" (swapped)" if c.swapped else "")
        rows.append([label, f"{c.inside_share:.0%}",
                     *[_value(e.values.get(label), e.measure) for e in found.evidence], c.title])
    click.echo(output.render(["crs", "in city", *kinds, "title"], rows, "table"))
    click.echo(found.message())
    if read["declared"]:
        if found.decided is None:
            click.echo(f"the manifest says {read['declared']}; the evidence does not decide")
        elif _same(read["declared"], found.decided):
            click.echo(f"the manifest says {read['declared']}; the evidence agrees")
        else:
            click.echo(f"the manifest says {read['declared']}; the evidence points to {found.decided}")


def _value(value: float | None, measure: str) -> str:
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return "-"
    return f"{value:,.0f} m" if measure == "median_m" else f"{value:.1%}"


def _same(a: str, b: str) -> bool:
    from twinhub.standards.crs import resolve_crs

    return resolve_crs(a).name == resolve_crs(b.removesuffix(" (swapped)")).name


def _read(hub, source: str, name_column: str | None, district_column: str | None) -> dict:
    """The first chunk's raw positions and the name and district columns of SOURCE."""
    from twinhub.connectors import open_source
    from twinhub.guided.inspect import SAMPLE_ROWS, inspect_source
    from twinhub.guided.source import is_manifest, source_spec
    from twinhub.hub.crs_evidence import centres
    from twinhub.hub.manifest import load_manifest, source_policy

    declared = exclude = None
    if is_manifest(source):
        path = pathlib.Path(source)
        manifest = load_manifest(path)
        connector = open_source(manifest.source, path.parent, policy=source_policy(hub, manifest.department,
                                                                                    path.parent))
        declared = manifest.source.get("crs") or connector.crs()
        name_column = name_column or _column(manifest.fields.get("name"))
        district_column = district_column or _column(manifest.fields.get("district"))
        exclude = manifest.id
    else:
        profile = inspect_source(source_spec(source), hub)
        spec = {k: v for k, v in profile.source.items() if k != "crs"}
        connector = open_source(spec, policy=hub.network_policy)
        declared = connector.crs()
    chunk = next(iter(connector.chunks(SAMPLE_ROWS)), None)
    if chunk is None or chunk.geometry is None:
        raise click.UsageError(f"{connector.describe()}: no rows with coordinates to rank")
    frame = chunk.frame
    columns = {}
    for option, column in (("--name-column", name_column), ("--district-column", district_column)):
        if column is not None and column not in frame.columns:
            raise click.UsageError(f"{option}: no column {column!r} in {connector.describe()}; the columns are "
                                   f"{', '.join(map(str, frame.columns))}")
        columns[option] = None if column is None else frame[column].to_numpy()
    x, y = centres(chunk.geometry)
    return {"x": x, "y": y, "names": columns["--name-column"], "districts": columns["--district-column"],
            "declared": declared, "exclude": exclude, "describe": connector.describe()}


def _column(spec: object) -> str | None:
    """A manifest field's source column (a derived field, e.g. {constant: ...}, has none)."""
    return spec if isinstance(spec, str) else None


def register(main: click.Group) -> None:
    main.add_command(crs_group)
